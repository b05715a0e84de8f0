"""DKIM verification (RFC 6376 §6), in phases so I/O stays outside:

1. ``Verifier(fields, policy)`` parses every DKIM-Signature (up to a bound) and
   registers the body hashes they need; 2. ``feed``/``finish`` stream the body once;
3. ``key_names()`` says which key records to fetch (the caller does DNS);
4. ``judge(answers, now)`` decides, pure again.
"""

from __future__ import annotations

import base64
import functools
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailseal.dkim.bodyhash import BodyHashes
from mailseal.dkim.crypto import verify_digest
from mailseal.dkim.headers import FieldIndex, header_digest, index_fields
from mailseal.dkim.reasons import Reason
from mailseal.dkim.record import KeyRecord, KeyRecordError, parse_key_record
from mailseal.dkim.signature import BadSignature, Signature, parse_signature
from mailseal.dns.types import Answer, Status
from mailseal.message import HeaderField
from mailseal.results import Result

SIGNATURE_FIELD = b"dkim-signature"


@dataclass(frozen=True, slots=True)
class VerifyPolicy:
    """Verifier settings; the defaults are the RFCs' and the safe choice."""

    min_key_bits: int = 1024  # RFC 8301 §3.2: keys under 1024 bits MUST NOT be valid
    allow_sha1: bool = False  # RFC 8301 §3.1: rsa-sha1 MUST NOT be considered valid
    max_signatures: int = 8  # signatures checked per message (the rest are ignored)
    max_key_records: int = 4  # key records tried at one name (RFC 6376 §6.1.2)
    clock_skew: int = 300  # seconds allowed around t= and x=
    partial_body: Result = Result.POLICY  # result of a pass whose l= leaves content unsigned


@dataclass(frozen=True, slots=True)
class DkimResult:
    """The verdict on one signature."""

    result: Result
    reason: Reason
    detail: str
    domain: str  # d=
    selector: str  # s=
    algorithm: str  # a=
    identity: str  # i= (or @d=)
    testing: bool = False  # the key record has t=y
    key_bits: int | None = None
    b: str = ""  # the b= value (base64, no whitespace), for header.b
    unsigned_bytes: int = 0  # canonical body bytes not covered by l=
    index: int = 0  # which DKIM-Signature field, in header order (0 = topmost)
    signed_fields: tuple[str, ...] = ()  # h=, lower-cased

    @property
    def ok(self) -> bool:
        return self.result is Result.PASS

    @property
    def reason_text(self) -> str:
        return self.reason.text + (f": {self.detail}" if self.detail else "")


