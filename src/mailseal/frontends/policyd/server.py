"""``mailseal policyd``: SPF for Postfix's ``check_policy_service``, like
postfix-policyd-spf, on mailseal's async DNS layer and cache.

Per request: skip authenticated clients and trusted relays (DUNNO); otherwise check the
MAIL FROM identity (postmaster@HELO for the null sender) and answer:
pass/neutral/none/softfail → ``PREPEND Received-SPF: …``; fail → reject (configurable);
temperror → ``DEFER_IF_PERMIT``; permerror → prepend (configurable). A message with
several recipients is checked once (Postfix's ``instance`` attribute) and gets the
Received-SPF field once. Every answer comes within ``timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import OrderedDict

from mailseal.config.model import Listener
from mailseal.frontends.daemon import Runtime
from mailseal.frontends.policyd.codec import (
    PolicyCodec,
    PolicyProtocolError,
    PolicyReply,
    PolicyRequest,
)
from mailseal.log import log_message
from mailseal.pipeline.policy import spf_checker
from mailseal.results import Result
from mailseal.spf.checker import SpfChecker
from mailseal.spf.evaluate import SpfResult
from mailseal.spf.received import received_spf_value

log = logging.getLogger("mailseal.policyd")

DUNNO = PolicyReply("DUNNO")
INSTANCES = 1000  # messages remembered per connection, for one answer per message


class PolicyService:
    """Decides policy requests; one per process, shared by its connections."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def checker(self) -> SpfChecker:
        """The pipeline's checker for the resolver and receiver in force (both can
        change on reload; its parsed-record cache lasts as long as the resolver)."""
        return spf_checker(self.runtime.resolver, self.runtime.config.authserv_id)

    async def decide(self, request: PolicyRequest) -> tuple[PolicyReply, str]:
        """The reply and, for the log, why."""
        config = self.runtime.config
        s = config.settings.policy
        if request.get("request") != "smtpd_access_policy":
            return DUNNO, f"not an access policy request ({request.get('request')!r})"
        client = request.get("client_address")
        if s.skip_authenticated and request.get("sasl_username"):
            return DUNNO, f"authenticated as {request.get('sasl_username')!r}"
        if config.is_trusted_relay(client):
            return DUNNO, f"client {client} is a trusted relay"
        try:
            result = await asyncio.wait_for(
                self.checker().mail_from(client, request.get("sender"),
                                         request.get("helo_name") or "unknown",
                                         now=time.time()), s.timeout)
        except TimeoutError:
            return (PolicyReply(f"DEFER_IF_PERMIT SPF check timed out after {s.timeout:g} s"),
                    "timeout")
        except ValueError as exc:  # an unusable client address, for one
            return DUNNO, f"not checked: {exc}"
        return self._reply(result, request), f"spf={result.result} {result.problem or ''}".strip()

    def _reply(self, r: SpfResult, request: PolicyRequest) -> PolicyReply:
        s = self.runtime.config.settings.policy
        header = "PREPEND Received-SPF: " + received_spf_value(
            r, self.runtime.config.authserv_id, envelope_from=request.get("sender") or "<>")
        if r.result is Result.FAIL and s.on_fail == "reject":
            why = r.explanation or f"SPF fail: {r.domain} does not allow {r.ip} to send"
            return PolicyReply(f"{s.fail_reply} {why}".strip())
        if r.result is Result.TEMPERROR and s.on_temperror == "defer":
            return PolicyReply(f"DEFER_IF_PERMIT SPF temporary error: {r.problem or r.domain}")
        if r.result is Result.PERMERROR and s.on_permerror == "reject":
            return PolicyReply(f"550 5.7.24 SPF permanent error: {r.problem or r.domain}")
        return PolicyReply(header)


class PolicyConnection:
    def __init__(self, service: PolicyService, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.service = service
        self.reader = reader
        self.writer = writer
        self.codec = PolicyCodec()
        self.answered: OrderedDict[str, PolicyReply] = OrderedDict()

    async def run(self) -> None:
        idle = self.service.runtime.config.settings.server.session_timeout
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(1 << 14), idle)
                if not data:
                    break
                self.codec.receive_data(data)
                while (request := self.codec.next_request()) is not None:
                    self.writer.write((await self.answer(request)).to_bytes())
                await self.writer.drain()
        except PolicyProtocolError as exc:
            log.warning("policy protocol error, closing the connection: %s", exc)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def answer(self, request: PolicyRequest) -> PolicyReply:
        started = time.perf_counter()
        instance = request.get("instance")
        earlier = self.answered.get(instance) if instance else None
        if earlier is not None:
            # The same message, another recipient: a PREPEND is done once.
            return DUNNO if earlier.action.startswith("PREPEND") else earlier
        try:
            reply, why = await self.service.decide(request)
        except Exception:  # never leave Postfix without an answer
            log.exception("policy request failed")
            reply, why = PolicyReply("DEFER_IF_PERMIT internal error, try again later"), "error"
        if instance:
            self.answered[instance] = reply
            while len(self.answered) > INSTANCES:
                self.answered.popitem(last=False)
        log_message({"kind": "policy", "client": request.get("client_address") or "-",
                     "sender": request.get("sender") or "<>",
                     "action": reply.action.split(" ", 1)[0], "why": why,
                     "ms": round((time.perf_counter() - started) * 1000, 1)})
        return reply


async def start_listener(runtime: Runtime, listener: Listener,
                         sock: socket.socket) -> asyncio.Server:
    service = PolicyService(runtime)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await PolicyConnection(service, reader, writer).run()

    if sock.family == socket.AF_UNIX:
        return await asyncio.start_unix_server(serve, sock=sock)
    return await asyncio.start_server(serve, sock=sock)
