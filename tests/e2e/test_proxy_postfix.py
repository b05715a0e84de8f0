"""The SMTP proxy inside a real Postfix (private instance on loopback ports), configured
with the lines ``mailseal postfix-config --mode proxy`` prints: submission →
content_filter → proxy (out) → Postfix return port → sink, and inbound →
smtpd_proxy_filter → proxy (in) → Postfix → sink. One mailseal process serves four
proxies: out, in, one whose next hop is down, one whose next hop is a sink that can be
told to drop the connection mid-DATA. Captured mail is checked with dkimpy.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import smtplib
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemons import MailsealProcess, free_port, wait_port
from dnsserver import ZoneServer, make_zone
from mta import DataAction, MailSink, PrivatePostfix, SinkMessage, missing_postfix, wait_until

from mailseal.dkim.keys import load_key
from mailseal.frontends.cli.postfix_cmds import ProxyPlan, proxy_master_cf
from mailseal.keystore import generate_key, write_private_key

pytestmark = pytest.mark.skipif(missing_postfix() is not None,
                                reason=f"no private Postfix here: {missing_postfix()}")

dkim = pytest.importorskip("dkim")

OURS, THEIRS, AUTHSERV = "example.com", "example.net", "mx.test"
LOOP = "127.0.0.1"
REJECTED_RCPT = "nobody@example.org"
REJECTED_SENDER = "refused-at-end-of-data@example.com"


def message(sender: str, subject: str, body: str = "Hello,\r\nthis is a test.\r\n",
            extra: str = "", to: str = "rcpt@example.org") -> bytes:
    return (f"{extra}From: Sender <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
            f"Date: Mon, 23 Nov 2026 05:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n\r\n{body}").encode()


def _record(path: Path) -> str:
    key = load_key(path)
    value = f"v=DKIM1; k={key.key_type}; p={base64.b64encode(key.public_data()).decode()}"
    return " ".join(f'"{value[i:i + 250]}"' for i in range(0, len(value), 250))


def _authres(head: bytes) -> list[bytes]:
    """Our Authentication-Results fields (authserv-id mx.test), unfolded."""
    return [re.sub(rb"\r\n[ \t]+", b" ", f) for f in re.split(rb"\r\n(?![ \t])", head)
            if re.match(rb"(?i)Authentication-Results:\s*mx\.test;", f)]


def _with_option(services: str, service: str, option: str) -> str:
    """``services`` with ``-o option`` added at the end of the master.cf entry
    ``service`` (a later ``-o`` wins over an earlier one)."""
    lines = services.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(service + " ")) + 1
    while at < len(lines) and lines[at].startswith("  -o "):
        at += 1
    lines.insert(at, f"  -o {option}")
    return "\n".join(lines) + "\n"


@dataclass
class World:
    folder: Path
    dns: ZoneServer
    sink: MailSink
    relay_sink: MailSink  # the "flaky" proxy's next hop
    postfix: PrivatePostfix
    proxy: MailsealProcess
    ports: dict[str, int]  # the proxies' ports and the late return port
    spool: Path
    ours_key: Path
    theirs_key: Path

    def dnsfunc(self, name: bytes, timeout: float = 5) -> bytes | None:
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [LOOP]
        resolver.port = self.dns.port
        try:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        except dns.resolver.NXDOMAIN:
            return None
        return b"".join(next(iter(answer)).strings)

    def verifies(self, data: bytes) -> list[bool]:
        count = len(re.findall(rb"(?im)^DKIM-Signature:", data))
        return [dkim.DKIM(data).verify(idx=i, dnsfunc=self.dnsfunc) for i in range(count)]

    def sign_theirs(self, data: bytes) -> bytes:
        return dkim.sign(data, b"net", THEIRS.encode(), self.theirs_key.read_bytes(),
                         canonicalize=(b"relaxed", b"simple")) + data

    def send(self, data: bytes, *, service: str, rcpts: tuple[str, ...] = ("rcpt@example.org",),
             sender: str = "alice@example.com") -> tuple[int, bytes, dict[str, tuple[int, bytes]]]:
        """One transaction on a Postfix service (or a proxy port, ``proxy:NAME``).
        Returns the final reply and each recipient's reply."""
        port = (self.ports[service.removeprefix("proxy:")] if service.startswith("proxy:")
                else self.postfix.ports[service])
        with smtplib.SMTP(LOOP, port, local_hostname="client.test", timeout=60) as s:
            s.ehlo()
            code, text = s.mail(sender)
            assert code == 250, text
            answers = {r: s.rcpt(r) for r in rcpts}
            if not any(c == 250 for c, _ in answers.values()):
                return 0, b"", answers
            code, text = s.data(data)  # the final reply (smtplib raises only for DATA)
            return code, text, answers

    def delivered(self, subject: str, sink: MailSink | None = None,
                  timeout: float = 20.0) -> SinkMessage:
        needle = f"Subject: {subject}\r\n".encode()
        target = sink or self.sink
        return wait_until(lambda: next((m for m in target.messages if needle in m.data), None),
                          timeout=timeout, what=f"delivery of {subject!r}")

    def count(self, subject: str, sink: MailSink | None = None) -> int:
        needle = f"Subject: {subject}\r\n".encode()
        return sum(needle in m.data for m in (sink or self.sink).messages)

    def proxy_fds(self) -> list[str]:
        assert self.proxy.proc is not None
        fd_dir = Path(f"/proc/{self.proxy.proc.pid}/fd")
        out = []
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                out.append(os.readlink(fd))
        return out

    def assert_nothing_left(self, sockets_before: int | None = None) -> None:
        """No spool file in the spool directory, none open (anonymous ones show as
        "(deleted)"), and no more sockets than before."""
        assert list(self.spool.iterdir()) == []
        wait_until(lambda: not [f for f in self.proxy_fds() if f.startswith(str(self.spool))],
                   timeout=10, what=f"the proxy's spool files to close: {self.proxy_fds()}")
        if sockets_before is not None:
            wait_until(lambda: self.sockets() <= sockets_before, timeout=10,
                       what=f"proxy sockets back to {sockets_before}: {self.sockets()}")

    def sockets(self) -> int:
        return sum(f.startswith("socket:") for f in self.proxy_fds())


