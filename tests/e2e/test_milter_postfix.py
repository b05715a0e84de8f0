"""The milter inside a real Postfix (private instance on loopback ports), relaying into
a capture sink; keys served by the loopback DNS server; captured mail checked by
independent verifiers (dkimpy, Mail::DKIM)."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import smtplib
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemons import MailsealProcess, free_port
from dnsserver import ZoneServer, make_zone
from interop.peers import Dkimpy, KeySet, MailDkim, OpenDkim
from mta import MailSink, PrivatePostfix, missing_postfix, wait_until

from mailseal.api import verify
from mailseal.dkim.keys import load_key
from mailseal.dns.resolver import DnsResolver
from mailseal.keystore import generate_key, private_pem, write_private_key

pytestmark = pytest.mark.skipif(missing_postfix() is not None,
                                reason=f"no private Postfix here: {missing_postfix()}")

OURS, THEIRS = "example.com", "example.net"
UNBOUND = 'server:\n  do-not-query-localhost: no\n  local-zone: "test." nodefault\n'


def message(sender: str, subject: str, body: str = "Hello,\r\nthis is a test.\r\n",
            extra: str = "") -> bytes:
    return (f"{extra}From: Sender <{sender}>\r\nTo: rcpt@example.org\r\nSubject: {subject}\r\n"
            f"Date: Mon, 23 Nov 2026 05:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@test>\r\n\r\n{body}").encode()


def _keyset(folder: Path, domain: str, dns_port: int) -> KeySet:
    folder.mkdir(mode=0o700)
    rsa, ed = generate_key("rsa"), generate_key("ed25519")
    write_private_key(folder / "rsa.pem", rsa)
    write_private_key(folder / "ed.pem", ed)
    from cryptography.hazmat.primitives import serialization
    seed = ed.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    (folder / "ed.seed").write_bytes(base64.b64encode(seed) + b"\n")
    os.chmod(folder / "ed.seed", 0o600)
    (folder / "unbound.conf").write_text(UNBOUND)
    return KeySet(domain=domain, dns_port=dns_port, rsa_selector="rsa", ed_selector="ed",
                  rsa_pem=folder / "rsa.pem", ed_pem=folder / "ed.pem",
                  ed_seed=folder / "ed.seed", unbound_conf=folder / "unbound.conf")


def _records(keys: KeySet) -> str:
    out = ""
    for sel, path in (("rsa", keys.rsa_pem), ("ed", keys.ed_pem)):
        key = load_key(path)
        value = f"v=DKIM1; k={key.key_type}; p={base64.b64encode(key.public_data()).decode()}"
        out += f"{sel}._domainkey TXT " + " ".join(
            f'"{value[i:i + 250]}"' for i in range(0, len(value), 250)) + "\n"
    return out


def milter_config(path: Path, *, port: int, dns: ZoneServer, keys: KeySet,
                  on_bad: str = '"accept"', selector: str = "rsa", unix: Path | None = None,
                  authserv: str = "mx.test") -> Path:
    unix_block = (f'[[listeners]]\nkind = "milter"\naddress = "unix:{unix}"\n'
                  f'group = "postfix"\nmode = "0660"\n') if unix else ""
    path.write_text(f"""
