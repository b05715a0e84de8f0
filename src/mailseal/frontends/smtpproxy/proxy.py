"""One client connection of the DKIMproxy-style proxy: every command goes on to the
next hop and is answered with the next hop's answer; the message is judged by the
pipeline, edited, and then handed on.

Ordering (before-queue use, ``smtpd_proxy_filter``): EHLO, XFORWARD, MAIL, each
RCPT and RSET are answered only once the next hop answered them, with its answer (the
EHLO reply lists our extensions, limited to what the next hop offers; on a next-hop
connection kept from an earlier client, EHLO is answered from what the next hop
announced then, and the next command checks the connection is alive; an RSET with
nothing to reset there is answered at once). A batch the client pipelined (RFC 2920:
Postfix's SMTP client sends XFORWARD, MAIL, the RCPTs and DATA in one write) goes on
to the next hop in one write too, each command still answered in its turn with the
next hop's answer to it. DATA is the exception: its 354 is ours, because the content must be complete before its first
byte can go on — the signature, or the Authentication-Results field, goes on top.
The message streams into the pipeline (hashed as it arrives) and into a spool; at the
end the pipeline decides; on reject/tempfail the client gets that answer and the next
hop an RSET; otherwise the next hop gets DATA and the edited message, and the client
gets the next hop's answer to the final dot. The client never sees 250 for a message
the next hop did not accept (DISCARD aside: that is the policy's explicit choice).

After-queue use (``content_filter``): a next hop that is down, slow or failing gives
4xx at the step where it failed (421 at the greeting, 451 afterwards: see relay.py),
its own 4xx/5xx otherwise, so Postfix keeps the message and retries or bounces it.

What the roles mean to the pipeline: roles.py. The message itself: inflight.py.
Next-hop connections are kept between clients (relay.RelayPool).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Final

from mailseal.frontends.daemon import Runtime
from mailseal.frontends.smtpproxy import replies
from mailseal.frontends.smtpproxy.events import (
    XFORWARD_ATTRIBUTES,
    EndOfData,
    Event,
    Helo,
    Mail,
    Rcpt,
    Xforward,
    xtext_decode,
)
from mailseal.frontends.smtpproxy.inflight import InFlight
from mailseal.frontends.smtpproxy.relay import Relay, RelayPool, RelayTimeouts
from mailseal.frontends.smtpproxy.replies import Reply
from mailseal.frontends.smtpproxy.roles import OUT_DAEMON, RoleConfigs
from mailseal.frontends.smtpproxy.spool import Spool
from mailseal.log import log_message
from mailseal.message import find_fields
from mailseal.pipeline.model import DEFAULT_REPLIES, Action, Decision, Envelope, HeaderEdit, Role
from mailseal.pipeline.session import MessageSession

log = logging.getLogger("mailseal.proxy")

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

    # The replies every client gets, made once (a Reply checks itself when made).
    @cached_property
    def greeting(self) -> Reply:
        return Reply(220, "", f"{self.hostname} ESMTP mailseal")

    @cached_property
    def hello(self) -> Reply:
        return Reply(250, "", self.hostname)

    def ehlo(self, size: int, offered: Iterable[str]) -> Reply:
        """Our EHLO reply: the extensions we offer, those passed on only when the next
        hop ``offered`` them."""
        return _ehlo_reply(self.hostname, size, tuple(k for k in _PASSED_ON if k in offered))


@lru_cache(maxsize=64)
def _ehlo_reply(hostname: str, size: int, passed: tuple[str, ...]) -> Reply:
    return Reply(250, "", hostname, ("PIPELINING", f"SIZE {size}", *passed,
                                     "ENHANCEDSTATUSCODES",
                                     "XFORWARD " + " ".join(XFORWARD_ATTRIBUTES)))


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
        # A connection kept from an earlier client (RelayPool): greeted and EHLOed
        # already; the first command sent on it shows whether it is still alive.
        self.pooled = self.relay.connected
        self.helo_name = ""
        self.forwarded: dict[str, str] = {}  # XFORWARD attribute → value as sent (xtext)
        self.mail_event: Mail | None = None
        self.recipients: list[str] = []
        # Commands sent ahead with an earlier one (the client pipelined them) and the
        # next hop's answers, waiting for the codec to hand us those commands.
        self.early: deque[tuple[str, Reply]] = deque()
        self.message: InFlight | None = None

    # -- session ----------------------------------------------------------------------

    async def connect(self) -> Reply:
        greeting = Reply(220) if self.pooled else await self.relay.open()
        if greeting.code == 220:
            return self.route.greeting
        log.warning("next hop %s not ready: %s", self.relay.address, greeting)
        return Reply(421, "4.4.1", f"{self.route.hostname} next hop not available, try later")

    async def helo(self, event: Helo) -> Reply:
        self._end_transaction()
        self.helo_name = event.name
        if self.pooled:  # its EHLO reply is known: the next command checks it is alive
            reply = self.route.hello
        elif self.relay.connected:
            reply = await self.relay.hello(event.name)
        else:
            reply = await self._reconnect() or self.route.hello
        if reply.code != 250:
            return reply
        if not event.extended:
            return self.route.hello
        return self.route.ehlo(self.config.settings.server.max_message_bytes,
                               self.relay.extensions)

    async def xforward(self, event: Xforward, ahead: Sequence[Event] = ()) -> Reply:
        """XFORWARD goes on at once and is answered with the next hop's answer. When the
        client pipelined MAIL (and RCPTs) behind it (``ahead``, parsed as the codec will
        parse them), all of them go in this one write, and each is answered in its turn
        with the next hop's answer to it (``early``)."""
        if not self.relay.connected:
            failure = await self._reconnect()
            if failure is not None:
                return failure
        line = self._xforward_line(event)
        if line is None:  # nothing the next hop takes: nothing to pass on
            reply = replies.OK
        elif self.early:
            reply = self._take_early(line)
        else:
            batch = self._batch(ahead)
            answers = await self._ask_all([line, *batch], between=True)
            reply = answers[0]
            self.early.extend(zip(batch, answers[1:], strict=True))
        if reply.positive:
            self.forwarded.update(event.attributes)
        return reply

    def _xforward_line(self, event: Xforward) -> str | None:
        """The command with the attributes the next hop offers (None: none of them)."""
        offered = set(self.relay.extensions.get("XFORWARD", "").upper().split())
        tokens = [f"{name}={value}" for name, value in event.attributes if name in offered]
        return "XFORWARD " + " ".join(tokens) if tokens else None

    def _batch(self, ahead: Sequence[Event]) -> list[str]:
        """The lines for the pipelined commands ``ahead`` that go on in the same write:
        XFORWARDs up to a MAIL, the MAIL, its RCPTs (none without a MAIL, or when the
        next hop does not offer PIPELINING)."""
        if "PIPELINING" not in self.relay.extensions \
                or not any(isinstance(e, Mail) for e in ahead):
            return []
        lines = []
        for e in ahead:
            if isinstance(e, Xforward):
                line = self._xforward_line(e)
                if line is not None:
                    lines.append(line)
            elif isinstance(e, (Mail, Rcpt)):
                lines.append(e.line(self._keep(e.parameters)))
        return lines

    def _take_early(self, line: str) -> Reply:
        """The next hop's answer to ``line``, sent ahead with an earlier command."""
        sent, reply = self.early.popleft()
        if sent != line:  # cannot happen: the codec parses the same bytes the same way
            raise RuntimeError(f"pipelined command out of step: sent {sent!r}, got {line!r}")
        return reply

    async def _ask(self, line: str) -> Reply:
        return (await self._ask_all([line]))[-1]

    async def _ask_all(self, lines: list[str], *, between: bool = False) -> list[Reply]:
        """Commands to the next hop, in one write (more than one only when it offers
        PIPELINING). On a kept connection not used yet by this client, or one that sat
        ``between`` commands, a lost connection means it went stale meanwhile (or the
        next hop closed it after a message): a new one is made (greeting, EHLO, the
        XFORWARD attributes it took so far) and the commands sent again, so the client
        never sees the difference."""
        answers = await self.relay.commands(lines)
        if (self.pooled or between) and not self.relay.connected:
            self.pooled = False
            failure = await self._reconnect()
            if failure is not None:
                return [failure] * len(lines)
            answers = await self.relay.commands(lines)
        self.pooled = False
        return answers

    async def _reconnect(self) -> Reply | None:
        """A new next-hop connection (the old one failed): greeting, EHLO, the XFORWARD
        attributes taken so far in this transaction. None when it is ready, else the
        451 to give."""
        greeting = await self.relay.open()
        if greeting.code == 220 and self.helo_name:
            hello = await self.relay.hello(self.helo_name)
            line = self._xforward_line(Xforward(tuple(self.forwarded.items())))
            if hello.code == 250 and line is not None:
                replayed = await self.relay.command(line)
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
                and not self.forwarded:
            self.pool.give(self.relay, used=not self.pooled)
            self.relay = Relay(self.route.relay_host, self.route.relay_port)
            return True
        return False

    # -- transaction --------------------------------------------------------------------

    async def mail(self, event: Mail, ahead: Sequence[Event] = ()) -> Reply:
        """MAIL, answered with the next hop's answer; the RCPTs the client pipelined
        behind it (``ahead``) go in the same write (unless they went already, with an
        XFORWARD before it), each answered in its turn with the next hop's answer."""
        self.config = self.runtime.config  # a transaction runs on the configuration in force
        line = event.line(self._keep(event.parameters))
        if self.early:
            reply = self._take_early(line)
        else:
            between = self.relay.connected
            if not between:
                failure = await self._reconnect()
                if failure is not None:
                    return failure
            batch = self._batch([event, *ahead])[1:]
            answers = await self._ask_all([line, *batch], between=between)
            reply = answers[0]
            self.early.extend(zip(batch, answers[1:], strict=True))
        if reply.positive:
            self.mail_event = event
            self.recipients = []
        else:
            self.early.clear()  # the RCPTs sent with it met no transaction
        return reply

    async def rcpt(self, event: Rcpt) -> Reply:
        line = event.line(self._keep(event.parameters))
        reply = self._take_early(line) if self.early else await self.relay.command(line)
        if reply.positive:
            self.recipients.append(event.address)
        return reply

    def _keep(self, parameters: tuple[tuple[str, str | None], ...]) -> frozenset[str]:
        ext = self.relay.extensions
        return frozenset(k.upper() for k, _ in parameters
                         if _PARAMETER_EXTENSION.get(k.upper(), "") in ext)

    async def rset(self) -> Reply:
        """Passed on only when the next hop has something to reset (a transaction, or
        XFORWARD attributes): otherwise it would answer 250 to nothing (Postfix's SMTP
        client sends RSET before every message on a cached connection; a next hop that
        went away meanwhile is found and replaced at the next command)."""
        open_there = self.mail_event is not None or bool(self.forwarded)
        self._drop_message()
        self._end_transaction()
        if not self.relay.connected or not open_there:
            return replies.OK
        reply = await self._ask("RSET")
        return reply if reply.positive or self.relay.connected else replies.OK

    async def data(self) -> Reply:
        config = self.configs(self.config)
        p = config.settings.proxy
        chunking = "CHUNKING" in self.relay.extensions
        # With DATA the body is made CRLF on its way in (inflight.py): the session need
        # not do it again. With BDAT it goes on as it came, and the session does.
        session = MessageSession(config, self._envelope(), self.runtime.resolver,
                                 crlf_body=not chunking)
        self.message = InFlight(session, Spool(p.spool_threshold, p.spool_directory),
                                chunking=chunking)
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
        if self.message is not None:
            self.message.feed(data)

    async def end_of_data(self, event: EndOfData) -> Reply:
        m, self.message = self.message, None
        try:
            if m is None or event.too_big:
                await self._reset_relay()
                return replies.TOO_BIG
            m.end(event.dot_lines)
            decision = await m.session.finish()  # within message_timeout
            reply = await self._deliver(m, decision)
            self._log(m, decision, reply, event.size)
            return reply
        finally:
            if m is not None:
                m.close()
            self._end_transaction()

    async def _deliver(self, m: InFlight, d: Decision) -> Reply:
        if d.action in (Action.REJECT, Action.TEMPFAIL):
            await self._reset_relay()
            return Reply.from_pipeline(d.reply or DEFAULT_REPLIES[d.action])
        if d.action is Action.DISCARD:
            await self._reset_relay()
            return Reply(250, "2.7.0", "Ok: discarded by policy")
        reply = await self._hand_on(m, d)
        if not reply.positive:
            # After a refused BDAT the transaction may still be open (RFC 3030 §2: the
            # client should RSET); after a refused DATA it is. Clear it either way.
            await self._reset_relay()
        return reply

    async def _hand_on(self, m: InFlight, d: Decision) -> Reply:
        header = m.header([*d.edits, *self._proxy_edits(m, d)])
        if m.chunking:
            return await self.relay.send_chunk(m.content(header), m.size(header))
        reply = await self.relay.command("DATA")
        if reply.code != 354:
            if reply.positive:  # a next hop that does not follow the protocol
                self.relay.close()
                return Reply(451, "4.4.2", f"next hop answered DATA with {reply.code}")
            return reply
        return await self.relay.send_data(m.stuffed(header))

    def _proxy_edits(self, m: InFlight, d: Decision) -> list[HeaderEdit]:
        """DKIMproxy's X-DKIM-Authentication-Results (role in, when configured; forged
        copies removed: the field has no authserv-id to tell ours apart), and the
        quarantine mark (SMTP has no quarantine: Postfix can hold on the header)."""
        out: list[HeaderEdit] = []
        if self.route.role == "in" and d.role is Role.VERIFY \
                and m.session.config.settings.proxy.x_dkim_authentication_results:
            name = "X-DKIM-Authentication-Results"
            count = len(find_fields(m.session.fields, name.encode()))
            out += [HeaderEdit(name, remove=True, index=i) for i in range(1, count + 1)]
            result = str(d.summary.get("result", "none"))
            word = result if result in ("pass", "none") else "fail"
            out.append(HeaderEdit(name, b" " + word.encode()))
        if d.action is Action.QUARANTINE:
            reason = (d.trail[-1] if d.trail else "mailseal policy")[:200]
            out.append(HeaderEdit("X-Mailseal-Quarantine", b" " + reason.encode("ascii", "replace")))
        return out

    async def _reset_relay(self) -> None:
        """End the next hop's transaction; a next hop that refuses is not trusted to be
        in a clean state (nor kept in the pool): its connection is closed."""
        if self.relay.connected and not (await self.relay.command("RSET")).positive:
            self.relay.close()

    def _end_transaction(self) -> None:
        self.mail_event = None
        self.recipients = []
        self.forwarded = {}  # XFORWARD lasts one transaction (as Postfix's smtpd resets it)
        self.early.clear()

    def _drop_message(self) -> None:
        m, self.message = self.message, None
        if m is not None:
            m.close()

    def _log(self, m: InFlight, d: Decision, reply: Reply, size: int) -> None:
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