def _proxy_config(folder: Path, dns: ZoneServer, keys: dict[str, Path], ports: dict[str, int],
                  relays: dict[str, str], spool: Path) -> Path:
    listeners = "".join(
        f'[[listeners]]\nkind = "proxy"\naddress = "inet:{LOOP}:{ports[name]}"\n'
        f'role = "{role}"\nrelay = "{relays[name]}"\n'
        for name, role in (("out", "out"), ("in", "in"), ("down", "out"), ("flaky", "out")))
    path = folder / "proxy.toml"
    path.write_text(f"""
[server]
authserv_id = "{AUTHSERV}"
max_message_bytes = 40000000
{listeners}
[proxy]
spool_threshold = 65536
spool_directory = "{spool}"
relay_timeout = 20
relay_data_timeout = 60
x_dkim_authentication_results = true
[dns]
nameservers = ["{dns.address}"]
timeout = 2.0
[[keys]]
name = "rsa"
domain = "{OURS}"
selector = "rsa"
file = "{keys['ours']}"
[signing]
internal_hosts = []
rules = [{{ match = "*@{OURS}", keys = ["rsa"] }}]
[verify]
on_bad_signature = {{ action = "reject", reply = "550 5.7.1 DKIM signature did not verify" }}
""")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("proxy-e2e")
    spool = Path(tempfile.mkdtemp(prefix="mailseal-spool-"))
    keys = {"ours": folder / "ours.pem", "theirs": folder / "theirs.pem"}
    for path in keys.values():
        write_private_key(path, generate_key("rsa"))
    ports = {name: free_port() for name in ("out", "in", "down", "flaky", "outret", "inret",
                                            "late")}
    zones = (make_zone(OURS, f"rsa._domainkey TXT {_record(keys['ours'])}"),
             make_zone(THEIRS, f"net._domainkey TXT {_record(keys['theirs'])}"))
    with ZoneServer(*zones) as dns, MailSink() as sink, MailSink() as relay_sink:
        relays = {"out": f"{LOOP}:{ports['outret']}", "in": f"{LOOP}:{ports['inret']}",
                  "down": f"{LOOP}:{ports['late']}", "flaky": relay_sink.address}
        proxy = MailsealProcess(_proxy_config(folder, dns, keys, ports, relays, spool), "proxy")
        plan = ProxyPlan(out_listen=(LOOP, ports["out"]), out_relay=(LOOP, ports["outret"]),
                         in_listen=(LOOP, ports["in"]), in_relay=(LOOP, ports["inret"]),
                         submission=f"{LOOP}:{{submission}}", inbound=f"{LOOP}:{{inbound}}",
                         chroot="n", submission_auth=False)
        services = proxy_master_cf(plan)
        # The next hop of the inbound route refuses one recipient and one subject, so
        # the tests can see its answers reach the client.
        inret = f"{LOOP}:{ports['inret']}"
        services = _with_option(services, inret, "smtpd_recipient_restrictions="
                                "check_recipient_access,regexp:{root}/rcpt.regexp,"
                                "permit_mynetworks,reject")
        services = _with_option(services, inret, "smtpd_end_of_data_restrictions="
                                "check_sender_access,regexp:{root}/sender.regexp")
        # And the one of the outbound route refuses that recipient too: Postfix's SMTP
        # client pipelines MAIL and the RCPTs, so the proxy sends them on together.
        services = _with_option(services, f"{LOOP}:{ports['outret']}",
                                "smtpd_recipient_restrictions=check_recipient_access,"
                                "regexp:{root}/rcpt.regexp,permit_mynetworks,reject")
        for name in ("down", "flaky"):
            services += (f"{LOOP}:{{{name}sub}} inet n - n - - smtpd\n"
                         f"  -o content_filter=mailseal-out:[{LOOP}]:{ports[name]}\n"
                         "  -o receive_override_options=no_address_mappings\n")
        postfix = PrivatePostfix(
            relayhost=sink.relayhost, services=services,
            service_ports=["submission", "inbound", "downsub", "flakysub"],
            main_cf={"message_size_limit": "40000000", "smtpd_proxy_timeout": "120s"})
        with proxy.start((LOOP, ports["out"])), postfix:
            root = postfix.root
            assert root is not None
            (root / "rcpt.regexp").write_text(f"/^{re.escape(REJECTED_RCPT)}$/ REJECT no such user here\n")
            (root / "sender.regexp").write_text(f"/^{re.escape(REJECTED_SENDER)}$/ REJECT not wanted\n")
            yield World(folder, dns, sink, relay_sink, postfix, proxy, ports, spool,
                        keys["ours"], keys["theirs"])
    shutil.rmtree(spool, ignore_errors=True)


