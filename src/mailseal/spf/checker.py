"""The long-lived shape of an SPF verifier, for servers (policy service, milter).

A server checks many messages with the same resolver; what it should keep between
checks besides the DNS cache is the parsed records: the records of the big
providers' includes are the same for most mail, and parsing them again is most of a
warm check's cost (see docs/performance.md, "SPF"). :class:`SpfChecker` holds both,
and the receiving host's name for ``%{r}``, so every check is one call.
"""

from __future__ import annotations

from mailseal.dns.types import FullResolver
from mailseal.spf.evaluate import SpfResult, check_helo, check_mail_from
from mailseal.spf.macro import IPAddress
from mailseal.spf.record import RecordCache


class SpfChecker:
    """``await checker.mail_from(ip, mail_from, helo, now=...)`` and
    ``await checker.helo(ip, helo, now=...)``, sharing one resolver and one
    :class:`RecordCache`. Not shared between event loops."""

    def __init__(
        self,
        resolver: FullResolver,
        *,
        receiver: str = "unknown",
        records: RecordCache | None = None,
    ) -> None:
        self.resolver = resolver
        self.receiver = receiver
        self.records = records if records is not None else RecordCache()

    async def mail_from(
        self, ip: str | IPAddress, mail_from: str, helo: str, *, now: float
    ) -> SpfResult:
        """The MAIL FROM identity (postmaster@HELO for a null reverse-path)."""
        return await check_mail_from(self.resolver, ip, mail_from, helo, now=now,
                                     receiver=self.receiver, records=self.records)

    async def helo(self, ip: str | IPAddress, helo: str, *, now: float) -> SpfResult:
        """The HELO identity (RFC 7208 §2.3)."""
        return await check_helo(self.resolver, ip, helo, now=now, receiver=self.receiver,
                                records=self.records)
