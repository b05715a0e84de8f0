"""The SPF policy service inside a real Postfix (check_policy_service), the SPF
records on the loopback DNS server, clients set with XCLIENT."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemons import MailsealProcess, free_port
from dnsserver import ZoneServer, make_zone
from mta import MailSink, PrivatePostfix, missing_postfix, wait_until

pytestmark = pytest.mark.skipif(missing_postfix() is not None,
                                reason=f"no private Postfix here: {missing_postfix()}")

RECORDS = ('@ TXT "v=spf1 ip4:192.0.2.0/25 -all"\n'
           'soft TXT "v=spf1 ip4:192.0.2.0/25 ~all"\n'
           'broken TXT "v=spf1 ip4:192.0.2.0/25 bogus -all"\n'
           'slow TXT "v=spf1 include:slow.example.org -all"\n')


@dataclass
class World:
    postfix: PrivatePostfix
    sink: MailSink
    policy: MailsealProcess

    def send(self, client: str, sender: str, subject: str) -> tuple[int, bytes]:
        data = (f"From: <{sender or 'nobody@example.org'}>\r\nTo: <rcpt@example.com>\r\n"
                f"Subject: {subject}\r\n\r\nbody\r\n").encode()
        with smtplib.SMTP("127.0.0.1", self.postfix.port, local_hostname="mx.example.org",
                          timeout=30) as s:
            s.ehlo()
            code, text = s.docmd("XCLIENT", f"ADDR={client} NAME=[UNAVAILABLE] HELO=mx.example.org")
            assert code == 220, text
            s.ehlo("mx.example.org")
            s.mail(sender)
            code, text = s.rcpt("rcpt@example.com")
            if code >= 400:
                return code, text
            s.rcpt("second@example.com")
            code, text = s.data(data)
            return code, text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("policyd")
    with ZoneServer(make_zone("example.org", RECORDS)) as dns:
        dns.drop.add("slow.example.org")
        port = free_port()
        config = folder / "policy.toml"
        config.write_text(f"""
[server]
authserv_id = "mx.test"
[[listeners]]
kind = "policy"
address = "inet:127.0.0.1:{port}"
[dns]
nameservers = ["{dns.address}"]
timeout = 0.5
[policy]
trusted_relays = ["198.51.100.0/24"]
""")
        with MailsealProcess(config, "policyd").start(("127.0.0.1", port)) as policy, \
                MailSink() as sink:
            postfix = PrivatePostfix(relayhost=sink.relayhost, main_cf={
                "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
                # Relaying is allowed for the test clients; SPF is the only check.
                "mynetworks": "127.0.0.0/8 192.0.2.0/24 198.51.100.0/24",
                "smtpd_recipient_restrictions":
                    f"check_policy_service inet:127.0.0.1:{port}, permit",
                "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            })
            with postfix:
                yield World(postfix, sink, policy)


def _delivered(world: World, subject: str) -> bytes:
    needle = f"Subject: {subject}\r\n".encode()
    return wait_until(lambda: next((m.data for m in world.sink.messages if needle in m.data),
                                   None), timeout=15, what=subject)


def test_allowed_ip_gets_received_spf_pass_once(world: World) -> None:
    code, _ = world.send("192.0.2.10", "alice@example.org", "spf pass")
    assert code == 250
    data = _delivered(world, "spf pass")
    head = data.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    assert head.count(b"Received-SPF:") == 1  # two recipients, one field
    assert b"Received-SPF: pass (mx.test:" in head and b"client-ip=192.0.2.10;" in head


def test_forbidden_ip_is_rejected_at_rcpt(world: World) -> None:
    code, text = world.send("192.0.2.200", "alice@example.org", "spf fail")
    assert code == 550 and b"5.7.23" in text


def test_softfail_is_marked_not_rejected(world: World) -> None:
    code, _ = world.send("192.0.2.200", "alice@soft.example.org", "spf softfail")
    assert code == 250
    assert b"Received-SPF: softfail" in _delivered(world, "spf softfail")


def test_permerror_is_marked(world: World) -> None:
    assert world.send("192.0.2.200", "alice@broken.example.org", "spf permerror")[0] == 250
    assert b"Received-SPF: permerror" in _delivered(world, "spf permerror")


def test_dns_timeout_defers(world: World) -> None:
    code, text = world.send("192.0.2.10", "alice@slow.example.org", "spf temperror")
    assert code == 450 and b"SPF temporary error" in text, (code, text)


def test_trusted_relay_is_not_checked(world: World) -> None:
    assert world.send("198.51.100.7", "alice@example.org", "trusted relay")[0] == 250
    assert b"Received-SPF" not in _delivered(world, "trusted relay")


def test_null_sender_checks_postmaster_at_helo(world: World) -> None:
    # mx.example.org has no SPF record: none, prepended.
    assert world.send("192.0.2.200", "", "null sender")[0] == 250
    assert b"Received-SPF: none" in _delivered(world, "null sender")


def test_long_lived_connection_many_requests(world: World) -> None:
    text = Path(world.policy.config).read_text()
    policy_port = int(text.split("inet:127.0.0.1:")[1].split('"')[0])
    request = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.%d\n"
               b"helo_name=mx.example.org\nsender=a@example.org\nrecipient=b@example.com\n\n")
    with socket.create_connection(("127.0.0.1", policy_port), timeout=10) as s:
        replies = []
        for i in (1, 2, 200, 3):
            s.sendall(request % i)
            buf = b""
            while not buf.endswith(b"\n\n"):
                buf += s.recv(4096)
            replies.append(buf)
    assert [r.split(b" ", 1)[0] for r in replies] == [
        b"action=PREPEND", b"action=PREPEND", b"action=550", b"action=PREPEND"]
