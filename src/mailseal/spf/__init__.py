"""SPF (RFC 7208): record parsing, macros, check_host() over an injected resolver,
and the Received-SPF / Authentication-Results renderings of its result."""

from __future__ import annotations

from mailseal.spf.checker import SpfChecker
from mailseal.spf.evaluate import (
    Identity,
    SpfResult,
    check_helo,
    check_host,
    check_mail_from,
)
from mailseal.spf.received import method_result, received_spf_field, received_spf_value
from mailseal.spf.record import BadRecord, Record, RecordCache, parse_record

__all__ = [
    "BadRecord",
    "Identity",
    "Record",
    "RecordCache",
    "SpfChecker",
    "SpfResult",
    "check_helo",
    "check_host",
    "check_mail_from",
    "method_result",
    "parse_record",
    "received_spf_field",
    "received_spf_value",
]
