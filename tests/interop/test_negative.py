"""Negative interop: a signed message altered in transit (a body line, a signed header
field) fails in the other implementation, for the right reason where the
implementation tells reasons apart. Also several signatures on one message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mailseal import api
from mailseal.dkim.keys import load_key
from mailseal.dkim.reasons import Reason
from mailseal.dkim.sign import SignSpec
from mailseal.results import Result

from .cases import PEERS, opendkim_ed25519_simple_header
from .messages import PLAIN
from .peers import ED25519, PEER_CLASSES, RSA, Mailseal, Peer

pytestmark = pytest.mark.interop


def tamper_body(message: bytes) -> bytes:
    altered = message.replace(b"this is a plain message.", b"this is a changed message.")
    assert altered != message
    return altered


def tamper_header(message: bytes) -> bytes:
    altered = message.replace(b"Subject: Plain text\r\n", b"Subject: Plain text (edited)\r\n")
    assert altered != message
    return altered


TAMPERS = {"body": tamper_body, "header": tamper_header}
EXPECTED_REASON = {"body": Reason.BODY_HASH_MISMATCH, "header": Reason.SIGNATURE_MISMATCH}

#: How each peer words the two failures. OpenDKIM's test mode gives the same reason for
#: both; dkimpy raises "body hash mismatch" for the body and logs no reason for the
#: header signature.
PEER_DETAIL: dict[tuple[str, str], Callable[[str], bool]] = {
    ("dkimpy", "body"): lambda d: "body hash mismatch" in d,
    ("dkimpy", "header"): lambda d: "body hash mismatch" not in d,
    ("maildkim", "body"): lambda d: d == "fail (body has been altered)",
    ("maildkim", "header"): lambda d: d == "fail (message has been altered)",
    ("opendkim", "body"): lambda d: d == "signature verification failed",
    ("opendkim", "header"): lambda d: d == "signature verification failed",
}


def negative_params(role: str) -> list[object]:
    out: list[object] = []
    for peer in PEERS:
        for algorithm in sorted(getattr(PEER_CLASSES[peer], role)):
            for canon in ("simple/simple", "relaxed/relaxed"):
                if role == "signs" and opendkim_ed25519_simple_header(peer, algorithm, canon,
                                                                       PLAIN):
                    continue  # fails untampered already (test_quirks.py)
                for kind in TAMPERS:
                    out.append(pytest.param(peer, algorithm, canon, kind,
                                            id=f"{peer}-{algorithm}-{canon}-{kind}"))
    return out


@pytest.mark.parametrize(("peer_name", "algorithm", "canon", "kind"), negative_params("signs"))
def test_tampered_peer_signature_fails_in_mailseal(request: pytest.FixtureRequest,
                                                   mailseal: Mailseal, peer_name: str,
                                                   algorithm: str, canon: str,
                                                   kind: str) -> None:
    peer: Peer = request.getfixturevalue(peer_name)
    signed = peer.signed(PLAIN.message, algorithm=algorithm, canonicalization=canon)
    assert [r.reason for r in mailseal.verify(signed)] == [Reason.PASS]
    [result] = mailseal.verify(TAMPERS[kind](signed))
    assert (result.result, result.reason) == (Result.FAIL, EXPECTED_REASON[kind]), result


@pytest.mark.parametrize(("peer_name", "algorithm", "canon", "kind"),
                         negative_params("verifies"))
def test_tampered_mailseal_signature_fails_in_peer(request: pytest.FixtureRequest,
                                                   mailseal: Mailseal, peer_name: str,
                                                   algorithm: str, canon: str,
                                                   kind: str) -> None:
    peer: Peer = request.getfixturevalue(peer_name)
    signed = mailseal.signed(PLAIN.message, algorithm=algorithm, canonicalization=canon)
    [result] = peer.verify(TAMPERS[kind](signed))
    assert result.result == "fail", result
    assert PEER_DETAIL[peer_name, kind](result.detail), result


@pytest.mark.parametrize("peer_name", PEERS)
def test_rsa_and_ed25519_signatures_on_one_message(request: pytest.FixtureRequest,
                                                   mailseal: Mailseal,
                                                   peer_name: str) -> None:
    """mailseal signs with both keys in one pass (the usual dual-algorithm setup); each
    peer judges each signature on its own: a peer without Ed25519 still passes RSA."""
    peer: Peer = request.getfixturevalue(peer_name)
    keys = mailseal.keys
    specs = [SignSpec(domain=keys.domain, selector=keys.selector(alg),
                      key=load_key(keys.key_file(alg)), algorithm=alg,
                      canonicalization="relaxed/relaxed") for alg in (RSA, ED25519)]
    signed = b"".join(api.sign_specs(PLAIN.message, specs)) + PLAIN.message
    expected = ["pass" if alg in peer.verifies else "invalid" for alg in (RSA, ED25519)]
    assert [r.result for r in peer.verify(signed)] == expected
    assert [r.reason for r in mailseal.verify(signed)] == [Reason.PASS, Reason.PASS]
    # Body altered: both signatures fail, in both implementations.
    tampered = tamper_body(signed)
    assert [r.reason for r in mailseal.verify(tampered)] == [Reason.BODY_HASH_MISMATCH] * 2
    assert [r.result for r in peer.verify(tampered)] == [
        "fail" if alg in peer.verifies else "invalid" for alg in (RSA, ED25519)]