# -- the two routes ------------------------------------------------------------------------


def test_submission_is_signed_after_the_queue(world: World) -> None:
    code, text, _ = world.send(message("alice@example.com", "signed after queue"),
                               service="submission")
    assert code == 250, text
    got = world.delivered("signed after queue")
    assert world.verifies(got.data) == [True]
    assert b"d=example.com" in got.header and b"s=rsa" in got.header
    # XFORWARD went through: the return smtpd names the original client.
    assert b"client.test" in got.header, got.header.decode()
    log = world.proxy.log_text()
    assert "proxy=out role=sign result=signed" in log, log[-2000:]


def test_after_the_queue_each_recipient_gets_the_next_hops_answer(world: World) -> None:
    """Postfix's SMTP client pipelines MAIL, both RCPTs and DATA to the proxy, which
    sends MAIL and the RCPTs on in one write; the return smtpd refuses one recipient:
    that one bounces with its reason, the other gets the signed message."""
    code, text, _ = world.send(message("alice@example.com", "pipelined recipients"),
                               service="submission", rcpts=("rcpt@example.org", REJECTED_RCPT))
    assert code == 250, text
    got = world.delivered("pipelined recipients")
    assert got.rcpt_tos == ("rcpt@example.org",)
    assert world.verifies(got.data) == [True]
    bounce = wait_until(lambda: next(
        (m for m in world.sink.messages if b"Subject: Undelivered Mail Returned to Sender"
         in m.data and b"Subject: pipelined recipients" in m.data), None),
        timeout=20, what="the bounce for the refused recipient")
    assert bounce.rcpt_tos == ("alice@example.com",)
    assert REJECTED_RCPT.encode() in bounce.data and b"no such user here" in bounce.data
    world.assert_nothing_left()


