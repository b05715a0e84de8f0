"""The milter driven by Debian's miltertest (an independent libmilter-based MTA
simulator), over inet and unix sockets, keys on the loopback DNS server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dkim
import dns.resolver
import pytest
from daemons import MailsealProcess, free_port, make_keys
from dnsserver import ZoneServer

from mailseal.api import verify
from mailseal.dkim.keys import load_key
from mailseal.dkim.publish import record_value
from mailseal.dns.resolver import DnsResolver
from mailseal.keystore import generate_key

pytestmark = pytest.mark.skipif(shutil.which("miltertest") is None,
                                reason="miltertest not installed (Debian package miltertest)")

MESSAGE_HEADERS = [("From", "Alice <alice@example.com>"), ("To", "bob@example.org"),
                   ("Subject", "miltertest"), ("Date", "Mon, 23 Nov 2026 05:00:00 +0000")]
BODY = "Hello Bob,\r\nthis went through the milter.\r\n"


def _txt(value: str) -> str:
    return " ".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("milter")
    keys = make_keys(folder)
    outside = generate_key("rsa")
    zone = ("$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns hostmaster 1 60 60 60 60\n"
            f"rsa._domainkey IN TXT {_txt(record_value(load_key(keys['rsa'])))}\n"
            f"ed._domainkey IN TXT {_txt(record_value(load_key(keys['ed'])))}\n")
    other = ("$ORIGIN example.net.\n$TTL 60\n@ IN SOA ns hostmaster 1 60 60 60 60\n"
             f"out._domainkey IN TXT {_txt(record_value(outside))}\n")
    with ZoneServer(zone, other) as server:
        port = free_port()
        sock = folder / "sock" / "mailseal.sock"
        config = folder / "mailseal.toml"
        config.write_text(f"""
[server]
authserv_id = "mx.test"
[[listeners]]
kind = "milter"
address = "inet:127.0.0.1:{port}"
[[listeners]]
kind = "milter"
address = "unix:{sock}"
mode = "0660"
[dns]
nameservers = ["{server.address}"]
timeout = 1.0
[[keys]]
name = "rsa"
domain = "example.com"
selector = "rsa"
file = "{keys['rsa']}"
[[keys]]
name = "ed"
domain = "example.com"
selector = "ed"
file = "{keys['ed']}"
[signing]
internal_hosts = ["127.0.0.0/8"]
rules = [{{ match = "*@example.com", keys = ["rsa", "ed"] }}]
[verify]
on_bad_signature = {{ action = "reject", reply = "550 5.7.1 DKIM signature did not verify" }}
""")
        with MailsealProcess(config).start(("127.0.0.1", port)) as proc:
            yield {"port": port, "sock": sock, "dns": server, "proc": proc, "folder": folder,
                   "outside": outside}


def _lua_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace(
        "\n", "\\n") + '"'


def run_lua(setup: dict[str, object], client_ip: str, headers: list[tuple[str, str]],
            body: str, checks: str, address: str | None = None) -> str:
    folder = setup["folder"]
    assert isinstance(folder, Path)
    target = address or f"inet:{setup['port']}@127.0.0.1"
    lines = [f"local conn = mt.connect({_lua_quote(target)}, 5, 0.2)",
             'if conn == nil then error("connect failed") end',
             'mt.macro(conn, SMFIC_CONNECT, "j", "mx.test")',
             f'assert(mt.conninfo(conn, "client.test", {_lua_quote(client_ip)}) == nil)',
             'mt.macro(conn, SMFIC_MAIL, "i", "Q1D")',
             'assert(mt.mailfrom(conn, "alice@example.com") == nil)',
             'assert(mt.rcptto(conn, "bob@example.org") == nil)']
    lines += [f"assert(mt.header(conn, {_lua_quote(n)}, {_lua_quote(v)}) == nil)"
              for n, v in headers]
    lines += ["assert(mt.eoh(conn) == nil)", f"assert(mt.bodystring(conn, {_lua_quote(body)}) == nil)",
              "assert(mt.eom(conn) == nil)", checks, "mt.disconnect(conn)"]
    script = folder / "case.lua"
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run(["miltertest", "-s", str(script)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _message(headers: list[tuple[str, str]], body: str) -> bytes:
    return ("".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n" + body).encode()


def _dkimpy_dns(server: ZoneServer):  # type: ignore[no-untyped-def]
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = ["127.0.0.1"], server.port

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        answer = res.resolve(name.decode().rstrip("."), "TXT")
        return b"".join(b"".join(r.strings) for r in answer)
    return lookup


@pytest.mark.parametrize("transport", ["inet", "unix"])
def test_internal_mail_is_signed_and_verifies_elsewhere(setup: dict[str, object],
                                                       transport: str) -> None:
    address = f"unix:{setup['sock']}" if transport == "unix" else None
    out = run_lua(setup, "127.0.0.1", MESSAGE_HEADERS, BODY, """
