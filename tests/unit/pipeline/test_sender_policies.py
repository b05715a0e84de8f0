"""SPF and DMARC inside the pipeline, records on a real loopback DNS server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dnsserver import ZoneServer, make_zone

from mailseal.config.load import Config, build_config
from mailseal.dkim.publish import record_value
from mailseal.dmarc.report import ReportStore
from mailseal.dns.resolver import DnsResolver
from mailseal.keystore import generate_key, write_private_key
from mailseal.message import split_message
from mailseal.pipeline.model import Action, Decision, Envelope, Role
from mailseal.pipeline.session import MessageSession


def _txt(value: str) -> str:
    return " ".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("sender")
    key = generate_key("ed25519")
    write_private_key(folder / "ed.private", key)
    records = (f"ed._domainkey TXT {_txt(record_value(key))}\n"
               '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"\n'
               '_dmarc TXT "v=DMARC1; p=reject"\n')
    with ZoneServer(make_zone("example.com", records)) as dns:
        yield {"folder": folder, "dns": dns}


def config(setup: dict[str, Any], **sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {
        "server": {"authserv_id": "mx.test"},
        "keys": [{"name": "ed", "domain": "example.com", "selector": "ed",
                  "file": str(setup["folder"] / "ed.private")}],
        "signing": {"rules": [{"match": "*@example.com", "keys": ["ed"]}]},
    }
    data.update(sections)
    return build_config(data, "test.toml")


MSG = (b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: s\r\n"
       b"Date: Mon, 23 Nov 2026 05:00:00 +0000\r\n\r\nbody\r\n")


def run(cfg: Config, env: Envelope, message: bytes, dns: ZoneServer) -> Decision:
    fields, body = split_message(message)
    s = MessageSession(cfg, env, DnsResolver([dns.address], timeout=1.0))
    for f in fields:
        s.header(f.name, f.value)
    s.end_of_headers()
    s.body(body)
    return asyncio.run(s.finish())


def signed(setup: dict[str, Any]) -> bytes:
    d = run(config(setup), Envelope(client_address="127.0.0.1"), MSG, setup["dns"])
    assert d.role is Role.SIGN
    return b"".join(e.name.encode() + b":" + e.value + b"\r\n" for e in d.edits) + MSG


def ar(d: Decision) -> bytes:
    return d.edits[-1].value.replace(b"\r\n\t", b" ")


def inbound(ip: str, sender: str = "alice@example.com") -> Envelope:
    return Envelope(client_address=ip, helo="mail.example.com", mail_from=sender,
                    recipients=("bob@example.org",))


def test_aligned_dkim_and_spf_pass_dmarc(setup: dict[str, Any]) -> None:
    d = run(config(setup), inbound("192.0.2.5"), signed(setup), setup["dns"])
    text = ar(d)
    assert b"dkim=pass" in text
    assert b"spf=pass smtp.mailfrom=alice@example.com" in text
    assert b"dmarc=pass" in text and b"header.from=example.com" in text
    assert d.action is Action.ACCEPT and d.summary["dmarc"] == "pass"


def test_spf_can_be_switched_off(setup: dict[str, Any]) -> None:
    d = run(config(setup, spf={"enabled": False}, dmarc={"enabled": False}),
            inbound("192.0.2.5"), signed(setup), setup["dns"])
    assert b"spf=" not in ar(d) and b"dmarc=" not in ar(d)


def test_dmarc_failure_is_recorded_not_enforced_by_default(setup: dict[str, Any],
                                                           tmp_path: Path) -> None:
    db = tmp_path / "dmarc.sqlite"
    d = run(config(setup, dmarc={"report_db": str(db)}), inbound("198.51.100.9"), MSG,
            setup["dns"])
    assert b"spf=fail" in ar(d) and b"dmarc=fail" in ar(d)
    assert d.action is Action.ACCEPT
    assert any("not enforced (enforcement off)" in step for step in d.trail)
    rows = ReportStore(db).evaluations("example.com", 0, 2**40)
    assert len(rows) == 1 and rows[0].result == "fail"


def test_dmarc_reject_enforced_with_trusted_forwarder_exemption(setup: dict[str, Any]) -> None:
    cfg = config(setup, dmarc={"enforce": True, "trusted_forwarders": ["203.0.113.0/24"]})
    d = run(cfg, inbound("198.51.100.9"), MSG, setup["dns"])
    assert d.action is Action.REJECT
    assert d.reply is not None and d.reply.code == 550
    forwarded = run(cfg, inbound("203.0.113.4"), MSG, setup["dns"])
    assert forwarded.action is Action.ACCEPT
    assert any("trusted forwarder" in step for step in forwarded.trail)
    # A DKIM pass aligned with From satisfies DMARC even from a foreign IP.
    assert run(cfg, inbound("198.51.100.9"), signed(setup), setup["dns"]).action is Action.ACCEPT


def test_adsp_is_reported_when_asked(setup: dict[str, Any]) -> None:
    d = run(config(setup, dmarc={"adsp": True}), inbound("198.51.100.9"), MSG, setup["dns"])
    assert b"dkim-adsp=" in ar(d) and d.action is Action.ACCEPT
    assert b"dkim-adsp=" not in ar(run(config(setup), inbound("198.51.100.9"), MSG,
                                       setup["dns"]))