[server]
authserv_id = "{authserv}"
[[listeners]]
kind = "milter"
address = "inet:127.0.0.1:{port}"
{unix_block}
[dns]
nameservers = ["{dns.address}"]
timeout = 2.0
[[keys]]
name = "rsa"
domain = "{keys.domain}"
selector = "{selector}"
file = "{keys.rsa_pem}"
[[keys]]
name = "ed"
domain = "{keys.domain}"
selector = "ed"
file = "{keys.ed_pem}"
[signing]
internal_hosts = ["127.0.0.0/8"]
rules = [{{ match = "*@{keys.domain}", keys = ["rsa", "ed"] }}]
[verify]
on_bad_signature = {on_bad}
""")
    return path


@dataclass
class World:
    ours: KeySet
    theirs: KeySet
    dns: ZoneServer
    sink: MailSink
    postfix: PrivatePostfix
    folder: Path
    socket: Path
    fragile_port: int
    rejecting: MailsealProcess

    def send(self, data: bytes, *, client: str | None = None, service: str = "smtp",
             sender: str = "sender@example.com") -> tuple[int, bytes]:
        """One SMTP transaction; ``client`` sets the client address Postfix (and so the
        milter) sees, through XCLIENT. Returns the reply to the end of DATA."""
        port = self.postfix.ports[service]
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            if client is not None:
                code, text = s.docmd("XCLIENT", f"ADDR={client} NAME=[UNAVAILABLE]")
                assert code == 220, text
                s.ehlo()
            s.mail(sender)
            s.rcpt("rcpt@example.org")
            try:
                code, text = s.data(data)  # the final reply; smtplib raises only for DATA
            except smtplib.SMTPDataError as exc:
                return exc.smtp_code, exc.smtp_error
            return code, b"" if code == 250 else text

    def delivered(self, subject: str, timeout: float = 15.0) -> bytes:
        needle = f"Subject: {subject}\r\n".encode()
        found = wait_until(lambda: next((m.data for m in self.sink.messages
                                         if needle in m.data), None),
                           timeout=timeout, what=f"delivery of {subject!r}")
        return found

    def delivered_count(self, subject: str) -> int:
        needle = f"Subject: {subject}\r\n".encode()
        return sum(needle in m.data for m in self.sink.messages)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("milter-e2e")
    sockdir = Path(tempfile.mkdtemp(prefix="mailseal-e2e-", dir="/var/tmp"))
    sockdir.chmod(0o755)
    try:
        with ZoneServer() as dns:
            ours = _keyset(folder / "ours", OURS, dns.port)
            theirs = _keyset(folder / "theirs", THEIRS, dns.port)
            dns.set_zone(make_zone(OURS, _records(ours)), make_zone(THEIRS, _records(theirs)))
            rejecting_port, accepting_port, fragile_port = free_port(), free_port(), free_port()
            sock = sockdir / "mailseal.sock"
            rejecting = MailsealProcess(milter_config(
                folder / "rejecting.toml", port=rejecting_port, dns=dns, keys=ours, unix=sock,
                on_bad='{ action = "reject", reply = "550 5.7.1 DKIM signature did not verify" }'))
            accepting = MailsealProcess(milter_config(
                folder / "accepting.toml", port=accepting_port, dns=dns, keys=ours))
            with rejecting.start(("127.0.0.1", rejecting_port)), \
                    accepting.start(("127.0.0.1", accepting_port)), MailSink() as sink:
                services = (
                    "127.0.0.1:{accepting} inet n - n - - smtpd\n"
                    f"  -o smtpd_milters=inet:127.0.0.1:{accepting_port}\n"
                    "127.0.0.1:{unixsock} inet n - n - - smtpd\n"
                    f"  -o smtpd_milters=unix:{sock}\n"
                    "127.0.0.1:{fragile} inet n - n - - smtpd\n"
                    f"  -o smtpd_milters=inet:127.0.0.1:{fragile_port}\n")
                postfix = PrivatePostfix(
                    relayhost=sink.relayhost, services=services,
                    service_ports=["accepting", "unixsock", "fragile"],
                    main_cf={"smtpd_milters": f"inet:127.0.0.1:{rejecting_port}",
                             "non_smtpd_milters": f"inet:127.0.0.1:{rejecting_port}",
                             "milter_default_action": "tempfail",
                             "milter_protocol": "6",
                             "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
                             "mynetworks": "127.0.0.0/8 192.0.2.0/24"})
                with postfix:
                    yield World(ours, theirs, dns, sink, postfix, folder, sock, fragile_port,
                                rejecting)
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def _verify_ours(world: World, data: bytes) -> list[tuple[str, str]]:
    results = verify(data, dns=DnsResolver([world.dns.address]))
    return sorted((r.result.value, r.selector) for r in results)


def test_internal_mail_is_signed_and_verifies_with_peers(world: World) -> None:
    code, _ = world.send(message("alice@example.com", "internal one"))
    assert code == 250
    data = world.delivered("internal one")
    assert data.count(b"DKIM-Signature:") == 2
    assert _verify_ours(world, data) == [("pass", "ed"), ("pass", "rsa")]
    dkimpy = Dkimpy(world.ours, world.folder)
    assert [r.result for r in dkimpy.verify(data)] == ["pass", "pass"]
    # Mail::DKIM (Debian 12) has no Ed25519: its RSA verdict is the one to check.
    results = MailDkim(world.ours, world.folder).verify(data)
    assert "pass" in [r.result for r in results], results


def test_local_submission_is_signed(world: World) -> None:
    world.postfix.sendmail(message("alice@example.com", "local submission"),
                           "alice@example.com", ["rcpt@example.org"])
    data = world.delivered("local submission")
    assert _verify_ours(world, data) == [("pass", "ed"), ("pass", "rsa")]


def test_outside_client_claiming_our_domain_is_not_signed(world: World) -> None:
    code, _ = world.send(message("alice@example.com", "spoofed"), client="192.0.2.10")
    assert code == 250
    data = world.delivered("spoofed")
    assert b"DKIM-Signature:" not in data
    assert b"Authentication-Results: mx.test; dkim=none" in data.replace(b"\r\n\t", b" ")


@pytest.mark.parametrize("signer", ["opendkim", "dkimpy"])
def test_inbound_signed_elsewhere_gets_dkim_pass(world: World, signer: str) -> None:
    peer = (OpenDkim if signer == "opendkim" else Dkimpy)(world.theirs, world.folder)
    subject = f"inbound from {signer}"
    original = message("bob@example.net", subject)
    signed = peer.sign(original) + original
    assert world.send(signed, client="192.0.2.20")[0] == 250
    data = world.delivered(subject)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"dkim=pass" in head and b"header.d=example.net" in head, head


def test_tampered_inbound_is_rejected_with_the_configured_reply(world: World) -> None:
    original = message("bob@example.net", "tampered rejected")
    signed = Dkimpy(world.theirs, world.folder).sign(original) + original
    code, text = world.send(signed.replace(b"this is a test", b"this is a fraud"),
                            client="192.0.2.20")
    assert (code, text) == (550, b"5.7.1 DKIM signature did not verify"), \
        world.postfix.log_text()[-2500:]
    assert world.delivered_count("tampered rejected") == 0


def test_tampered_inbound_accepted_with_dkim_fail(world: World) -> None:
    original = message("bob@example.net", "tampered accepted")
    signed = Dkimpy(world.theirs, world.folder).sign(original) + original
    code, _ = world.send(signed.replace(b"this is a test", b"this is a fraud"),
                         client="192.0.2.20", service="accepting")
    assert code == 250
    head = world.delivered("tampered accepted").split(b"\r\n\r\n", 1)[0]
    assert b"dkim=fail" in head and b"body hash did not verify" in head.replace(b"\r\n\t", b" ")


def test_forged_authentication_results_are_stripped(world: World) -> None:
    forged = ("Authentication-Results: mx.test; dkim=pass header.d=example.com\r\n"
              "Authentication-Results: other.example; spf=pass\r\n")
    code, _ = world.send(message("eve@example.org", "forged ar", extra=forged),
                         client="192.0.2.30")
    assert code == 250
    head = world.delivered("forged ar").split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ")
    ours = [line for line in head.split(b"\r\n") if line.startswith(b"Authentication-Results: mx.test")]
    assert len(ours) == 1 and ours[0].startswith(
        b"Authentication-Results: mx.test; dkim=none reason=\"no signatures\"; spf=")
    assert b"Authentication-Results: other.example; spf=pass" in head


def test_unix_socket_listener_used_by_postfix(world: World) -> None:
    mode = world.socket.stat()
    assert stat.S_ISSOCK(mode.st_mode) and stat.S_IMODE(mode.st_mode) == 0o660
    import grp
    assert grp.getgrgid(mode.st_gid).gr_name == "postfix"
    assert world.send(message("alice@example.com", "via unix socket"), service="unixsock")[0] == 250
    data = world.delivered("via unix socket")
    assert _verify_ours(world, data) == [("pass", "ed"), ("pass", "rsa")]


def _fragile(world: World, name: str, selector: str = "rsa") -> MailsealProcess:
    config = milter_config(world.folder / f"{name}.toml", port=world.fragile_port,
                           dns=world.dns, keys=world.ours, selector=selector)
    return MailsealProcess(config).start(("127.0.0.1", world.fragile_port))


def test_milter_killed_mid_session_tempfails_then_nothing_is_lost(world: World) -> None:
    subject = "survives a milter crash"
    data = message("alice@example.com", subject)
    proc = _fragile(world, "fragile-crash")
    try:
        port = world.postfix.ports["fragile"]
        with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as s:
            s.ehlo()
            s.mail("alice@example.com")
            s.rcpt("rcpt@example.org")
            assert proc.proc is not None
            os.kill(proc.proc.pid, signal.SIGKILL)  # our own child, by PID
            proc.proc.wait(timeout=10)
            try:
                code, _ = s.data(data)
            except smtplib.SMTPDataError as exc:
                code = exc.smtp_code
            assert code == 451, world.postfix.log_text()[-3000:]
    finally:
        proc.stop()
    assert world.delivered_count(subject) == 0
    # The client retries once the milter is back: delivered, signed, exactly once.
    with _fragile(world, "fragile-back"):
        assert world.send(data, service="fragile")[0] == 250
        delivered = world.delivered(subject)
    assert _verify_ours(world, delivered) == [("pass", "ed"), ("pass", "rsa")]
    assert world.delivered_count(subject) == 1


def test_sighup_reloads_and_a_bad_file_keeps_the_old_config(world: World) -> None:
    proc = _fragile(world, "reload", selector="rsa")
    try:
        assert world.send(message("alice@example.com", "before reload"), service="fragile")[0] == 250
        assert b"s=rsa;" in world.delivered("before reload")
        # A new selector for the RSA key (published under both names).
        dns_zone = make_zone(OURS, _records(world.ours) + _records(world.ours).replace(
            "rsa._domainkey", "rsa2._domainkey"))
        world.dns.set_zone(dns_zone, make_zone(THEIRS, _records(world.theirs)))
        text = proc.config.read_text().replace('selector = "rsa"', 'selector = "rsa2"')
        proc.config.write_text(text)
        proc.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in proc.log_text() or None, timeout=10,
                   what="reload")
        assert world.send(message("alice@example.com", "after reload"), service="fragile")[0] == 250
        data = world.delivered("after reload")
        assert b"s=rsa2;" in data and _verify_ours(world, data) == [("pass", "ed"), ("pass", "rsa2")]
        proc.config.write_text(text.replace("[signing]", "[signing]\nbogus = 1"))
        proc.signal(signal.SIGHUP)
        wait_until(lambda: "reload failed" in proc.log_text() or None, timeout=10,
                   what="rejected reload")
        assert "signing.bogus: unknown setting" in proc.log_text()
        assert world.send(message("alice@example.com", "after bad reload"),
                          service="fragile")[0] == 250
        assert b"s=rsa2;" in world.delivered("after bad reload")
    finally:
        proc.stop()


def test_private_key_bytes_never_logged(world: World) -> None:
    pem = private_pem(load_key(world.ours.rsa_pem)).decode()
    secret_line = pem.splitlines()[1]
    log = world.rejecting.log_text()
    assert "role=sign" in log and secret_line not in log
