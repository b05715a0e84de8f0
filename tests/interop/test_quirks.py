"""Documented peer quirks (/work/shared/PEERS.md), asserted as what they are.

Each test pins the peer's actual behaviour and, where the peer disagrees with
mailseal, shows with dkimpy as a third opinion that mailseal follows RFC 6376. If a
peer is fixed, these tests fail and the case moves back into the plain matrix.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from mailseal.dkim.reasons import Reason
from mailseal.dkim.verify import VerifyPolicy
from mailseal.results import Result

from .cases import (
    SIGN_QUIRKS,
    maildkim_simple_body_no_crlf,
    opendkim_ed25519_simple_header,
    params,
)
from .messages import COMMON, FROM, NO_FINAL_CRLF, PLAIN, Shape
from .peers import ED25519, RSA, Mailseal, Peer, PeerError, PeerResult

pytestmark = pytest.mark.interop


def tag(field: bytes, name: bytes) -> bytes:
    match = re.search(rb"(?:^|;)\s*" + name + rb"\s*=([^;]*)", field.split(b":", 1)[1])
    assert match is not None, field
    return re.sub(rb"\s+", b"", match.group(1))


# -- Mail::DKIM: simple body without a final CRLF -------------------------------------


@pytest.mark.parametrize("canon", ["simple/simple", "relaxed/simple"])
def test_maildkim_simple_body_without_final_crlf(canon: str, maildkim: Peer, dkimpy: Peer,
                                                 mailseal: Mailseal) -> None:
    """Mail::DKIM hashes such a body as is instead of adding the CRLF that RFC 6376
    §3.4.3 adds, so its signatures fail elsewhere and others' fail in it."""
    shape = NO_FINAL_CRLF
    assert maildkim_simple_body_no_crlf("maildkim", RSA, canon, shape)
    body = shape.message.split(b"\r\n\r\n", 1)[1]
    assert not body.endswith(b"\r\n")

    # mailseal signs per the RFC: dkimpy agrees, Mail::DKIM reports a body hash failure.
    ours = mailseal.signed(shape.message, canonicalization=canon)
    assert tag(ours, b"bh") == base64.b64encode(hashlib.sha256(body + b"\r\n").digest())
    assert [r.result for r in dkimpy.verify(ours)] == ["pass"]
    [theirs_says] = maildkim.verify(ours)
    assert (theirs_says.result, theirs_says.detail) == ("fail", "fail (body has been altered)")

    # Mail::DKIM's bh= is the hash of the body without the CRLF; mailseal and dkimpy
    # both reject it on the body hash.
    signed = maildkim.signed(shape.message, canonicalization=canon)
    assert tag(signed, b"bh") == base64.b64encode(hashlib.sha256(body).digest())
    [result] = mailseal.verify(signed)
    assert (result.result, result.reason) == (Result.FAIL, Reason.BODY_HASH_MISMATCH)
    [referee] = dkimpy.verify(signed)
    assert referee.result == "fail" and "body hash mismatch" in referee.detail


# -- Mail::DKIM: no Ed25519 -------------------------------------------------------------


def test_maildkim_ed25519(maildkim: Peer, mailseal: Mailseal) -> None:
    """Mail::DKIM 1.20230212 (Debian 12) has no Ed25519 (RFC 8463)."""
    ours = mailseal.signed(PLAIN.message, algorithm=ED25519, canonicalization="relaxed/relaxed")
    if ED25519 in maildkim.verifies:  # a newer Mail::DKIM: then it must interoperate
        assert [r.result for r in maildkim.verify(ours)] == ["pass"]
        theirs = maildkim.signed(PLAIN.message, algorithm=ED25519)
        assert [r.reason for r in mailseal.verify(theirs)] == [Reason.PASS]
        return
    assert maildkim.verify(ours) == [
        PeerResult("invalid", "invalid (unsupported algorithm ed25519-sha256)")]
    with pytest.raises(PeerError, match="unsupported algorithm ed25519-sha256"):
        maildkim.sign(PLAIN.message, algorithm=ED25519)


# -- OpenDKIM: relaxed body without a final CRLF ----------------------------------------


@pytest.mark.parametrize("algorithm", [RSA, ED25519])
@pytest.mark.parametrize("canon", ["simple/relaxed", "relaxed/relaxed"])
def test_opendkim_relaxed_body_without_final_crlf(algorithm: str, canon: str, opendkim: Peer,
                                                  dkimpy: Peer, mailseal: Mailseal) -> None:
    """OpenDKIM will not sign a relaxed body lacking its final line break, and does not
    judge such a signature either: it reports the message as not signed."""
    shape = NO_FINAL_CRLF
    with pytest.raises(PeerError, match="CRLF at end of body missing"):
        opendkim.sign(shape.message, algorithm=algorithm, canonicalization=canon)

    ours = mailseal.signed(shape.message, algorithm=algorithm, canonicalization=canon)
    assert [r.result for r in dkimpy.verify(ours)] == ["pass"]
    assert [(r.result, r.detail) for r in opendkim.verify(ours)] == [
        ("none", "message not signed")]
    # Only the missing line break bothers it: relaxed canonicalization of the body is the
    # same with one added (RFC 6376 §3.4.4), and then OpenDKIM passes our signature.
    assert [r.result for r in opendkim.verify(ours + b"\r\n")] == ["pass"]


