"""One client connection of the DKIMproxy-style proxy: every command goes on to the
next hop and is answered with the next hop's answer; the message is judged by the
pipeline, edited, and then handed on.

Ordering (before-queue use, ``smtpd_proxy_filter``): EHLO, XFORWARD, MAIL, each RCPT
and RSET are answered only once the next hop answered them, with its answer (the
EHLO reply lists our extensions, limited to what the next hop offers). DATA is the
exception: its 354 is ours, because the content must be complete before its first
byte can go on — the signature, or the Authentication-Results field, goes on top.
The message streams into the pipeline (hashed as it arrives) and into a spool; at the
end the pipeline decides; on reject/tempfail the client gets that answer and the next
hop an RSET; otherwise the next hop gets DATA and the edited message, and the client
gets the next hop's answer to the final dot. The client never sees 250 for a message
the next hop did not accept (DISCARD aside: that is the policy's explicit choice).

After-queue use (``content_filter``): a next hop that is down, slow or failing gives
4xx at the step where it failed (421 at the greeting, 451 afterwards: see relay.py),
its own 4xx/5xx otherwise, so Postfix keeps the message and retries or bounces it.

Roles: ``out`` treats every message as ours — the MTA routed it here on purpose (the
submission service's content_filter), and XFORWARD carries no SASL login, so the
client address alone would leave remote authenticated users unsigned. The envelope
names the daemon ``proxy-out``, which the role's configuration lists among the
signing daemons; the signing table still decides which From domains are signed. ``in``
verifies everything: its configuration trusts no host, user or daemon.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from mailseal.config.load import Config
from mailseal.frontends.daemon import Runtime
from mailseal.frontends.smtpproxy import replies
from mailseal.frontends.smtpproxy.assemble import HeaderSplitter, edited_header, header_fields
from mailseal.frontends.smtpproxy.dotstuff import Stuffer
from mailseal.frontends.smtpproxy.events import (
    XFORWARD_ATTRIBUTES,
    EndOfData,
    Helo,
    Mail,
    Rcpt,
    Xforward,
    xtext_decode,
)
from mailseal.frontends.smtpproxy.relay import Relay, RelayPool, RelayTimeouts
from mailseal.frontends.smtpproxy.replies import Reply
from mailseal.frontends.smtpproxy.spool import Spool
from mailseal.log import log_message
from mailseal.message import CrlfStream
from mailseal.pipeline.model import DEFAULT_REPLIES, Action, Decision, Envelope, HeaderEdit, Role
from mailseal.pipeline.session import MessageSession

log = logging.getLogger("mailseal.proxy")

#: The daemon name a message gets in role ``out`` (see the module docstring).
OUT_DAEMON: Final = "proxy-out"
#: Which extension each MAIL/RCPT parameter belongs to (passed on only when offered).
_PARAMETER_EXTENSION: Final = {"SIZE": "SIZE", "BODY": "8BITMIME", "SMTPUTF8": "SMTPUTF8",
                               "RET": "DSN", "ENVID": "DSN", "NOTIFY": "DSN", "ORCPT": "DSN"}
_PASSED_ON: Final = ("8BITMIME", "SMTPUTF8", "DSN")
_UNKNOWN: Final = ("[UNAVAILABLE]", "[TEMPUNAVAIL]", "")


@dataclass(frozen=True)
class Route:
    role: str  # "out" (sign) or "in" (verify)
    relay_host: str
    relay_port: int
    hostname: str  # our greeting and EHLO name


def role_config(config: Config, role: str) -> Config:
    """The configuration the pipeline runs with in ``role`` (module docstring)."""
    signing = config.settings.signing
    update: dict[str, object]
    if role == "out":
        names = signing.signing_daemon_names
        update = {"signing_daemon_names": names if OUT_DAEMON in names else (*names, OUT_DAEMON)}
        networks = config.internal_networks
    else:
        update = {"signing_daemon_names": (), "sign_authenticated": False}
        networks = ()
    settings = config.settings.model_copy(
        update={"signing": signing.model_copy(update=update)})
    return dataclasses.replace(config, settings=settings, internal_networks=networks)


class RoleConfigs:
    """``role_config`` made once per loaded configuration (a reload makes a new one)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._source: Config | None = None
        self._derived: Config | None = None

    def __call__(self, config: Config) -> Config:
        if config is not self._source or self._derived is None:
            self._source, self._derived = config, role_config(config, self.role)
        return self._derived


