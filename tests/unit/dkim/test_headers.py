"""Which fields a signature covers and the header hash (RFC 6376 §5.4.2, §3.7)."""

from __future__ import annotations

import hashlib

from mailseal.dkim.canonical import Canon
from mailseal.dkim.headers import header_digest, select_headers
from mailseal.message import HeaderField

F = HeaderField
FIELDS = [F(b"Received", b" 1"), F(b"From", b" a"), F(b"Subject", b" s1"),
          F(b"received", b" 2"), F(b"SUBJECT", b" s2"), F(b"To", b" t")]


def test_instances_are_taken_from_the_bottom_up() -> None:
    """§5.4.2: "signers ... sign the last instance first ... working upward"."""
    chosen = select_headers(FIELDS, ["subject", "Subject", "received", "RECEIVED"])
    assert chosen == [FIELDS[4], FIELDS[2], FIELDS[3], FIELDS[0]]


def test_names_with_no_instance_left_add_nothing() -> None:
    """§5.4.2: a name listed more often than present is "treated as the null string"."""
    assert select_headers(FIELDS, ["from", "from", "cc", "to"]) == [FIELDS[1], FIELDS[5]]


def test_names_are_matched_without_surrounding_whitespace() -> None:
    assert select_headers([F(b"From ", b" a")], [" FROM "]) == [F(b"From ", b" a")]


def test_header_digest_layout() -> None:
    """§3.7: the selected fields canonicalized with CRLF, then the signature field
    canonicalized without its trailing CRLF."""
    sig = F(b"DKIM-Signature", b" v=1; h=from:to; b=")
    for canon, expected in [
        (Canon.SIMPLE, b"From: a\r\nTo: t\r\nDKIM-Signature: v=1; h=from:to; b="),
        (Canon.RELAXED, b"from:a\r\nto:t\r\ndkim-signature:v=1; h=from:to; b="),
    ]:
        got = header_digest(FIELDS, ["from", "to"], canon, "sha256", sig)
        assert got == hashlib.sha256(expected).digest()