# -- OpenDKIM: Ed25519 with simple header canonicalization ------------------------------


@pytest.mark.parametrize(("peer_name", "algorithm", "canon", "shape"),
                         params("signs", SIGN_QUIRKS, only=opendkim_ed25519_simple_header))
def test_opendkim_ed25519_simple_header(peer_name: str, algorithm: str, canon: str,
                                        shape: Shape, opendkim: Peer, dkimpy: Peer,
                                        mailseal: Mailseal) -> None:
    """OpenDKIM's ed25519-sha256 signatures with c=simple/... verify nowhere, not even in
    OpenDKIM; the body hash is right, the header signature is not."""
    signed = opendkim.signed(shape.message, algorithm=algorithm, canonicalization=canon)
    [result] = mailseal.verify(signed)
    assert (result.result, result.reason) == (Result.FAIL, Reason.SIGNATURE_MISMATCH)
    [referee] = dkimpy.verify(signed)
    assert referee.result == "fail" and "body hash mismatch" not in referee.detail
    assert [r.result for r in opendkim.verify(signed)] == ["fail"]
    # OpenDKIM verifies mailseal's Ed25519 signature of the same message and canonicalization.
    ours = mailseal.signed(shape.message, algorithm=algorithm, canonicalization=canon)
    assert [r.result for r in opendkim.verify(ours)] == ["pass"]


# -- OpenDKIM: whitespace after a header colon (test mode / milter view) -----------------

ODD_COLONS = [b"Subject:\tTabbed subject", b"Subject:No space", b"Subject:   Three spaces"]


@pytest.mark.parametrize("subject", ODD_COLONS, ids=["tab", "no-space", "three-spaces"])
def test_opendkim_header_colon_spacing(subject: bytes, opendkim: Peer, dkimpy: Peer,
                                       mailseal: Mailseal) -> None:
    """OpenDKIM sees header fields as (name, value) the way a milter gets them and puts
    back exactly "name: value": a field whose colon is not followed by exactly one space
    does not survive simple header canonicalization, signing or verifying."""
    message = (FROM + b"To: bob@example.org\r\n" + subject + b"\r\n" + COMMON
               + b"\r\nbody\r\n")
    theirs = opendkim.signed(message, canonicalization="simple/simple")
    assert [r.result for r in opendkim.verify(theirs)] == ["pass"]
    assert [r.reason for r in mailseal.verify(theirs)] == [Reason.SIGNATURE_MISMATCH]
    assert [r.result for r in dkimpy.verify(theirs)] == ["fail"]

    ours = mailseal.signed(message, canonicalization="simple/simple")
    assert [r.result for r in dkimpy.verify(ours)] == ["pass"]
    assert [r.result for r in opendkim.verify(ours)] == ["fail"]

    # Relaxed header canonicalization makes the spacing irrelevant: all agree.
    theirs = opendkim.signed(message, canonicalization="relaxed/simple")
    assert [r.reason for r in mailseal.verify(theirs)] == [Reason.PASS]
    ours = mailseal.signed(message, canonicalization="relaxed/simple")
    assert [r.result for r in opendkim.verify(ours)] == ["pass"]


# -- rsa-sha1: peers accept it, RFC 8301 says not to ------------------------------------


def test_rsa_sha1_from_opendkim_testmsg(opendkim_testmsg: Peer, dkimpy: Peer, maildkim: Peer,
                                        opendkim: Peer, mailseal: Mailseal) -> None:
    """opendkim-testmsg signs with libopendkim's defaults: rsa-sha1, relaxed/simple.
    RFC 8301 §3.1: verifiers MUST NOT consider rsa-sha1 signatures valid. mailseal and
    Mail::DKIM (Strict) refuse it; dkimpy and OpenDKIM pass it."""
    signed = opendkim_testmsg.signed(PLAIN.message)
    assert tag(signed, b"a") == b"rsa-sha1"
    assert tag(signed, b"c") == b"relaxed/simple"
    [result] = mailseal.verify(signed)
    assert (result.result, result.reason) == (Result.PERMERROR, Reason.WEAK_ALGORITHM)
    [legacy] = mailseal.verify(signed, VerifyPolicy(allow_sha1=True))
    assert legacy.reason is Reason.PASS  # the signature itself is sound
    assert [(r.result, r.detail) for r in maildkim.verify(signed)] == [
        ("invalid", "invalid (unsupported algorithm rsa-sha1)")]
    assert [r.result for r in dkimpy.verify(signed)] == ["pass"]
    assert [r.result for r in opendkim.verify(signed)] == ["pass"]

