"""Author addresses from the From field (RFC 5322 §3.6.2, §3.4)."""

from __future__ import annotations

import email.utils

from mailseal.message import unfold


def addresses(value: bytes) -> list[str]:
    """The addr-specs of an address-list field value, lower-cased domain kept as
    written; an unparsable value gives []."""
    text = unfold(value).decode("utf-8", "replace").strip()
    if not text:
        return []
    try:
        pairs = email.utils.getaddresses([text])
    except (ValueError, IndexError):
        return []
    return [addr for _, addr in pairs if addr and "@" in addr]


def domain_of(address: str) -> str:
    """The domain part, lower-cased, without a trailing dot."""
    return address.rpartition("@")[2].strip().strip(">").lower().rstrip(".")
