"""The policy service's SPF checker follows reloads."""

from __future__ import annotations

from mailseal.config.load import build_config
from mailseal.frontends.daemon import Runtime
from mailseal.frontends.policyd.server import PolicyService


def test_the_checker_follows_a_reload_that_changes_only_the_receiver() -> None:
    runtime = Runtime("<test>", build_config({"server": {"authserv_id": "a.test"}}))
    service = PolicyService(runtime)
    first = service.checker()
    assert first.receiver == "a.test" and service.checker() is first  # kept across requests
    runtime.config = build_config({"server": {"authserv_id": "b.test"}})  # same [dns]
    assert service.checker().receiver == "b.test"