def test_inbound_is_verified_before_the_queue(world: World) -> None:
    forged = ("Authentication-Results: mx.test; dkim=pass header.d=example.net\r\n"
              "Authentication-Results: other.example; spf=pass\r\n"
              "X-DKIM-Authentication-Results: pass\r\n")
    signed = world.sign_theirs(message("bob@example.net", "verified before queue",
                                       extra=forged))
    code, text, _ = world.send(signed, service="inbound", sender="bob@example.net")
    assert code == 250, text
    head = world.delivered("verified before queue").header
    ours = _authres(head)
    assert len(ours) == 1 and b"dkim=pass" in ours[0] and b"header.d=example.net" in ours[0], head
    assert b"Authentication-Results: other.example; spf=pass" in head
    assert re.findall(rb"(?m)^X-DKIM-Authentication-Results:.*$", head) == \
        [b"X-DKIM-Authentication-Results: pass\r"]


def test_inbound_tampered_gets_our_reject_and_nothing_is_queued(world: World) -> None:
    signed = world.sign_theirs(message("bob@example.net", "tampered inbound"))
    code, text, _ = world.send(signed.replace(b"this is a test", b"this is a fraud"),
                               service="inbound", sender="bob@example.net")
    assert (code, text) == (550, b"5.7.1 DKIM signature did not verify")
    time.sleep(0.5)
    assert world.count("tampered inbound") == 0


def test_inbound_unsigned_and_own_domain_are_verified_not_signed(world: World) -> None:
    code, _, _ = world.send(message("alice@example.com", "inbound from us"), service="inbound")
    assert code == 250
    head = world.delivered("inbound from us").header
    assert b"DKIM-Signature" not in head
    ours = _authres(head)
    assert len(ours) == 1 and b'dkim=none reason="no signatures"' in ours[0], head
    assert b"X-DKIM-Authentication-Results: none" in head


def test_next_hop_answers_reach_the_client_before_the_queue(world: World) -> None:
    data = message("alice@example.com", "two recipients, one refused")
    code, text, answers = world.send(data, service="inbound",
                                     rcpts=("rcpt@example.org", REJECTED_RCPT))
    assert answers["rcpt@example.org"][0] == 250
    assert answers[REJECTED_RCPT][0] == 554 and b"no such user here" in answers[REJECTED_RCPT][1]
    assert code == 250, text
    got = world.delivered("two recipients, one refused")
    assert got.rcpt_tos == ("rcpt@example.org",)
    # The next hop refuses the message at its end: the client sees that, not a 250.
    code, text, _ = world.send(message(REJECTED_SENDER, "refused at the end"),
                               service="inbound", sender=REJECTED_SENDER)
    assert code == 554 and b"not wanted" in text, (code, text)
    time.sleep(0.5)
    assert world.count("refused at the end") == 0


# -- nothing is lost ----------------------------------------------------------------------


def _queued_subjects(world: World, count: int, reason: str) -> None:
    """All ``count`` messages are in Postfix's queue, each deferred for ``reason`` at
    least once. Which queue a message is in at the moment (deferred, or incoming and
    active on a retry) does not matter: it is kept either way."""
    def all_deferred() -> bool:
        queue = world.postfix.queue()
        return len(queue) == count and all(
            reason in q.recipients[0].delay_reason for q in queue)
    wait_until(all_deferred, timeout=30, interval=0.3,
               what=f"{count} deferred messages ({reason}): {world.postfix.queue()}")


def test_relay_down_keeps_mail_queued_until_it_is_back(world: World) -> None:
    subjects = [f"while the relay is down {i}" for i in range(4)]
    for subject in subjects:
        assert world.send(message("alice@example.com", subject), service="downsub")[0] == 250
    _queued_subjects(world, len(subjects), "next hop not available")
    assert not any(world.count(s) for s in subjects)
    # The next hop comes back: a return smtpd on the port the proxy relays to.
    world.postfix.reload(services=world.postfix.services + (
        f"{LOOP}:{world.ports['late']} inet n - n - - smtpd\n"
        "  -o content_filter=\n  -o smtpd_authorized_xforward_hosts=127.0.0.0/8\n"))
    wait_port(LOOP, world.ports["late"])
    world.postfix.flush()
    world.postfix.wait_queue_empty(timeout=30)
    for subject in subjects:
        got = world.delivered(subject)
        assert world.verifies(got.data) == [True]
    assert [world.count(s) for s in subjects] == [1] * len(subjects)


