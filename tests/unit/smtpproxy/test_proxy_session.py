"""The proxy in process, between a raw SMTP client and a scripted next hop (both on
loopback, port 0): the ordering and failure rules of proxy.py, role handling, STARTTLS,
timeouts, shutdown, and that nothing — task, socket, spool file — outlives a session.

The next hop is this package's own server codec driven by a small script, so each test
says exactly how it misbehaves: refuse, hang, drop mid-DATA, close after accepting.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailseal import api
from mailseal.config.load import Config, build_config
from mailseal.config.model import Listener
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.publish import record_value
from mailseal.dns.static import StaticResolver
from mailseal.dns.types import Answer, Status
from mailseal.frontends.daemon import Runtime
from mailseal.frontends.smtpproxy.client_codec import NEED_DATA as REPLY_NEEDED
from mailseal.frontends.smtpproxy.client_codec import ReplyReader
from mailseal.frontends.smtpproxy.events import (
    Content,
    Data,
    EndOfData,
    Event,
    Helo,
    Mail,
    Quit,
    Rcpt,
    Refused,
    Xforward,
)
from mailseal.frontends.smtpproxy.listener import start_listener
from mailseal.frontends.smtpproxy.replies import Reply
from mailseal.frontends.smtpproxy.server_codec import NEED_DATA, SmtpServerCodec
from mailseal.keystore import write_private_key

LOOP = "127.0.0.1"


# -- a scripted next hop ----------------------------------------------------------------------


DEFAULT_GREETING = Reply(220, "", "hop.test ESMTP")
DEFAULT_END = Reply(250, "2.0.0", "Ok: queued as HOP1")


TRY_LATER = Reply(451, "4.3.0", "try later")


@dataclass
class Hop:
    """What the next hop does. ``hang`` names a step it never answers; ``drop_in_data``
    closes after the first content; ``close_after_message`` closes after its 250."""

    greeting: Reply = DEFAULT_GREETING
    extensions: tuple[str, ...] = ("PIPELINING", "8BITMIME", "SIZE 100000000",
                                   "XFORWARD NAME ADDR HELO IDENT")
    refuse_rcpt: frozenset[str] = frozenset()
    refuse_mail: bool = False
    mail_refusal: Reply = TRY_LATER  # a 421 also closes
    refuse_xforward: bool = False
    end_reply: Reply = DEFAULT_END
    hang: str = ""  # "greeting", "MAIL", "end"
    drop_in_data: bool = False
    close_after_message: bool = False
    keep_content: bool = True  # False: count the octets only (memory tests)
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    xforward: list[dict[str, str]] = field(default_factory=list)
    connections: int = 0
    octets: int = 0
    # At each XFORWARD and MAIL: how many commands had come with it (pipelined).
    pipelined: list[int] = field(default_factory=list)


class HopServer:
    def __init__(self, hop: Hop) -> None:
        self.hop = hop
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> HopServer:
        self.server = await asyncio.start_server(self._serve, LOOP, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hop = self.hop
        hop.connections += 1
        codec = SmtpServerCodec()
        content = b""
        try:
            if hop.hang == "greeting":
                await asyncio.sleep(30)
            writer.write(codec.send(hop.greeting))
            while not codec.closed:
                event = codec.next_event()
                if event is NEED_DATA:
                    await writer.drain()
                    data = await reader.read(65536)
                    if not data:
                        return
                    codec.receive_data(data)
                    continue
                assert not isinstance(event, type(NEED_DATA))
                if isinstance(event, Content):
                    content += event.data if hop.keep_content else b""
                    hop.octets += len(event.data)
                    if hop.drop_in_data:
                        return
                    continue
                if isinstance(event, (Xforward, Mail)):
                    hop.pipelined.append(len(codec.batch_ahead()))
                reply = self._answer(event)
                if reply is None:
                    await asyncio.sleep(30)
                    return
                if isinstance(event, EndOfData) and reply.positive:
                    hop.messages.append(content)
                content = b""
                writer.write(codec.send(reply))
                if isinstance(event, EndOfData) and hop.close_after_message:
                    await writer.drain()
                    return
            await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass  # the test is over, or the proxy hung up: both are fine here
        finally:
            writer.close()

    def _answer(self, event: Event) -> Reply | None:
        hop = self.hop
        name = type(event).__name__.upper()
        hop.commands.append(name)
        if hop.hang == name or (hop.hang == "end" and isinstance(event, EndOfData)):
            return None
        if isinstance(event, Refused):
            return event.reply
        if isinstance(event, Helo):
            return Reply(250, "", "hop.test", hop.extensions if event.extended else ())
        if isinstance(event, Xforward):
            if hop.refuse_xforward:
                return Reply(550, "5.7.0", "XFORWARD not allowed")
            hop.xforward.append(event.decoded())
        if isinstance(event, Mail) and hop.refuse_mail:
            return hop.mail_refusal
        if isinstance(event, Rcpt) and event.address in hop.refuse_rcpt:
            return Reply(550, "5.1.1", f"<{event.address}>: no such user")
        if isinstance(event, Data):
            return Reply(354, "", "go ahead")
        if isinstance(event, EndOfData):
            return hop.end_reply
        if isinstance(event, Quit):
            return Reply(221, "2.0.0", "Bye")
        return Reply(250, "2.0.0", "Ok")


# -- a raw client -------------------------------------------------------------------------------


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.replies = ReplyReader()

    async def reply(self, timeout: float = 10) -> Reply:
        async with asyncio.timeout(timeout):
            while (reply := self.replies.next_reply()) is REPLY_NEEDED:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("closed by the proxy")
                self.replies.receive_data(data)
        assert isinstance(reply, Reply)
        return reply

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: str) -> Reply:
        await self.send(line.encode() + b"\r\n")
        return await self.reply()

    async def closed(self, timeout: float = 5) -> bool:
        async with asyncio.timeout(timeout):
            return await self.reader.read() == b""

    async def transaction(self, message: bytes, rcpts: tuple[str, ...] = ("b@example.org",),
                          sender: str = "alice@example.com") -> list[Reply]:
        out = [await self.command(f"MAIL FROM:<{sender}>")]
        out += [await self.command(f"RCPT TO:<{r}>") for r in rcpts]
        out.append(await self.command("DATA"))
        if out[-1].code == 354:
            await self.send(message.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n")
            out.append(await self.reply())
        return out


# -- the proxy ----------------------------------------------------------------------------------


class Resolver:
    def __init__(self, records: dict[str, bytes]) -> None:
        self.records = records

    async def txt(self, name: str) -> Answer[bytes]:
        value = self.records.get(name.rstrip("."))
        return Answer(Status.OK, (value,)) if value else Answer(Status.NXDOMAIN)


def message(subject: str, sender: str = "alice@example.com", body: bytes = b"Hello.\r\n",
            extra: bytes = b"") -> bytes:
    return (extra + f"From: <{sender}>\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@t>\r\n\r\n".encode() + body)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory, rsa_key: SigningKey) -> Path:
    path = tmp_path_factory.mktemp("keys") / "rsa.pem"
    write_private_key(path, rsa_key)
    return path


@dataclass
class Proxy:
    runtime: Runtime
    port: int
    hop: Hop
    server: asyncio.Server
    clients: list[Client] = field(default_factory=list)

    async def client(self) -> Client:
        reader, writer = await asyncio.open_connection(LOOP, self.port)
        self.clients.append(Client(reader, writer))
        return self.clients[-1]

    async def ready_client(self) -> Client:
        client = await self.client()
        assert (await client.reply()).code == 220
        assert (await client.command("EHLO client.test")).code == 250
        return client


def make_config(tmp: Path, key_file: Path, **sections: dict[str, Any]) -> Config:
    data: dict[str, Any] = {
        "server": {"authserv_id": "mx.test", "session_timeout": 5.0, "message_timeout": 5.0},
        "keys": [{"name": "rsa", "domain": "example.com", "selector": "s", "file": str(key_file)}],
        "signing": {"rules": [{"match": "*@example.com", "keys": ["rsa"]}]},
        "proxy": {"spool_threshold": 1000, "spool_directory": str(tmp / "spool"),
                  "relay_connect_timeout": 1.0, "relay_timeout": 1.0, "relay_data_timeout": 1.0},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    (tmp / "spool").mkdir(exist_ok=True)
    return build_config(data, str(tmp / "mailseal.toml"))


def run_proxy(tmp: Path, key_file: Path, test: Callable[[Proxy], Awaitable[None]], *,
              role: str = "out", hop: Hop | None = None, hop_port: int | None = None,
              records: dict[str, bytes] | None = None, **sections: dict[str, Any]) -> None:
    """Serve a proxy (role ``role``) in front of ``hop``; run ``test``; then check that
    no task, spool file or connection is left."""
    config = make_config(tmp, key_file, **sections)
    hop = hop or Hop()

    async def main() -> None:
        async with HopServer(hop) as hop_server:
            relay = f"{LOOP}:{hop_port or hop_server.port}"
            sock = socket.socket()
            sock.bind((LOOP, 0))
            sock.listen()
            port = sock.getsockname()[1]
            listener = Listener(kind="proxy", address=f"inet:{LOOP}:{port}", role=role,
                                relay=relay)  # type: ignore[arg-type]
            runtime = Runtime(str(tmp / "mailseal.toml"), config)
            runtime.resolver = Resolver(records or {})  # type: ignore[assignment]
            server = await start_listener(runtime, listener, sock)
            baseline = asyncio.all_tasks()
            proxy = Proxy(runtime, port, hop, server)
            try:
                await test(proxy)
                for client in proxy.clients:
                    client.writer.close()
                # Every session the test opened must end by itself once its client is gone.
                for _ in range(100):
                    left = [t for t in asyncio.all_tasks() - baseline
                            if t is not asyncio.current_task()
                            and "HopServer" not in repr(t.get_coro())]
                    if not left:
                        break
                    await asyncio.sleep(0.05)
                assert not left, left
                assert list((tmp / "spool").iterdir()) == []
            finally:
                runtime.stopping.set()
                server.close()
                await asyncio.sleep(0)

    asyncio.run(main())


# -- tests --------------------------------------------------------------------------------------


def test_what_goes_on_with_data_verifies_bare_lf_and_dot_lines_included(
        tmp_path: Path, key_file: Path, rsa_key: SigningKey) -> None:
    """Signed on the DATA path (line ends made CRLF on the way in, dot-stuffed on the
    way out): what the next hop gets verifies. (The BDAT path: the Postfix e2e tests.)"""
    hop = Hop()
    body = b"one\n.two\r\nthree\n\n..four\r\n"

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        assert (await client.transaction(message("odd lines", body=body)))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop, signing={"internal_hosts": []})
    got = hop.messages[0]
    assert "DATA" in hop.commands
    records = {"s._domainkey.example.com": record_value(rsa_key)}
    results = api.verify(got, dns=StaticResolver.from_records(records))
    assert [str(r.result) for r in results] == ["pass"], results


def test_out_signs_whatever_the_client_address(tmp_path: Path, key_file: Path) -> None:
    hop = Hop()

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        assert (await client.command("XFORWARD ADDR=192.0.2.9 NAME=far.test HELO=far")).code == 250
        replies = await client.transaction(message("signed"))
        assert [r.code for r in replies] == [250, 250, 354, 250]
        assert str(replies[-1]) == "250 2.0.0 Ok: queued as HOP1"  # the next hop's answer
        assert (await client.command("QUIT")).code == 221
    run_proxy(tmp_path, key_file, test, hop=hop, signing={"internal_hosts": []})
    assert hop.messages[0].startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple;")
    assert hop.xforward == [{"ADDR": "192.0.2.9", "NAME": "far.test", "HELO": "far"}]
    assert hop.commands[:3] == ["HELO", "XFORWARD", "MAIL"]


def test_in_never_signs_and_marks_the_result(tmp_path: Path, key_file: Path) -> None:
    hop = Hop()

    async def test(p: Proxy) -> None:
        client = await p.ready_client()  # 127.0.0.1 is an internal host: still verified
        forged = b"X-DKIM-Authentication-Results: pass\r\n"
        assert (await client.transaction(message("verified", extra=forged)))[-1].code == 250
    run_proxy(tmp_path, key_file, test, role="in", hop=hop,
              proxy={"x_dkim_authentication_results": True})
    head = hop.messages[0].split(b"\r\n\r\n")[0]
    assert b"DKIM-Signature" not in head
    ours, mark = re.split(rb"\r\n(?![ \t])", head)[:2]
    assert ours.startswith(b"Authentication-Results: mx.test;")
    assert b'dkim=none reason="no signatures"' in ours
    assert mark == b"X-DKIM-Authentication-Results: none"
    assert head.count(b"X-DKIM-Authentication-Results") == 1


def test_in_rejects_by_policy_and_resets_the_next_hop(tmp_path: Path, key_file: Path) -> None:
    hop = Hop()
    sig = (b"DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=gone; h=from; bh="
           + base64.b64encode(b"x" * 32) + b"; b=" + base64.b64encode(b"y" * 64) + b"\r\n")

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        replies = await client.transaction(message("bad", sender="x@example.net", extra=sig))
        assert str(replies[-1]) == "550 5.7.1 nope"
        # The session goes on, and the next hop is ready for another transaction.
        assert (await client.transaction(message("good")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, role="in", hop=hop, verify={
        "on_key_not_found": {"action": "reject", "reply": "550 5.7.1 nope"}})
    assert hop.commands.count("DATA") == 1 and "RSET" in hop.commands
    assert len(hop.messages) == 1


def test_next_hop_answers_pass_through(tmp_path: Path, key_file: Path) -> None:
    hop = Hop(refuse_rcpt=frozenset({"gone@example.org"}),
              end_reply=Reply(554, "5.7.0", "content refused by the next hop"))

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        replies = await client.transaction(message("refused"),
                                           rcpts=("b@example.org", "gone@example.org"))
        assert [str(r) for r in replies] == [
            "250 2.0.0 Ok", "250 2.0.0 Ok", "550 5.1.1 <gone@example.org>: no such user",
            "354 End data with <CR><LF>.<CR><LF>", "554 5.7.0 content refused by the next hop"]
    run_proxy(tmp_path, key_file, test, hop=hop)


def test_next_hop_down_is_a_421_greeting(tmp_path: Path, key_file: Path) -> None:
    with socket.socket() as closed:
        closed.bind((LOOP, 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused

        async def test(p: Proxy) -> None:
            client = await p.client()
            greeting = await client.reply()
            assert (greeting.code, greeting.enhanced) == (421, "4.4.1")
            assert await client.closed()
        run_proxy(tmp_path, key_file, test, hop_port=port)


@pytest.mark.parametrize(("hang", "expected"), [
    ("greeting", "421 4.4.1"), ("MAIL", "451 4.4.2"), ("end", "451 4.4.2")])
def test_next_hop_slower_than_its_timeout(tmp_path: Path, key_file: Path, hang: str,
                                          expected: str) -> None:
    async def test(p: Proxy) -> None:
        client = await p.client()
        reply = await client.reply()
        if hang != "greeting":
            assert reply.code == 220
            await client.command("EHLO client.test")
            replies = await client.transaction(message("slow"))
            reply = next(r for r in replies if r.code >= 400)
        assert str(reply).startswith(expected), reply
    run_proxy(tmp_path, key_file, test, hop=Hop(hang=hang))


def test_next_hop_dropping_mid_data_is_a_451_and_the_next_transaction_reconnects(
        tmp_path: Path, key_file: Path) -> None:
    hop = Hop(drop_in_data=True)

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        await client.command("XFORWARD ADDR=192.0.2.7")
        body = b"z" * 70 + b"\r\n"
        reply = (await client.transaction(message("dropped", body=body * 3000)))[-1]
        assert (reply.code, reply.enhanced) == (451, "4.4.2"), reply
        hop.drop_in_data = False
        await client.command("XFORWARD ADDR=192.0.2.8")
        assert (await client.transaction(message("second")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert hop.connections == 2 and len(hop.messages) == 1
    assert hop.xforward[-1] == {"ADDR": "192.0.2.8"}


def test_next_hop_closing_after_a_message_costs_nothing(tmp_path: Path, key_file: Path) -> None:
    hop = Hop(close_after_message=True)

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        for i in range(3):
            await client.command("XFORWARD ADDR=192.0.2.7 HELO=far")
            assert (await client.transaction(message(f"n{i}")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert hop.connections == 3 and len(hop.messages) == 3
    assert hop.xforward == [{"ADDR": "192.0.2.7", "HELO": "far"}] * 3  # replayed


def test_pipelined_batch_answered_in_order(tmp_path: Path, key_file: Path) -> None:
    hop = Hop(refuse_rcpt=frozenset({"no@x.org"}))

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        body = message("pipelined")
        await client.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<no@x.org>\r\n"
                          b"RCPT TO:<b@x.org>\r\nDATA\r\n")
        codes = [(await client.reply()).code for _ in range(4)]
        assert codes == [250, 550, 250, 354]
        await client.send(body + b".\r\nRSET\r\nNOOP\r\nQUIT\r\n")
        codes = [(await client.reply()).code for _ in range(4)]
        assert codes == [250, 250, 250, 221]
        assert await client.closed()
    run_proxy(tmp_path, key_file, test, hop=hop)
    # No QUIT: the next-hop connection was left for the next client. No RSET either:
    # nothing was open there after the message.
    assert hop.commands[-1] == "ENDOFDATA"
    # The client's batch went on as a batch: both RCPTs came with MAIL, in one write.
    assert hop.pipelined == [2]


def test_a_next_hop_closing_inside_a_pipelined_batch_ends_only_the_transaction(
        tmp_path: Path, key_file: Path) -> None:
    """Its 421 to MAIL reaches the client as 451 (the client's session goes on), and
    what came after it in the batch never happened."""
    hop = Hop(refuse_mail=True, mail_refusal=Reply(421, "4.3.2", "closing"))

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        await client.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<a@x.org>\r\n"
                          b"RCPT TO:<b@x.org>\r\nDATA\r\n")
        replies = [await client.reply() for _ in range(4)]
        assert str(replies[0]) == "451 4.3.2 closing"
        assert [r.code for r in replies[1:]] == [503, 503, 503]
        assert (await client.command("NOOP")).code == 250
        hop.refuse_mail = False
        assert (await client.transaction(message("after the 421")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    # The 421 came on a connection that sat between commands: tried once more on a
    # new one (refused again), then a third for the next transaction.
    assert hop.pipelined == [2, 2, 0] and hop.connections == 3 and len(hop.messages) == 1


def test_pipelined_rcpts_after_a_refused_mail_are_refused_and_go_nowhere(
        tmp_path: Path, key_file: Path) -> None:
    hop = Hop(refuse_mail=True)

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        await client.send(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<a@x.org>\r\n"
                          b"RCPT TO:<b@x.org>\r\nDATA\r\n")
        replies = [await client.reply() for _ in range(4)]
        assert [r.code for r in replies] == [451, 503, 503, 503]
        hop.refuse_mail = False
        assert (await client.transaction(message("then")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert hop.pipelined == [2, 0] and len(hop.messages) == 1


def test_rset_goes_on_only_when_the_next_hop_has_a_transaction_open(
        tmp_path: Path, key_file: Path) -> None:
    hop = Hop()

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        assert (await client.command("RSET")).code == 250  # nothing open: answered here
        assert (await client.command("MAIL FROM:<a@example.com>")).code == 250
        assert (await client.command("RSET")).code == 250  # the next hop's answer
        assert (await client.transaction(message("after")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert hop.commands[1:] == ["MAIL", "RSET", "MAIL", "RCPT", "DATA", "ENDOFDATA"]


def test_message_too_big_is_refused_after_draining(tmp_path: Path, key_file: Path) -> None:
    hop = Hop()

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        assert (await client.command("MAIL FROM:<a@example.com> SIZE=5000")).code == 552
        replies = await client.transaction(message("big", body=b"x" * 3000 + b"\r\n"))
        assert str(replies[-1]) == "552 5.3.4 Error: message file too big"
        assert (await client.command("NOOP")).code == 250
    run_proxy(tmp_path, key_file, test, hop=hop, server={"max_message_bytes": 2000})
    assert "DATA" not in hop.commands and hop.commands[-1] == "RSET"


def test_client_gone_mid_data_and_abandoned_sessions_leave_nothing(
        tmp_path: Path, key_file: Path) -> None:
    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        await client.command("MAIL FROM:<a@example.com>")
        await client.command("RCPT TO:<b@example.org>")
        assert (await client.command("DATA")).code == 354
        await client.send(message("gone", body=b"q" * 50_000))  # spooled to disk
        await asyncio.sleep(0.1)
        client.writer.transport.abort()
        idle = await p.client()  # connects and says nothing: the idle timeout ends it
        assert (await idle.reply()).code == 220
        reply = await idle.reply(timeout=5)
        assert (reply.code, reply.enhanced) == (421, "4.4.2")
        assert await idle.closed()
    run_proxy(tmp_path, key_file, test, server={"session_timeout": 0.5})


def test_stopping_closes_idle_sessions_with_421(tmp_path: Path, key_file: Path) -> None:
    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        await asyncio.sleep(0.05)
        p.runtime.stopping.set()
        reply = await client.reply()
        assert (reply.code, reply.enhanced) == (421, "4.3.2")
        assert await client.closed()
    run_proxy(tmp_path, key_file, test)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_starttls(tmp_path: Path, key_file: Path) -> None:
    cert, key = _self_signed(tmp_path)
    hop = Hop()

    async def test(p: Proxy) -> None:
        client = await p.client()
        await client.reply()
        ehlo = await client.command("EHLO client.test")
        assert "STARTTLS" in ehlo.more
        await client.send(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        assert (await client.reply()).code == 220
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        await client.writer.start_tls(context, server_hostname="proxy.test")
        client.replies = ReplyReader()
        again = await client.command("EHLO client.test")
        assert again.code == 250 and "STARTTLS" not in again.more
        assert (await client.transaction(message("over tls")))[-1].code == 250
        await client.command("QUIT")
    run_proxy(tmp_path, key_file, test, hop=hop,
              proxy={"tls_cert": str(cert), "tls_key": str(key)})
    assert len(hop.messages) == 1 and "injected" not in str(hop.commands)


def test_quarantine_and_discard(tmp_path: Path, key_file: Path) -> None:
    hop = Hop()

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        assert (await client.transaction(message("held")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, role="in", hop=hop,
              verify={"on_no_signature": "quarantine"})
    assert b"\r\nX-Mailseal-Quarantine: outcome: no signature" in hop.messages[0]
    hop = Hop()

    async def dropped(p: Proxy) -> None:
        client = await p.ready_client()
        assert str((await client.transaction(message("dropped")))[-1]) == \
            "250 2.7.0 Ok: discarded by policy"
    run_proxy(tmp_path, key_file, dropped, role="in", hop=hop,
              verify={"on_no_signature": "discard"})
    assert hop.messages == [] and "RSET" in hop.commands


def test_listener_needs_role_and_relay_and_good_tls(tmp_path: Path, key_file: Path) -> None:
    from mailseal.config.load import ConfigError
    from mailseal.frontends.smtpproxy.listener import tls_context

    config = make_config(tmp_path, key_file, proxy={"tls_cert": "missing.pem",
                                                    "tls_key": "missing.key"})
    with pytest.raises(ConfigError, match=r"proxy\.tls_cert/tls_key"):
        tls_context(config)
    with pytest.raises(ValueError, match="role"):
        Listener(kind="proxy", address="inet:127.0.0.1:10027")
    with pytest.raises(ValueError, match="HOST:PORT"):
        Listener(kind="proxy", address="inet:127.0.0.1:10027", role="out", relay="nohost")


def test_next_hop_connection_is_kept_for_the_next_client(tmp_path: Path, key_file: Path) -> None:
    hop = Hop()

    async def test(p: Proxy) -> None:
        for i in range(3):
            client = await p.ready_client()
            if i == 0:
                await client.command("XFORWARD ADDR=192.0.2.7")
            assert (await client.transaction(message(f"client {i}")))[-1].code == 250
            assert (await client.command("QUIT")).code == 221
        # XFORWARD sent, then no transaction: that connection is not kept (the next
        # hop would apply the attributes to someone else's mail).
        client = await p.ready_client()
        await client.command("XFORWARD ADDR=192.0.2.8")
        await client.command("QUIT")
        client = await p.ready_client()
        assert (await client.transaction(message("client 4")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert len(hop.messages) == 4 and hop.connections == 2
    assert hop.xforward == [{"ADDR": "192.0.2.7"}, {"ADDR": "192.0.2.8"}]
    assert hop.commands.count("QUIT") == 1


def test_xforward_alone_goes_on_at_once_and_gets_the_next_hops_answer(
        tmp_path: Path, key_file: Path) -> None:
    """Before the queue (Postfix's smtpd_proxy_filter sends one command at a time)
    XFORWARD is answered once the next hop answered it, with its answer; a MAIL the
    next hop then refuses leaves it holding attributes: the connection is not kept."""
    hop = Hop(refuse_mail=True)

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        assert (await client.command("XFORWARD ADDR=192.0.2.7")).code == 250
        assert hop.commands == ["HELO", "XFORWARD"]
        hop.refuse_xforward = True
        assert str(await client.command("XFORWARD NAME=x.test")) == \
            "550 5.7.0 XFORWARD not allowed"
        assert (await client.command("MAIL FROM:<a@example.com>")).code == 451
        assert (await client.command("QUIT")).code == 221
        hop.refuse_mail = hop.refuse_xforward = False
        client = await p.ready_client()
        assert (await client.transaction(message("next")))[-1].code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert hop.commands[:4] == ["HELO", "XFORWARD", "XFORWARD", "MAIL"]
    assert hop.connections == 2 and len(hop.messages) == 1
    assert hop.pipelined[:3] == [0, 0, 0]


def test_a_pipelined_batch_goes_on_in_one_write_each_command_its_own_answer(
        tmp_path: Path, key_file: Path) -> None:
    """After the queue (Postfix's SMTP client pipelines) XFORWARD, MAIL and the RCPTs
    reach the next hop in one write; each client command gets the next hop's answer to
    it, a refused XFORWARD included."""
    hop = Hop(refuse_xforward=True, refuse_rcpt=frozenset({"no@x.org"}))

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        await client.send(b"XFORWARD ADDR=192.0.2.7\r\nMAIL FROM:<alice@example.com>\r\n"
                          b"RCPT TO:<no@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n")
        replies = [await client.reply() for _ in range(5)]
        assert [r.code for r in replies] == [550, 250, 550, 250, 354]
        await client.send(message("batch") + b".\r\n")
        assert (await client.reply()).code == 250
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert hop.pipelined[0] == 3  # MAIL and both RCPTs came with the XFORWARD
    assert len(hop.messages) == 1


def test_a_kept_connection_that_went_stale_is_replaced(tmp_path: Path, key_file: Path) -> None:
    hop = Hop(close_after_message=True)

    async def test(p: Proxy) -> None:
        for i in range(3):
            client = await p.ready_client()
            assert (await client.transaction(message(f"stale {i}")))[-1].code == 250
            await client.command("QUIT")
    run_proxy(tmp_path, key_file, test, hop=hop)
    assert len(hop.messages) == 3 and hop.connections == 3


def test_a_large_message_streams_in_bounded_memory(tmp_path: Path, key_file: Path) -> None:
    """20 MiB through the proxy: Python allocations stay a small fraction of it (the
    body goes to the spool file as it arrives and to the next hop in blocks)."""
    import tracemalloc

    hop = Hop(keep_content=False)
    line = b"0123456789" * 7 + b"\r\n"
    body = line * (20 * 1024 * 1024 // len(line))

    async def test(p: Proxy) -> None:
        client = await p.ready_client()
        await client.command("MAIL FROM:<alice@example.com>")
        await client.command("RCPT TO:<b@example.org>")
        assert (await client.command("DATA")).code == 354
        tracemalloc.start()
        try:
            head = message("large", body=b"")
            client.writer.write(head)
            for i in range(0, len(body), 1 << 20):
                client.writer.write(body[i:i + (1 << 20)])
                await client.writer.drain()
            await client.send(b".\r\n")
            assert (await client.reply(timeout=60)).code == 250
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, f"{peak / 2**20:.1f} MiB"
    run_proxy(tmp_path, key_file, test, hop=hop, proxy={"spool_threshold": 1 << 20})
    assert hop.octets > 20 * 1024 * 1024