assert(mt.getreply(conn) == SMFIR_ACCEPT, "not accepted")
assert(mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature"), "no signature")
print("SIG1:" .. string.gsub(mt.getheader(conn, "DKIM-Signature", 0), "\\n", "|"))
print("SIG2:" .. string.gsub(mt.getheader(conn, "DKIM-Signature", 1), "\\n", "|"))
""", address)
    # miltertest prints the value as the MTA would get it: folded with bare LF (| here).
    sigs = [line.partition(":")[2].rsplit("\t", 1)[0] if line.endswith(("\t1", "\t2"))
            else line.partition(":")[2] for line in out.splitlines() if line.startswith("SIG")]
    assert len(sigs) == 2, out
    signed = "".join(f"DKIM-Signature:{s}\r\n".replace("|", "\r\n") for s in sigs).encode()
    signed += _message(MESSAGE_HEADERS, BODY)
    server = setup["dns"]
    assert isinstance(server, ZoneServer)
    results = verify(signed, dns=DnsResolver([server.address]))
    assert sorted((r.result.value, r.selector) for r in results) == [("pass", "ed"),
                                                                    ("pass", "rsa")]
    checker = dkim.DKIM(signed)
    assert all(checker.verify(idx=i, dnsfunc=_dkimpy_dns(server)) for i in range(2))


def test_unix_socket_mode(setup: dict[str, object]) -> None:
    sock = setup["sock"]
    assert isinstance(sock, Path)
    assert oct(sock.stat().st_mode & 0o777) == "0o660"


def test_outside_mail_claiming_our_domain_is_not_signed(setup: dict[str, object]) -> None:
    run_lua(setup, "192.0.2.9", MESSAGE_HEADERS, BODY, """
assert(mt.getreply(conn) == SMFIR_ACCEPT)
assert(not mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature"), "outside mail was signed")
assert(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"))
local ar = string.gsub(mt.getheader(conn, "Authentication-Results", 0), "\\n\\t", " ")
assert(string.find(ar, "mx.test; dkim=none", 1, true), ar)
""")


def _outside_signed(setup: dict[str, object], body: str) -> list[tuple[str, str]]:
    outside = setup["outside"]
    field = dkim.sign(_message(MESSAGE_HEADERS, body).replace(b"example.com>", b"example.net>"),
                      b"out", b"example.net", _pem(outside), include_headers=[b"from", b"to",
                                                                              b"subject"])
    name, _, value = field.decode().partition(":")
    headers = [(n, v.replace("example.com>", "example.net>")) for n, v in MESSAGE_HEADERS]
    return [("Authentication-Results", "mx.test; dkim=pass header.d=example.net"),
            (name, value.strip().replace("\r\n", "\n")), *headers]


def _pem(key: object) -> bytes:
    from mailseal.keystore import private_pem
    return private_pem(key)  # type: ignore[arg-type]


def test_inbound_pass_strips_forged_authentication_results(setup: dict[str, object]) -> None:
    headers = _outside_signed(setup, BODY)
    run_lua(setup, "192.0.2.9", headers, BODY, """
assert(mt.getreply(conn) == SMFIR_ACCEPT)
assert(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"), "forged A-R kept")
local ar = mt.getheader(conn, "Authentication-Results", 0)
assert(string.find(ar, "dkim=pass", 1, true), ar)
assert(string.find(ar, "header.d=example.net", 1, true), ar)
""")


def test_inbound_tampered_is_rejected_with_configured_reply(setup: dict[str, object]) -> None:
    headers = _outside_signed(setup, BODY)
    run_lua(setup, "192.0.2.9", headers, BODY.replace("Bob", "Eve"), """
assert(mt.getreply(conn) == SMFIR_REPLYCODE, "expected a reject reply code")
""")
    proc = setup["proc"]
    assert isinstance(proc, MailsealProcess)
    assert "action=reject" in proc.log_text()
    assert "body hash did not verify" in proc.log_text()


def test_abort_then_next_message_on_same_connection(setup: dict[str, object]) -> None:
    folder = setup["folder"]
    assert isinstance(folder, Path)
    script = folder / "abort.lua"
    script.write_text(f"""
local conn = mt.connect("inet:{setup['port']}@127.0.0.1", 5, 0.2)
assert(mt.conninfo(conn, "client.test", "127.0.0.1") == nil)
assert(mt.mailfrom(conn, "alice@example.com") == nil)
assert(mt.header(conn, "From", "alice@example.com") == nil)
assert(mt.abort(conn) == nil)
assert(mt.mailfrom(conn, "alice@example.com") == nil)
assert(mt.rcptto(conn, "bob@example.org") == nil)
assert(mt.header(conn, "From", "alice@example.com") == nil)
assert(mt.eoh(conn) == nil)
assert(mt.bodystring(conn, "hi\\r\\n") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_ACCEPT)
assert(mt.eom_check(conn, MT_HDRINSERT, "DKIM-Signature"))
mt.disconnect(conn)
""")
    done = subprocess.run(["miltertest", "-s", str(script)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