def test_relay_dropping_mid_data_keeps_mail_queued_until_it_accepts(world: World) -> None:
    subjects = [f"relay drops mid data {i}" for i in range(3)]
    # Every attempt is dropped until the test says otherwise: Postfix retries after 1 s,
    # and a retry that succeeded before all three were seen deferred made this flaky.
    world.relay_sink.default_action = DataAction.drop_mid_data()
    try:
        body = "x" * 70 + "\r\n"
        for subject in subjects:
            data = message("alice@example.com", subject, body=body * 2000)  # 144 KB
            assert world.send(data, service="flakysub")[0] == 250
        world.relay_sink.wait_for_attempts(len(subjects), timeout=30)
        _queued_subjects(world, len(subjects), "next hop")
        assert not world.relay_sink.messages
    finally:
        world.relay_sink.default_action = DataAction.accept()
    world.postfix.flush()
    world.postfix.wait_queue_empty(timeout=30)
    for subject in subjects:
        assert world.verifies(world.delivered(subject, world.relay_sink).data) == [True]
    assert [world.count(s, world.relay_sink) for s in subjects] == [1] * len(subjects)
    world.assert_nothing_left()


# -- hostile and large input, straight at the proxies ----------------------------------------


def test_client_disconnecting_mid_data_leaves_nothing(world: World) -> None:
    before = world.sockets()
    with socket.create_connection((LOOP, world.ports["out"]), timeout=10) as s, \
            s.makefile("rb") as reader:
        assert reader.readline().startswith(b"220")
        s.sendall(b"EHLO client.test\r\n")
        while not reader.readline().startswith(b"250 "):
            pass
        s.sendall(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<rcpt@example.org>\r\nDATA\r\n")
        assert [reader.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        s.sendall(message("alice@example.com", "abandoned mid data", body="y" * 200_000))
    world.assert_nothing_left(before)
    time.sleep(0.5)
    assert world.count("abandoned mid data") == 0


def test_thirty_megabytes_spool_to_disk_and_arrive_signed(world: World) -> None:
    line = ("0123456789" * 7 + "\r\n").encode()
    body = line * (30 * 1024 * 1024 // len(line))
    data = message("alice@example.com", "thirty megabytes", body="") + body
    code, text, _ = world.send(data, service="proxy:out")
    assert code == 250, text
    got = world.delivered("thirty megabytes", timeout=60)
    assert len(got.data) > 30_000_000
    assert world.verifies(got.data) == [True]
    assert "spooled=disk" in world.proxy.log_text()
    world.assert_nothing_left()


def test_a_hundred_recipients_each_answered(world: World) -> None:
    rcpts = tuple(f"r{i}@example.org" for i in range(100))
    code, text, answers = world.send(message("bob@example.net", "a hundred recipients"),
                                     service="proxy:in", rcpts=rcpts)
    assert code == 250, text
    assert {c for c, _ in answers.values()} == {250}
    wait_until(lambda: sum(len(m.rcpt_tos) for m in world.sink.messages
                           if b"Subject: a hundred recipients\r\n" in m.data) == 100,
               timeout=30, what="100 recipients delivered")
    world.assert_nothing_left()


@pytest.mark.parametrize(("name", "body", "signed"), [
    ("long line", "z" * 5000 + "\r\n", False),  # Postfix folds it on the way to the sink
    ("bare LF", "one\ntwo\n.three\n\n", True),
    ("NUL bytes", "a\x00b\r\n\x00\r\n", True),
])
def test_odd_content_gets_a_defined_answer(world: World, name: str, body: str,
                                           signed: bool) -> None:
    before = world.sockets()
    subject = f"odd content: {name}"
    data = message("alice@example.com", subject, body="").replace(b"\r\n", b"\n") \
        if name == "bare LF" else message("alice@example.com", subject, body="")
    data += body.encode()
    code, text, _ = world.send(data, service="proxy:out")
    assert code == 250, (code, text)
    got = world.delivered(subject)
    if signed:
        assert world.verifies(got.data) == [True], got.data
    world.assert_nothing_left(before)


def test_overlong_command_line_is_refused_and_the_session_goes_on(world: World) -> None:
    with socket.create_connection((LOOP, world.ports["in"]), timeout=10) as s, \
            s.makefile("rb") as reader:
        assert reader.readline().startswith(b"220")
        s.sendall(b"EHLO " + b"a" * 5000 + b"\r\nNOOP\r\nQUIT\r\n")
        assert reader.readline().startswith(b"500 5.5.2")
        assert reader.readline().startswith(b"250 2.0.0")
        assert reader.readline().startswith(b"221")
