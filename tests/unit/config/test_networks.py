"""Address lists of the configuration: parsed once at load, matched one way."""

from __future__ import annotations

import pytest

from mailseal.config.load import build_config

CONFIG = build_config({
    "signing": {"internal_hosts": ["10.0.0.0/8"]},
    "policy": {"trusted_relays": ["192.0.2.0/24", "2001:db8::/32"]},
    "dmarc": {"trusted_forwarders": ["198.51.100.7"]},
})


@pytest.mark.parametrize(("address", "internal", "relay", "forwarder"), [
    ("10.1.2.3", True, False, False),
    ("192.0.2.9", False, True, False),
    ("[192.0.2.9]", False, True, False),
    ("::ffff:192.0.2.9", False, True, False),
    ("IPv6:2001:db8::1", False, True, False),
    ("198.51.100.7", False, False, True),
    ("198.51.100.8", False, False, False),
    ("unknown", False, False, False),
    ("", False, False, False),
    (None, False, False, False),
])
def test_each_list_matches_the_forms_mtas_write(address: str | None, internal: bool,
                                                relay: bool, forwarder: bool) -> None:
    assert CONFIG.is_internal(address) is internal
    assert CONFIG.is_trusted_relay(address) is relay
    assert CONFIG.is_trusted_forwarder(address) is forwarder


def test_bad_items_are_refused_at_load() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        build_config({"dmarc": {"trusted_forwarders": ["nonsense"]}})
