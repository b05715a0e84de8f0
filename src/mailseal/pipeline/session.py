"""The one place a message is judged and edited.

A ``MessageSession`` takes an envelope, the header fields as received, and the body
as a stream of chunks, and returns a ``Decision``: header edits and an action with
its reason. The milter, the SMTP proxy and the CLI (`mailseal explain`) all drive
it the same way::

    s = MessageSession(config, envelope, resolver)
    for name, value in fields: s.header(name, value)
    s.end_of_headers()
    for chunk in body: s.body(chunk)
    decision = await s.finish()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from mailseal.authres.format import format_field
from mailseal.authres.model import AuthenticationResults
from mailseal.authres.parse import carries_authserv_id
from mailseal.config.load import Config
from mailseal.dkim.report import best, dkim_method_results
from mailseal.dkim.sign import Signer, SignError
from mailseal.dkim.verify import Verifier, VerifyPolicy
from mailseal.dns.types import Answer, Resolver
from mailseal.message import MAX_HEADER_BYTES, CrlfStream, HeaderField, to_crlf
from mailseal.pipeline.model import Action, Decision, Envelope, HeaderEdit, Role
from mailseal.pipeline.policy import check_dmarc, check_spf
from mailseal.pipeline.role import RoleChoice, choose_role
from mailseal.pipeline.verdict import apply_must_be_signed, outcome, reply_for
from mailseal.results import Result

log = logging.getLogger("mailseal.pipeline")

#: How severe an action is, to combine the DKIM outcome with DMARC's.
SEVERITY = {Action.ACCEPT: 0, Action.QUARANTINE: 1, Action.TEMPFAIL: 2, Action.REJECT: 3,
            Action.DISCARD: 3}



class MessageSession:
    def __init__(self, config: Config, envelope: Envelope, resolver: Resolver,
                 clock: Callable[[], float] = time.time, *, crlf_body: bool = False) -> None:
        """``crlf_body``: the caller guarantees CRLF line endings in the body (the milter
        protocol does), so bare LFs need not be looked for."""
        self.config = config
        self.envelope = envelope
        self._resolver = resolver
        self._clock = clock
        self.fields: list[HeaderField] = []
        self._header_bytes = 0
        self._overflow = ""
        self._crlf = None if crlf_body else CrlfStream()
        self._choice: RoleChoice | None = None
        self._signer: Signer | None = None
        self._verifier: Verifier | None = None
        self._sign_error = ""

    # -- input --------------------------------------------------------------

    def header(self, name: bytes, value: bytes) -> None:
        """One header field, value exactly as after the colon (folding kept)."""
        self._add(HeaderField(name, to_crlf(value)), len(name) + len(value))

    def header_fields(self, fields: Iterable[HeaderField]) -> None:
        """Header fields parsed from a CRLF header block (the proxy has the block
        itself), taken as they are: as ``header`` for each."""
        for field in fields:
            self._add(field, len(field[0]) + len(field[1]))

    def _add(self, field: HeaderField, size: int) -> None:
        limit = self.config.settings.verify.max_header_fields
        self._header_bytes += size
        if len(self.fields) >= limit:
            self._overflow = f"more than {limit} header fields"
            return
        if self._header_bytes > MAX_HEADER_BYTES:
            self._overflow = f"header section over {MAX_HEADER_BYTES} bytes"
            return
        self.fields.append(field)

    def end_of_headers(self) -> None:
        choice = choose_role(self.config, self.envelope, self.fields)
        self._choice = choice
        if choice.role is Role.SIGN:
            try:
                self._signer = Signer(self.fields, choice.specs)
            except SignError as exc:
                self._sign_error = str(exc)
        elif choice.role is Role.VERIFY:
            v = self.config.settings.verify
            policy = VerifyPolicy(
                min_key_bits=v.minimum_key_bits, allow_sha1=v.allow_sha1,
                max_signatures=v.max_signatures, clock_skew=v.clock_skew,
                partial_body=Result(v.partial_body_result))
            self._verifier = Verifier(self.fields, policy)

    def body(self, chunk: bytes) -> None:
        if self._choice is None:
            self.end_of_headers()
        target = self._signer or self._verifier
        if target is not None:
            target.feed(chunk if self._crlf is None else self._crlf.feed(chunk))

    # -- decision -----------------------------------------------------------

    async def finish(self) -> Decision:
        """Judge the message within ``[server] message_timeout``. Never raises: past
        the limit the message is tempfailed (no reply of our own: the frontend's
        default), an internal error becomes the configured ``on_internal_error``
        action (tempfail by default); either with its reason."""
        limit = self.config.settings.server.message_timeout
        try:
            async with asyncio.timeout(limit) as deadline:
                return await self._finish()
        except TimeoutError as exc:
            if not deadline.expired():
                return self._internal_error(exc)
            log.warning("message %s: not judged within %g s; tempfail",
                        self.envelope.queue_id or "-", limit)
            role = self._choice.role if self._choice else Role.VERIFY
            return Decision(Action.TEMPFAIL, role, None,
                            trail=(*self._trail(), f"not judged within {limit:g} s"),
                            summary={"result": "timeout"})
        except Exception as exc:  # a bug must not lose mail nor accept it silently
            return self._internal_error(exc)

    def _internal_error(self, exc: Exception) -> Decision:
        log.error("internal error judging message %s", self.envelope.queue_id or "-",
                  exc_info=exc)
        action, reply = reply_for(self.config.settings.verify.on_internal_error)
        role = self._choice.role if self._choice else Role.VERIFY
        return Decision(action, role, reply,
                        trail=(*self._trail(), f"internal error: {type(exc).__name__}: {exc}"),
                        summary={"result": "internal-error"})

    def _trail(self) -> tuple[str, ...]:
        return self._choice.trail if self._choice else ()

    async def _finish(self) -> Decision:
        if self._choice is None:
            self.end_of_headers()
        assert self._choice is not None
        role = self._choice.role
        if role is Role.SIGN:
            return self._finish_sign()
        if role is Role.TRUSTED:
            return Decision(Action.ACCEPT, role, trail=self._trail(),
                            summary={"result": "not-signed"})
        return await self._finish_verify()

    def _finish_sign(self) -> Decision:
        assert self._choice is not None
        trail = list(self._trail())
        if self._overflow:
            self._sign_error = f"not signed: {self._overflow}"
        if self._signer is None or self._sign_error:
            action, reply = reply_for(self.config.settings.verify.on_signing_failure)
            trail.append(f"signing failed: {self._sign_error} → {action}")
            return Decision(action, Role.SIGN, reply, trail=tuple(trail),
                            summary={"result": "sign-failed"})
        fields = self._signer.finish(int(self._clock()))
        edits = tuple(HeaderEdit("DKIM-Signature", f.partition(b":")[2].removesuffix(b"\r\n"))
                      for f in fields)
        signed = [f"d={s.domain} s={s.selector} a={s.resolved_algorithm()}"
                  for s in self._choice.specs]
        trail.append("signed: " + "; ".join(signed))
        return Decision(Action.ACCEPT, Role.SIGN, edits=edits, trail=tuple(trail),
                        summary={"result": "signed", "signatures": signed})

    async def _finish_verify(self) -> Decision:
        verifier = self._verifier
        assert verifier is not None
        cfg = self.config
        trail = list(self._trail())
        verifier.finish_body()
        names = verifier.key_names()
        now = self._clock()
        # Key records (at most max_signatures) and SPF, concurrently.
        found, spf = await asyncio.gather(
            asyncio.gather(*(self._resolver.txt(name) for name in names)),
            check_spf(cfg, self.envelope, self._resolver, now))
        answers: dict[str, Answer[bytes]] = dict(zip(names, found, strict=True))
        results = verifier.judge(answers, int(now))
        if self._overflow:
            trail.append(f"header limit: {self._overflow}; judged on the fields kept")
        results = apply_must_be_signed(results, self.fields, cfg.settings.verify.must_be_signed)
        for r in results:
            trail.append(f"dkim={r.result} d={r.domain} s={r.selector} a={r.algorithm}: "
                         f"{r.reason_text}" + (" (testing)" if r.testing else ""))
        if verifier.skipped:
            trail.append(f"{verifier.skipped} more signatures not checked (max_signatures)")
        sender = await check_dmarc(cfg, self.envelope, self.fields, results, spf,
                                   self._resolver, now)
        trail.extend(sender.trail)
        what, spec = outcome(results, cfg.settings.verify)
        action, reply = reply_for(spec)
        if SEVERITY[sender.action] > SEVERITY[action]:
            what, action, reply = "dmarc policy", sender.action, sender.reply
        trail.append(f"outcome: {what} → {action}")
        edits: list[HeaderEdit] = []
        if cfg.settings.verify.remove_forged_authres:
            edits.extend(self._forged_authres())
            if edits:
                trail.append(f"removed {len(edits)} Authentication-Results field(s) "
                             f"claiming our authserv-id {cfg.authserv_id}")
        ar = AuthenticationResults(cfg.authserv_id, None,
                                   (*dkim_method_results(results), *sender.entries))
        value = format_field(ar).partition(b":")[2].removesuffix(b"\r\n")
        edits.append(HeaderEdit("Authentication-Results", value))
        return Decision(action, Role.VERIFY, reply if action is not Action.ACCEPT else None,
                        edits=tuple(edits), trail=tuple(trail),
                        summary={"result": str(best(results)), "outcome": what,
                                 **({"spf": str(sender.spf.result)} if sender.spf else {}),
                                 **({"dmarc": str(sender.dmarc.result)} if sender.dmarc else {}),
                                 "signatures": [f"{r.result}:{r.domain}/{r.selector}"
                                                for r in results]})

    def _forged_authres(self) -> list[HeaderEdit]:
        """RFC 8601 §5: remove Authentication-Results fields that carry our authserv-id
        before adding ours; index counts fields of that name from 1."""
        edits = []
        index = 0
        for field in self.fields:
            if field.lname == b"authentication-results":
                index += 1
                if carries_authserv_id(field.value, self.config.authserv_id):
                    edits.append(HeaderEdit(field.name.decode("ascii", "replace"),
                                            remove=True, index=index))
        return edits