@dataclass
class _Message:
    session: MessageSession
    spool: Spool
    splitter: HeaderSplitter
    crlf: CrlfStream
    started: float
    chunking: bool = False  # the next hop takes BDAT: the body goes on as it came
    reshaped: bool = False  # a bare LF became CRLF (a line may start anew)
    dot_lines: int = 0  # lines that came in starting with a dot


def _wire(header: bytes, m: _Message) -> Iterator[bytes]:
    """The edited message as DATA content. The content has CRLF line ends already;
    the body is scanned for lines starting with a dot only when it came in with some
    (or with bare LFs, now line ends): most mail has none, and 180 KiB less to scan
    is a good part of what the proxy costs on top of the milter."""
    stuffer = Stuffer(normalize=False)
    yield stuffer.feed(header)
    clean = m.dot_lines == 0 and not m.reshaped
    for chunk in m.spool.chunks():
        yield stuffer.feed(chunk, clean=clean)
    yield stuffer.end()


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class ProxySession:
    """The ``SmtpHandler`` of one client connection (see server.py)."""

    def __init__(self, runtime: Runtime, route: Route, configs: RoleConfigs,
                 peer: str | None, pool: RelayPool) -> None:
        self.runtime = runtime
        self.route = route
        self.configs = configs
        self.peer = peer
        self.pool = pool
        self.config = runtime.config
        p = self.config.settings.proxy
        self.relay = pool.take(RelayTimeouts(p.relay_connect_timeout, p.relay_timeout,
                                             p.relay_data_timeout))
        self.pooled = self.relay.connected  # greeted already, by an earlier client
        self.helo_name = ""
        self.forwarded: dict[str, str] = {}  # XFORWARD attribute → value as sent (xtext)
        self.mail_event: Mail | None = None
        self.recipients: list[str] = []
        self.message: _Message | None = None

    # -- session ----------------------------------------------------------------------

    async def connect(self) -> Reply:
        greeting = Reply(220) if self.pooled else await self.relay.open()
        if greeting.code == 220:
            return Reply(220, "", f"{self.route.hostname} ESMTP mailseal")
        log.warning("next hop %s not ready: %s", self.relay.address, greeting)
        return Reply(421, "4.4.1", f"{self.route.hostname} next hop not available, try later")

    async def helo(self, event: Helo) -> Reply:
        self._end_transaction()
        self.helo_name = event.name
        reply = await self.relay.hello(event.name) if self.relay.connected else Reply(421)
        if not self.relay.connected:  # it failed, or a parked connection had gone stale
            reply = await self._reconnect() or Reply(250, "", self.route.hostname)
        self.pooled = False
        if reply.code != 250:
            return reply
        if not event.extended:
            return Reply(250, "", self.route.hostname)
        more = ["PIPELINING", f"SIZE {self.config.settings.server.max_message_bytes}",
                *[k for k in _PASSED_ON if k in self.relay.extensions],
                "ENHANCEDSTATUSCODES", "XFORWARD " + " ".join(XFORWARD_ATTRIBUTES)]
        return Reply(250, "", self.route.hostname, tuple(more))

    async def xforward(self, event: Xforward) -> Reply:
        self.forwarded.update(event.attributes)
        if not self.relay.connected:
            return replies.OK  # passed on when the next transaction reconnects
        return await self._forward_xforward(event.attributes)

    async def _forward_xforward(self, attributes: tuple[tuple[str, str], ...]) -> Reply:
        offered = set(self.relay.extensions.get("XFORWARD", "").upper().split())
        tokens = [f"{name}={value}" for name, value in attributes if name in offered]
        if not tokens:
            return replies.OK
        return await self.relay.command("XFORWARD " + " ".join(tokens))

    async def _reconnect(self) -> Reply | None:
        """A new next-hop connection (the old one failed): greeting, EHLO, XFORWARD.
        None when it is ready, else the 451 to give."""
        greeting = await self.relay.open()
        if greeting.code == 220 and self.helo_name:
            hello = await self.relay.hello(self.helo_name)
            if hello.code == 250 and self.forwarded:
                replayed = await self._forward_xforward(tuple(self.forwarded.items()))
                if replayed.positive:
                    return None
                greeting = replayed
            elif hello.code == 250:
                return None
            else:
                greeting = hello
        elif greeting.code == 220:
            return None
        self.relay.close()
        log.warning("next hop %s not ready: %s", self.relay.address, greeting)
        return Reply(451, "4.4.1", "next hop not available, try later")

    async def quit(self) -> Reply:
        if not self._park_relay():
            await self.relay.quit()
        return replies.BYE

    async def close(self) -> None:
        self._drop_message()
        if not self._park_relay():
            self.relay.close()

    def _park_relay(self) -> bool:
        """Leave the next-hop connection for the next client when it is between
        transactions with nothing pending (see RelayPool)."""
        if self.relay.connected and self.message is None and self.mail_event is None \
                and not self.forwarded and not self.pooled:
            self.pool.give(self.relay)
            self.relay = Relay(self.route.relay_host, self.route.relay_port)
            return True
        return False

    # -- transaction --------------------------------------------------------------------

    async def mail(self, event: Mail) -> Reply:
        self.config = self.runtime.config  # a transaction runs on the configuration in force
        if not self.relay.connected:
            failure = await self._reconnect()
            if failure is not None:
                return failure
        reply = await self.relay.command(event.line(self._keep(event.parameters)))
        if reply.positive:
            self.mail_event = event
            self.recipients = []
        return reply

    async def rcpt(self, event: Rcpt) -> Reply:
        reply = await self.relay.command(event.line(self._keep(event.parameters)))
        if reply.positive:
            self.recipients.append(event.address)
        return reply

    def _keep(self, parameters: tuple[tuple[str, str | None], ...]) -> frozenset[str]:
        ext = self.relay.extensions
        return frozenset(k.upper() for k, _ in parameters
                         if _PARAMETER_EXTENSION.get(k.upper(), "") in ext)

    async def rset(self) -> Reply:
        self._drop_message()
        self._end_transaction()
        if not self.relay.connected:
            return replies.OK
        reply = await self.relay.command("RSET")
        return reply if reply.positive or self.relay.connected else replies.OK

    async def data(self) -> Reply:
        config = self.configs(self.config)
        p = config.settings.proxy
        directory = p.spool_directory
        if directory is not None and not Path(directory).is_absolute() \
                and not config.path.startswith("<"):
            directory = str(Path(config.path).parent / directory)
        session = MessageSession(config, self._envelope(), self.runtime.resolver)
        self.message = _Message(session, Spool(p.spool_threshold, directory), HeaderSplitter(),
                                CrlfStream(), time.perf_counter(),
                                chunking="CHUNKING" in self.relay.extensions)
        return replies.START_DATA

    def _envelope(self) -> Envelope:
        xf = {name: xtext_decode(value) for name, value in self.forwarded.items()}
        known = {name: value for name, value in xf.items() if value not in _UNKNOWN}
        mail = self.mail_event
        return Envelope(
            client_address=known.get("ADDR", self.peer), client_name=known.get("NAME"),
            helo=known.get("HELO", self.helo_name), mail_from=mail.address if mail else "",
            recipients=tuple(self.recipients),
            daemon_name=OUT_DAEMON if self.route.role == "out" else None,
            queue_id=known.get("IDENT"), mta_name=self.route.hostname,
            macros={f"xforward_{name.lower()}": value for name, value in xf.items()})

    def content(self, data: bytes) -> None:
        """Header lines are made CRLF (to find the header's end and edit it); the body
        too when it will go on with DATA: then what the pipeline hashed is what is sent,
        and no bare LF is left for the next hop to read as a line end. With BDAT (no
        end mark, nothing to smuggle) the body goes on as it came, one scan less: the
        pipeline hashes it as CRLF, and so does Postfix store it."""
        m = self.message
        if m is None:
            return
        if not m.chunking or not m.splitter.done:
            size = len(data)
            data = m.crlf.feed(data)
            if len(data) != size:
                m.reshaped = True
        if not m.splitter.done:
            data = m.splitter.feed(data)
            if not m.splitter.done:
                return
            self._headers(m)
        if data:
            m.session.body(data)
            m.spool.write(data)

    @staticmethod
    def _headers(m: _Message) -> None:
        for field in header_fields(m.splitter.header):
            m.session.header(field.name, field.value)
        m.session.end_of_headers()

    async def end_of_data(self, event: EndOfData) -> Reply:
        m, self.message = self.message, None
        try:
            if m is None or event.too_big:
                await self._reset_relay()
                return replies.TOO_BIG
            m.dot_lines = event.dot_lines
            if not m.splitter.done:
                m.splitter.finish()
                self._headers(m)
            decision = await self._judge(m.session)
            reply = await self._deliver(m, decision)
            self._log(m, decision, reply, event.size)
            return reply
        finally:
            if m is not None:
                m.spool.close()
            self._end_transaction()

    async def _judge(self, session: MessageSession) -> Decision:
        limit = session.config.settings.server.message_timeout
        try:
            async with asyncio.timeout(limit):
                return await session.finish()
        except TimeoutError:
            return Decision(Action.TEMPFAIL, Role.VERIFY, DEFAULT_REPLIES[Action.TEMPFAIL],
                            trail=(f"not judged within {limit:g} s",),
                            summary={"result": "timeout"})

    async def _deliver(self, m: _Message, d: Decision) -> Reply:
        if d.action in (Action.REJECT, Action.TEMPFAIL):
            await self._reset_relay()
            return Reply.from_pipeline(d.reply or DEFAULT_REPLIES[d.action])
        if d.action is Action.DISCARD:
            await self._reset_relay()
            return Reply(250, "2.7.0", "Ok: discarded by policy")
        edits = [*d.edits, *self._proxy_edits(m, d)]
        header = edited_header(m.splitter.header, edits)
        if m.splitter.separator:
            header += b"\r\n"
        if m.chunking:
            size = len(header) + m.spool.size
            return await self.relay.send_chunk(_chain(header, m.spool.chunks()), size)
        reply = await self.relay.command("DATA")
        if reply.code != 354:
            if reply.positive:  # a next hop that does not follow the protocol
                self.relay.close()
                return Reply(451, "4.4.2", f"next hop answered DATA with {reply.code}")
            return reply
        return await self.relay.send_data(_wire(header, m))

    def _proxy_edits(self, m: _Message, d: Decision) -> list[HeaderEdit]:
        """DKIMproxy's X-DKIM-Authentication-Results (role in, when configured; forged
        copies removed: the field has no authserv-id to tell ours apart), and the
        quarantine mark (SMTP has no quarantine: Postfix can hold on the header)."""
        out: list[HeaderEdit] = []
        if self.route.role == "in" and d.role is Role.VERIFY \
                and m.session.config.settings.proxy.x_dkim_authentication_results:
            name = "X-DKIM-Authentication-Results"
            count = sum(f.lname == name.lower().encode() for f in m.session.fields)
            out += [HeaderEdit(name, remove=True, index=i) for i in range(1, count + 1)]
            result = str(d.summary.get("result", "none"))
            word = result if result in ("pass", "none") else "fail"
            out.append(HeaderEdit(name, b" " + word.encode()))
        if d.action is Action.QUARANTINE:
            reason = (d.trail[-1] if d.trail else "mailseal policy")[:200]
            out.append(HeaderEdit("X-Mailseal-Quarantine", b" " + reason.encode("ascii", "replace")))
        return out

    async def _reset_relay(self) -> None:
        if self.relay.connected:
            await self.relay.command("RSET")

    def _end_transaction(self) -> None:
        self.mail_event = None
        self.recipients = []
        self.forwarded = {}  # XFORWARD lasts one transaction (as Postfix's smtpd resets it)

    def _drop_message(self) -> None:
        m, self.message = self.message, None
        if m is not None:
            m.spool.close()

    def _log(self, m: _Message, d: Decision, reply: Reply, size: int) -> None:
        fields: dict[str, object] = {
            "queue_id": m.session.envelope.queue_id or "-",
            "proxy": self.route.role, "role": d.role.value, **d.summary,
            "action": d.action.value, "reply": str(reply), "size": size,
            "spooled": "disk" if m.spool.on_disk else "memory",
            "ms": round((time.perf_counter() - m.started) * 1000, 1),
            "why": d.explain(),
        }
        ok = d.action is Action.ACCEPT and reply.positive
        log_message(fields, logging.INFO if ok else logging.WARNING)
