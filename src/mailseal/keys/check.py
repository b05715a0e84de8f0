"""Is it safe to sign with this key? The judgement of ``mailseal testkey``, pure.

Input: the DNS answer at ``SELECTOR._domainkey.DOMAIN`` and, optionally, the private
key meant to sign. Output: one ``Check`` per question, each with a verdict word —
``OK``, ``WARN`` (worth fixing, signing still works) or ``FAIL`` (verifiers will not
accept signatures made with this key, or the answer could not be had).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailseal.dkim.keys import SigningKey, public_key_data
from mailseal.dkim.record import KeyRecord, KeyRecordError, parse_key_record
from mailseal.dns.types import Answer, Status

#: RFC 8301 §3.2: "Signers MUST use RSA keys of at least 1024 bits … SHOULD use RSA
#: keys of at least 2048 bits"; verifiers must not accept keys under 1024 bits.
MIN_RSA_BITS = 1024
GOOD_RSA_BITS = 2048
#: How much of each record to show when listing several.
SHOWN = 72


class Verdict(enum.IntEnum):
    """Ordered, so the worst of several is ``max()``."""

    OK = 0
    WARN = 1
    FAIL = 2


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    text: str
    short: str = ""  # a few words for tables (``mailseal keys list``)
    details: tuple[str, ...] = ()  # shown indented under the line

    def lines(self) -> list[str]:
        return [f"{self.verdict.name:<4} {self.text}", *(f"     {d}" for d in self.details)]


@dataclass(frozen=True, slots=True)
class Report:
    """The checks of one selector, in the order they were made."""

    name: str  # the DNS name looked up
    checks: tuple[Check, ...]
    temporary: bool = False  # the lookup failed for now (timeout, SERVFAIL)
    record: KeyRecord | None = None

    @property
    def verdict(self) -> Verdict:
        return max((c.verdict for c in self.checks), default=Verdict.OK)

    @property
    def safe(self) -> bool:
        """Safe to sign: nothing failed (warnings are advice)."""
        return self.verdict is not Verdict.FAIL

    @property
    def exit_status(self) -> int:
        """0 safe to sign, 1 not safe, 2 not known yet (temporary DNS failure)."""
        if self.temporary:
            return 2
        return 0 if self.safe else 1

    def summary(self) -> str:
        """A compact verdict: ``OK``, or the worst verdict and its first reason."""
        worst = self.verdict
        if worst is Verdict.OK:
            return "OK"
        first = next(c for c in self.checks if c.verdict is worst)
        return f"{worst.name}: {first.short or first.text}"


def evaluate(name: str, answer: Answer[bytes], key: SigningKey | None = None,
             key_label: str = "the private key") -> Report:
    """Judge the TXT ``answer`` at ``name``, against ``key`` when given."""
    checks: list[Check] = []
    if answer.status is Status.TEMPFAIL:
        # A temporary failure says nothing about the record: never report it as
        # missing (verifiers answer temperror, RFC 6376 §6.1.2).
        detail = f": {answer.error}" if answer.error else ""
        checks.append(Check(Verdict.FAIL, f"lookup failed (temporary){detail}",
                            "lookup failed (temporary)"))
        return Report(name, tuple(checks), temporary=True)
    found = _found(name, answer)
    checks.append(found)
    if found.verdict is Verdict.OK:
        record = _record(answer.records[0], checks)
        if record is not None:
            checks += _key_checks(record, key, key_label)
    else:
        record = None
    checks.append(_dnssec(answer))
    return Report(name, tuple(checks), record=record)


def _found(name: str, answer: Answer[bytes]) -> Check:
    if answer.status is Status.NXDOMAIN:
        return Check(Verdict.FAIL, f"no record at {name}", "no record")
    if answer.status is Status.NODATA or not answer.records:
        return Check(Verdict.FAIL, f"no TXT record at {name} (the name exists)",
                     "no TXT record")
    if len(answer.records) > 1:
        # RFC 6376 §3.6.2.2: "TXT RRs MUST be unique for a particular selector name;
        # that is, if there are multiple records in an RRset, the results are
        # undefined." (mailseal's verifier tries the DKIM ones; others take the first.)
        shown = tuple(f"[{i}] {_shorten(r)}" for i, r in enumerate(answer.records, 1))
        return Check(Verdict.FAIL, f"{len(answer.records)} TXT records at {name}; verifiers "
                     "may use any of them, keep exactly one:",
                     f"{len(answer.records)} TXT records", shown)
    size = len(answer.records[0])
    return Check(Verdict.OK, f"record found at {name} ({size} bytes)")


def _record(value: bytes, checks: list[Check]) -> KeyRecord | None:
    try:
        record = parse_key_record(value)
    except KeyRecordError as exc:
        if exc.revoked:
            checks.append(Check(Verdict.OK, "syntax valid"))
            checks.append(Check(Verdict.FAIL, "key revoked (empty p=): signatures with this "
                                "selector fail everywhere; use another selector", "revoked"))
        else:
            checks.append(Check(Verdict.FAIL, f"syntax invalid: {exc}", "syntax invalid"))
        return None
    version = "" if record.v else " (no v=DKIM1; recommended first tag)"
    checks.append(Check(Verdict.OK, "syntax valid" + version))
    return record


def _key_checks(record: KeyRecord, key: SigningKey | None, key_label: str) -> list[Check]:
    checks = [_strength(record)]
    if key is not None:
        checks.append(_matches(record, key, key_label))
    if record.testing:
        # RFC 6376 §3.6.1: t=y — verifiers MUST NOT treat messages from signers in
        # testing mode differently from unsigned mail.
        checks.append(Check(Verdict.WARN, "testing mode (t=y): verifiers treat mail as "
                            "unsigned when it fails; remove t=y once signing works", "testing (t=y)"))
    else:
        checks.append(Check(Verdict.OK, "not in testing mode (no t=y)"))
    if not record.allows_hash("sha256"):
        checks.append(Check(Verdict.FAIL, f"h={':'.join(record.h or ())} does not allow "
                            "sha256 (RFC 8301 §3.1: sha256 is the only hash to sign with)",
                            "h= excludes sha256"))
    else:
        hashes = ":".join(record.h) if record.h else "any"
        checks.append(Check(Verdict.OK, f"h= allows sha256 ({hashes})"))
    if not record.allows_email():
        checks.append(Check(Verdict.FAIL, f"s={':'.join(record.s)} does not allow email "
                            "(RFC 6376 §3.6.1: needs * or email)", "s= excludes email"))
    else:
        checks.append(Check(Verdict.OK, f"s= allows email ({':'.join(record.s)})"))
    return checks


def _strength(record: KeyRecord) -> Check:
    if record.k == "ed25519":
        return Check(Verdict.OK, "key type ed25519 (RFC 8463; sign with an RSA key as "
                     "well, not every verifier knows ed25519)")
    bits = record.bits
    if bits < MIN_RSA_BITS:
        return Check(Verdict.FAIL, f"key type rsa, {bits} bits: too small, verifiers "
                     f"must reject keys under {MIN_RSA_BITS} bits (RFC 8301 §3.2)",
                     f"{bits}-bit key")
    if bits < GOOD_RSA_BITS:
        return Check(Verdict.WARN, f"key type rsa, {bits} bits: weak, use {GOOD_RSA_BITS} "
                     "bits (RFC 8301 §3.2)", f"{bits}-bit key")
    return Check(Verdict.OK, f"key type rsa, {bits} bits")


def _matches(record: KeyRecord, key: SigningKey, key_label: str) -> Check:
    if record.k != key.key_type:
        return Check(Verdict.FAIL, f"does not match {key_label}: the record is "
                     f"k={record.k}, the private key is {key.key_type}", "does not match")
    if public_key_data(record.key) != key.public_data():
        return Check(Verdict.FAIL, f"does not match {key_label}: the record publishes "
                     "another public key", "does not match")
    return Check(Verdict.OK, f"matches {key_label}")


def _dnssec(answer: Answer[bytes]) -> Check:
    # RFC 4035 §3.2.3: the AD bit says the resolver validated the answer. DKIM does
    # not require DNSSEC, so its absence is advice, not a failure.
    if answer.authenticated:
        return Check(Verdict.OK, "DNSSEC-validated (the resolver set the AD bit)")
    return Check(Verdict.WARN, "not DNSSEC-validated (the resolver set no AD bit)",
                 "not DNSSEC-validated")


def _shorten(value: bytes) -> str:
    text = value.decode("ascii", "replace")
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"
