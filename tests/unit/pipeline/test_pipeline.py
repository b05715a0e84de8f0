"""The pipeline end to end in memory, keys served by a real loopback DNS server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dnsserver import ZoneServer

from mailseal.api import verify_async
from mailseal.config.load import Config, build_config
from mailseal.dkim.publish import record_value
from mailseal.dns.resolver import DnsResolver
from mailseal.dns.types import Answer
from mailseal.keystore import generate_key, write_private_key
from mailseal.message import split_message
from mailseal.pipeline.model import Action, Decision, Envelope, Role
from mailseal.pipeline.session import MessageSession
from mailseal.results import Result

MSG = (b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hi\r\n"
       b"Date: Mon, 23 Nov 2026 05:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n"
       b"Hello Bob.\r\n")
OUTSIDE = Envelope(client_address="192.0.2.7", helo="mx.example.net")
INSIDE = Envelope(client_address="127.0.0.1")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("keys")
    rsa, ed = generate_key("rsa", 2048), generate_key("ed25519")
    write_private_key(folder / "rsa.private", rsa)
    write_private_key(folder / "ed.private", ed)
    return {"folder": folder, "rsa": rsa, "ed": ed}


@pytest.fixture
def dns(zone_server: Callable[..., ZoneServer], keys: dict[str, Any]) -> ZoneServer:
    zone = ("$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns hostmaster 1 60 60 60 60\n"
            f'rsa._domainkey IN TXT {_quoted(record_value(keys["rsa"]))}\n'
            f'ed._domainkey IN TXT {_quoted(record_value(keys["ed"]))}\n'
            f'testing._domainkey IN TXT {_quoted(record_value(keys["rsa"], testing=True))}\n'
            "slow._domainkey IN TXT \"v=DKIM1; p=\"\n")
    server = zone_server(zone)
    server.drop.add("slow._domainkey.example.com")
    return server


def _quoted(value: str) -> str:
    return " ".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))


def make_config(keys: dict[str, Any], dns: ZoneServer, **sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {
        "server": {"authserv_id": "mx.test"},
        "dns": {"nameservers": [dns.address], "timeout": 0.5},
        "keys": [
            {"name": "rsa", "domain": "example.com", "selector": "rsa",
             "file": str(keys["folder"] / "rsa.private")},
            {"name": "ed", "domain": "example.com", "selector": "ed",
             "file": str(keys["folder"] / "ed.private")},
        ],
        "signing": {"rules": [{"match": "*@example.com", "keys": ["rsa", "ed"]}]},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return build_config(data, "test.toml")


def run(config: Config, env: Envelope, message: bytes, dns: ZoneServer) -> Decision:
    fields, body = split_message(message, max_fields=100_000)
    session = MessageSession(config, env, DnsResolver([dns.address], timeout=0.5))
    for f in fields:
        session.header(f.name, f.value)
    session.end_of_headers()
    for i in range(0, len(body), 7):  # small chunks: streaming must not matter
        session.body(body[i : i + 7])
    return asyncio.run(session.finish())


def apply(decision: Decision, message: bytes) -> bytes:
    head = b"".join(e.name.encode() + b":" + e.value + b"\r\n"
                    for e in decision.edits if not e.remove)
    return head + message


def test_internal_client_is_signed_with_both_keys_and_verifies(keys: Any, dns: ZoneServer) -> None:
    config = make_config(keys, dns)
    decision = run(config, INSIDE, MSG, dns)
    assert decision.role is Role.SIGN and decision.action is Action.ACCEPT
    assert [e.name for e in decision.edits] == ["DKIM-Signature", "DKIM-Signature"]
    results = asyncio.run(verify_async(apply(decision, MSG), dns=DnsResolver([dns.address])))
    assert [(r.result, r.selector) for r in results] == [(Result.PASS, "rsa"), (Result.PASS, "ed")]
    assert "client 127.0.0.1 is an internal host" in decision.trail


def test_outside_client_claiming_our_domain_is_not_signed(keys: Any, dns: ZoneServer) -> None:
    decision = run(make_config(keys, dns), OUTSIDE, MSG, dns)
    assert decision.role is Role.VERIFY
    assert not any(e.name == "DKIM-Signature" for e in decision.edits)
    assert decision.edits[-1].name == "Authentication-Results"
    assert b"dkim=none" in decision.edits[-1].value


def test_authenticated_and_daemon_name_sign_unless_disabled(keys: Any, dns: ZoneServer) -> None:
    config = make_config(keys, dns, signing={"signing_daemon_names": ["ORIGINATING"]})
    assert run(config, Envelope(client_address="192.0.2.7", auth_user="alice"), MSG,
               dns).role is Role.SIGN
    assert run(config, Envelope(client_address="192.0.2.7", daemon_name="ORIGINATING"), MSG,
               dns).role is Role.SIGN
    off = make_config(keys, dns, signing={"sign_authenticated": False})
    assert run(off, Envelope(client_address="192.0.2.7", auth_user="alice"), MSG,
               dns).role is Role.VERIFY


@pytest.mark.parametrize(("message", "why"), [
    (MSG.replace(b"To:", b"From: mallory@example.com\r\nTo:"), "2 From fields"),
    (MSG.replace(b"From: Alice <alice@example.com>", b"From: a@example.com, b@example.com"),
     "From holds 2 addresses"),
    (MSG.replace(b"alice@example.com", b"alice@elsewhere.example"),
     "From domain elsewhere.example has no signing rule"),
])
def test_trusted_but_not_signed_says_why(keys: Any, dns: ZoneServer, message: bytes,
                                         why: str) -> None:
    decision = run(make_config(keys, dns), INSIDE, message, dns)
    assert decision.role is Role.TRUSTED and decision.action is Action.ACCEPT
    assert decision.edits == ()
    assert any(why in step for step in decision.trail), decision.trail


def _signed(keys: Any, dns: ZoneServer, selector_keys: list[str], message: bytes = MSG) -> bytes:
    config = make_config(keys, dns, signing={
        "rules": [{"match": "*@example.com", "keys": selector_keys}]})
    return apply(run(config, INSIDE, message, dns), message)


def test_inbound_pass_and_tampered_fail_with_reject(keys: Any, dns: ZoneServer) -> None:
    signed = _signed(keys, dns, ["rsa"])
    config = make_config(keys, dns, verify={"on_bad_signature": {
        "action": "reject", "reply": "550 5.7.1 bad DKIM"}})
    good = run(config, OUTSIDE, signed, dns)
    assert good.action is Action.ACCEPT
    assert b"dkim=pass" in good.edits[-1].value and b"header.s=rsa" in good.edits[-1].value
    bad = run(config, OUTSIDE, signed.replace(b"Hello Bob.", b"Hello Eve."), dns)
    assert bad.action is Action.REJECT and str(bad.reply) == "550 5.7.1 bad DKIM"
    assert b"dkim=fail" in bad.edits[-1].value
    assert any("body hash did not verify" in s for s in bad.trail)


def test_testing_mode_failure_never_rejects(keys: Any, dns: ZoneServer) -> None:
    config = make_config(keys, dns, verify={"on_bad_signature": "reject"})
    signed = _signed(keys, dns, ["rsa"]).replace(b"s=rsa;", b"s=testing;")
    decision = run(config, OUTSIDE, signed, dns)
    assert decision.action is Action.ACCEPT
    assert b"test mode" in decision.edits[-1].value


def test_dns_timeout_tempfails(keys: Any, dns: ZoneServer) -> None:
    signed = _signed(keys, dns, ["rsa"]).replace(b"s=rsa;", b"s=slow;")
    decision = run(make_config(keys, dns), OUTSIDE, signed, dns)
    assert decision.action is Action.TEMPFAIL
    assert decision.reply is not None and decision.reply.code == 451
    assert b"dkim=temperror" in decision.edits[-1].value


def test_forged_authentication_results_removed(keys: Any, dns: ZoneServer) -> None:
    forged = (b"Authentication-Results: other.example; dkim=pass\r\n"
              b"Authentication-Results: MX.TEST; dkim=pass header.d=example.com\r\n") + MSG
    decision = run(make_config(keys, dns), OUTSIDE, forged, dns)
    removals = [e for e in decision.edits if e.remove]
    assert [(e.name, e.index) for e in removals] == [("Authentication-Results", 2)]


def test_must_be_signed_turns_pass_into_policy(keys: Any, dns: ZoneServer) -> None:
    message = MSG.replace(b"Subject: hi\r\n", b"Subject: hi\r\nX-Important: yes\r\n")
    signed = _signed(keys, dns, ["rsa"], message)
    config = make_config(keys, dns, verify={"must_be_signed": ["X-Important"]})
    decision = run(config, OUTSIDE, signed, dns)
    assert b"dkim=policy" in decision.edits[-1].value
    assert any("x-important" in s.lower() for s in decision.trail)


class BrokenResolver:
    async def txt(self, name: str) -> Answer[bytes]:
        raise RuntimeError("resolver bug")


def test_internal_error_becomes_tempfail_not_crash(keys: Any, dns: ZoneServer) -> None:
    signed = _signed(keys, dns, ["rsa"])
    fields, body = split_message(signed)
    session = MessageSession(make_config(keys, dns), OUTSIDE, BrokenResolver())
    for f in fields:
        session.header(f.name, f.value)
    session.body(body)
    decision = asyncio.run(session.finish())
    assert decision.action is Action.TEMPFAIL
    assert "internal error: RuntimeError: resolver bug" in decision.trail[-1]


class HangingResolver:
    async def txt(self, name: str) -> Answer[bytes]:
        await asyncio.sleep(30)
        raise AssertionError("the message limit did not stop this")


class TimingOutResolver:
    async def txt(self, name: str) -> Answer[bytes]:
        raise TimeoutError("a timeout of its own, not the message limit")


def _judged(config: Config, resolver: object, message: bytes) -> Decision:
    fields, body = split_message(message)
    session = MessageSession(config, OUTSIDE, resolver)  # type: ignore[arg-type]
    for f in fields:
        session.header(f.name, f.value)
    session.body(body)
    return asyncio.run(session.finish())


def test_a_message_not_judged_in_time_is_tempfailed_with_its_role(
        keys: Any, dns: ZoneServer) -> None:
    """The limit is the session's (milter and proxy alike): no reply of its own, so
    each frontend gives its default tempfail; the role and trail are the message's."""
    signed = _signed(keys, dns, ["rsa"])
    config = make_config(keys, dns, server={"message_timeout": 0.2})
    decision = _judged(config, HangingResolver(), signed)
    assert (decision.action, decision.role, decision.reply) == (
        Action.TEMPFAIL, Role.VERIFY, None)
    assert decision.summary["result"] == "timeout"
    assert decision.trail[-1] == "not judged within 0.2 s"
    # A TimeoutError that is not the limit is an internal error, said as such.
    decision = _judged(config, TimingOutResolver(), signed)
    assert decision.summary["result"] == "internal-error"
    assert "internal error: TimeoutError" in decision.trail[-1]


def test_header_flood_is_bounded(keys: Any, dns: ZoneServer) -> None:
    flood = b"".join(b"X-Junk: %d\r\n" % i for i in range(5000)) + _signed(keys, dns, ["rsa"])
    decision = run(make_config(keys, dns), OUTSIDE, flood, dns)
    assert decision.action is Action.ACCEPT
    assert any("more than 1000 header fields" in s for s in decision.trail)


def test_key_file_permissions_are_checked(keys: Any, dns: ZoneServer, tmp_path: Path) -> None:
    loose = tmp_path / "loose.private"
    loose.write_bytes((keys["folder"] / "rsa.private").read_bytes())
    os.chmod(loose, 0o640)
    from mailseal.config.load import ConfigError
    with pytest.raises(ConfigError, match=r"keys\[0\]\.file \(rsa\).*chmod 600"):
        build_config({"keys": [{"name": "rsa", "domain": "example.com", "selector": "s",
                                "file": str(loose)}]}, "x.toml")
