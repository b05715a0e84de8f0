"""Interop, both directions, keys from the loopback DNS zone: mailseal's signatures
verify in dkimpy, Mail::DKIM and OpenDKIM, and theirs verify in mailseal, for
rsa-sha256 with every canonicalization pair, ed25519-sha256 where the peer has it,
and several message shapes. Cases that meet a documented peer quirk are left to
test_quirks.py, which asserts what really happens there."""

from __future__ import annotations

import pytest

from mailseal import api
from mailseal.dkim.reasons import Reason
from mailseal.results import Result

from .cases import PEERS, SIGN_QUIRKS, VERIFY_QUIRKS, params
from .messages import MANY_HEADERS, PLAIN, Shape
from .peers import KeySet, Mailseal, Peer

pytestmark = pytest.mark.interop


@pytest.mark.parametrize(("peer_name", "algorithm", "canon", "shape"),
                         params("verifies", VERIFY_QUIRKS))
def test_peer_verifies_mailseal(request: pytest.FixtureRequest, mailseal: Mailseal,
                                peer_name: str, algorithm: str, canon: str,
                                shape: Shape) -> None:
    peer: Peer = request.getfixturevalue(peer_name)
    message = mailseal.signed(shape.message, algorithm=algorithm, canonicalization=canon)
    results = peer.verify(message)
    assert [r.result for r in results] == ["pass"], results


@pytest.mark.parametrize(("peer_name", "algorithm", "canon", "shape"),
                         params("signs", SIGN_QUIRKS))
def test_mailseal_verifies_peer(request: pytest.FixtureRequest, mailseal: Mailseal,
                                keys: KeySet, peer_name: str, algorithm: str, canon: str,
                                shape: Shape) -> None:
    peer: Peer = request.getfixturevalue(peer_name)
    message = peer.signed(shape.message, algorithm=algorithm, canonicalization=canon)
    [result] = mailseal.verify(message)
    assert (result.result, result.reason) == (Result.PASS, Reason.PASS), result
    assert (result.domain, result.selector, result.algorithm) == (
        keys.domain, keys.selector(algorithm), algorithm)
    assert result.key_bits == (2048 if algorithm == "rsa-sha256" else 256)


#: mailseal signing options that put optional tags in the signature (RFC 6376 §3.5)
OPTIONS = {
    "l=": {"body_length": True},
    "i=user": {"identity": "alice@interop.test"},
    "i=subdomain": {"identity": "@news.interop.test"},
    "x=": {"expire_after": 3600},
    "z=": {"copy_headers": True},
    "no-t=": {"timestamp": False},
}


@pytest.mark.parametrize("peer_name", PEERS)
@pytest.mark.parametrize("option", OPTIONS)
def test_peer_verifies_mailseal_optional_tags(request: pytest.FixtureRequest,
                                              mailseal: Mailseal, keys: KeySet,
                                              peer_name: str, option: str) -> None:
    peer: Peer = request.getfixturevalue(peer_name)
    for algorithm in sorted(peer.verifies):
        field = api.sign(MANY_HEADERS.message, domain=keys.domain,
                         selector=keys.selector(algorithm), key=keys.key_file(algorithm),
                         algorithm=algorithm, canonicalization="relaxed/relaxed",
                         **OPTIONS[option])  # type: ignore[arg-type]
        signed = field + MANY_HEADERS.message
        assert [r.result for r in peer.verify(signed)] == ["pass"], (algorithm, field)


def test_mailseal_verifies_dkimpy_body_length(dkimpy: Peer, mailseal: Mailseal) -> None:
    """dkimpy's l= (its own option); text appended after signing is outside l=, which
    mailseal reports as policy (VerifyPolicy.partial_body), not pass."""
    field: bytes = dkimpy.dkim.sign(  # type: ignore[attr-defined]
        PLAIN.message, mailseal.keys.rsa_selector.encode(), mailseal.keys.domain.encode(),
        mailseal.keys.rsa_pem.read_bytes(), canonicalize=(b"relaxed", b"simple"), length=True)
    signed = field + PLAIN.message
    [result] = mailseal.verify(signed)
    assert result.reason is Reason.PASS
    appended = b"\r\n-- \r\nAppended by a mailing list\r\n"
    [result] = mailseal.verify(signed + appended)
    assert (result.result, result.reason) == (Result.POLICY, Reason.PARTIAL_BODY)
    assert result.unsigned_bytes == len(appended)
    assert [r.result for r in dkimpy.verify(signed + appended)] == ["pass"]