class Verifier:
    """Verifies every DKIM signature of one message."""

    def __init__(self, fields: Sequence[HeaderField], policy: VerifyPolicy | None = None) -> None:
        self.policy = policy or VerifyPolicy()
        self._fields = list(fields)
        self._bodies = BodyHashes()
        self._index: FieldIndex | None = None  # by name, made once for all signatures
        self.skipped = 0  # signatures past max_signatures
        self.signatures: list[Signature | BadSignature] = []
        for index, field in enumerate(self._fields):
            if field.lname != SIGNATURE_FIELD:
                continue
            if len(self.signatures) >= self.policy.max_signatures:
                self.skipped += 1
                continue
            sig = parse_signature(field, index)
            self.signatures.append(sig)
            if isinstance(sig, Signature):
                self._bodies.add(sig.c[1], sig.hash_name, sig.l)

    def feed(self, chunk: bytes) -> None:
        self._bodies.feed(chunk)

    def finish_body(self) -> None:
        self._bodies.finish()

    def key_names(self) -> list[str]:
        """DNS names of the key records needed, for signatures worth a lookup."""
        names: list[str] = []
        for sig in self.signatures:
            if (isinstance(sig, Signature) and self._precheck(sig, None) is None
                    and sig.key_name not in names):
                names.append(sig.key_name)
        return names

    def judge(self, answers: Mapping[str, Answer[bytes]], now: int) -> list[DkimResult]:
        return [self._judge(sig, answers, now) for sig in self.signatures]

    def _precheck(self, sig: Signature, now: int | None) -> tuple[Reason, str] | None:
        """Checks that need neither the key nor the body."""
        if sig.a == "rsa-sha1" and not self.policy.allow_sha1:
            return Reason.WEAK_ALGORITHM, ""
        if now is not None:
            skew = self.policy.clock_skew
            if sig.x is not None and sig.x + skew < now:
                return Reason.EXPIRED, f"x={sig.x}"
            if sig.t is not None and sig.t > now + skew:
                return Reason.FUTURE_TIMESTAMP, f"t={sig.t}"
        return None

    def _judge(self, sig: Signature | BadSignature, answers: Mapping[str, Answer[bytes]],
               now: int) -> DkimResult:
        if isinstance(sig, BadSignature):
            t = sig.tags
            return DkimResult(sig.reason.result, sig.reason, sig.detail, t.get("d", "").lower(),
                              t.get("s", ""), t.get("a", ""), t.get("i", ""),
                              b=_b_text(t.get("b", "")), index=sig.index)

        def result(reason: Reason, detail: str = "", *, word: Result | None = None,
                   record: KeyRecord | None = None, unsigned: int = 0) -> DkimResult:
            return DkimResult(word or reason.result, reason, detail, sig.d, sig.s, sig.a, sig.i,
                              testing=record.testing if record else False,
                              key_bits=record.bits if record else None,
                              b=base64.b64encode(sig.b).decode("ascii"),
                              unsigned_bytes=unsigned, index=sig.index,
                              signed_fields=tuple(n.lower() for n in sig.h))

        pre = self._precheck(sig, now)
        if pre is not None:
            return result(*pre)
        sink = self._bodies.get(sig.c[1], sig.hash_name, sig.l)
        if sig.l is not None and sig.l > sink.length:
            # RFC 6376 §6.1.3: l= beyond the body makes the signature fail to verify.
            return result(Reason.BODY_LENGTH, f"l={sig.l}, body {sink.length}")
        answer = answers.get(sig.key_name)
        if answer is None or answer.status is Status.TEMPFAIL:
            why = answer.error if answer is not None else "not looked up"
            return result(Reason.KEY_DNS_ERROR, f"{sig.key_name}: {why}")
        if answer.status is not Status.OK:
            return result(Reason.KEY_NOT_FOUND, f"{sig.key_name}: {answer.status.value}")
        records, problem = _usable_records(answer.records[: self.policy.max_key_records])
        if not records:
            return result(*(problem or (Reason.KEY_NOT_FOUND, f"{sig.key_name}: no record")))
        body_ok = hmac.compare_digest(sink.digest(), sig.bh)
        outcome: DkimResult | None = None
        for record in records:
            verdict = self._with_key(sig, record, body_ok)
            if verdict is Reason.PASS and sig.l is not None and sink.length > sig.l:
                unsigned = sink.length - sig.l
                return result(Reason.PARTIAL_BODY, f"{unsigned} bytes unsigned",
                              word=self.policy.partial_body, record=record, unsigned=unsigned)
            if verdict is Reason.PASS:
                return result(Reason.PASS, record=record)
            if outcome is None:
                outcome = result(verdict, record=record)
        assert outcome is not None
        return outcome

    def _with_key(self, sig: Signature, record: KeyRecord, body_ok: bool) -> Reason:
        if record.k != sig.key_type:
            return Reason.KEY_TYPE_MISMATCH
        if not record.allows_hash(sig.hash_name):
            return Reason.KEY_HASH_NOT_ALLOWED
        if not record.allows_email():
            return Reason.KEY_SERVICE
        if record.strict and sig.auid_domain != sig.d:
            return Reason.KEY_STRICT_IDENTITY
        if record.k == "rsa" and record.bits < self.policy.min_key_bits:
            return Reason.KEY_TOO_SMALL
        if not body_ok:
            return Reason.BODY_HASH_MISMATCH
        if self._index is None:
            self._index = index_fields(self._fields)
        digest = header_digest(self._fields, sig.h, sig.c[0], sig.hash_name,
                               sig.b_stripped_field(), self._index)
        if not verify_digest(record.key, sig.hash_name, digest, sig.b):
            return Reason.SIGNATURE_MISMATCH
        return Reason.PASS


def _usable_records(texts: Sequence[bytes]) -> tuple[list[KeyRecord], tuple[Reason, str] | None]:
    """Parse each TXT record; keep the DKIM key records (RFC 6376 §6.1.2 lets a
    verifier cycle through several). With none usable, say why (the first error)."""
    records: list[KeyRecord] = []
    problem: tuple[Reason, str] | None = None
    for text in texts:
        parsed = _parse_cached(text)
        if isinstance(parsed, KeyRecord):
            records.append(parsed)
        elif problem is None:
            reason = Reason.KEY_REVOKED if parsed.revoked else Reason.KEY_SYNTAX
            problem = (reason, str(parsed))
    return records, problem


@functools.lru_cache(maxsize=1024)
def _parse_cached(text: bytes) -> KeyRecord | KeyRecordError:
    """Key records repeat across messages; parsing and loading the key costs more
    than the RSA verification itself. A pure memo, keyed by the record bytes."""
    try:
        return parse_key_record(text)
    except KeyRecordError as exc:
        return exc


def _b_text(value: str) -> str:
    return "".join(value.split())
