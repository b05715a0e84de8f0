"""The interop matrix: which (peer, algorithm, canonicalization, shape) cases exist, and
which of them meet a documented peer quirk (those are asserted in test_quirks.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .messages import SHAPES, Shape
from .peers import CANONICALIZATIONS, ED25519, PEER_CLASSES

#: fixture names of the peers (see conftest.py)
PEERS = ("dkimpy", "maildkim", "opendkim")

Case = tuple[str, str, str, Shape]  # peer, algorithm, canonicalization, shape


def maildkim_simple_body_no_crlf(peer: str, algorithm: str, canon: str, shape: Shape) -> bool:
    """PEERS.md: Mail::DKIM 1.20230212 does not add the CRLF that RFC 6376 §3.4.3 adds to
    a body without a final line break (simple body canonicalization), when signing or
    verifying."""
    return peer == "maildkim" and canon.endswith("/simple") and shape.no_final_crlf


def opendkim_relaxed_body_no_crlf(peer: str, algorithm: str, canon: str, shape: Shape) -> bool:
    """PEERS.md: OpenDKIM refuses to sign a relaxed body with no final line break
    ("CRLF at end of body missing"); observed here: it does not verify such a signature
    either (it reports "message not signed")."""
    return peer == "opendkim" and canon.endswith("/relaxed") and shape.no_final_crlf


def opendkim_ed25519_simple_header(peer: str, algorithm: str, canon: str, shape: Shape) -> bool:
    """PEERS.md: OpenDKIM's Ed25519 signatures with simple header canonicalization do not
    verify anywhere, not even in OpenDKIM."""
    return peer == "opendkim" and algorithm == ED25519 and canon.startswith("simple/")


Quirk = Callable[[str, str, str, Shape], bool]

#: quirks met when the peer verifies mailseal's signature
VERIFY_QUIRKS: tuple[Quirk, ...] = (maildkim_simple_body_no_crlf, opendkim_relaxed_body_no_crlf)
#: quirks met when mailseal verifies the peer's signature (or the peer will not sign)
SIGN_QUIRKS: tuple[Quirk, ...] = (maildkim_simple_body_no_crlf, opendkim_relaxed_body_no_crlf,
                                  opendkim_ed25519_simple_header)


def all_cases(role: str) -> Iterator[Case]:
    """Every case for the peer's ``role`` ("signs" or "verifies"), by its declared
    algorithms (an algorithm a peer lacks is asserted in test_quirks.py)."""
    for peer in PEERS:
        for algorithm in sorted(getattr(PEER_CLASSES[peer], role)):
            for canon in CANONICALIZATIONS:
                for shape in SHAPES:
                    yield peer, algorithm, canon, shape


def params(role: str, quirks: tuple[Quirk, ...], *, only: Quirk | None = None) -> list[object]:
    """pytest params for ``role``: the cases no quirk touches, or with ``only``, the
    cases that this quirk alone touches."""
    out: list[object] = []
    for case in all_cases(role):
        hit = [q for q in quirks if q(*case)]
        if hit == ([] if only is None else [only]):
            peer, algorithm, canon, shape = case
            out.append(pytest.param(*case, id=f"{peer}-{algorithm}-{canon}-{shape}"))
    return out
