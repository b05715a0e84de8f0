"""DKIM signing (RFC 6376 §5): the field emitted, its tags, its layout, its errors."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailseal import api
from mailseal.dkim.canonical import Canon
from mailseal.dkim.keys import SigningKey
from mailseal.dkim.sign import (
    DEFAULT_SIGNED,
    MAX_LINE,
    Signer,
    SignError,
    SignSpec,
    copied_headers,
    fold_tags,
    signed_header_names,
)
from mailseal.dkim.signature import Signature, parse_signature
from mailseal.message import HeaderField, split_message
from mailseal.tagvalue import parse_tag_list

NOW = 1_700_000_000
MSG = (b"From: Joe SixPack <joe@football.example.com>\r\n"
       b"To: Suzie Q <suzie@shopping.example.net>\r\n"
       b"Subject: Is dinner ready?\r\n"
       b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
       b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
       b"\r\n"
       b"Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n")


def sign_one(key: SigningKey, message: bytes = MSG, **kw: object) -> bytes:
    args: dict[str, object] = {"domain": "example.com", "selector": "sel", "key": key}
    args.update(kw)
    return api.sign_specs(message, [SignSpec(**args)], now=NOW)[0]


def tags_of(field: bytes) -> dict[str, str]:
    name, _, value = field.partition(b":")
    assert name == b"DKIM-Signature" and field.endswith(b"\r\n")
    return parse_tag_list(value[:-2])


def parsed(field: bytes) -> Signature:
    fields, _ = split_message(field + b"\r\n")
    sig = parse_signature(fields[0])
    assert isinstance(sig, Signature), sig
    return sig


def columns(field: bytes) -> list[int]:
    """Display width of each line of a field (a TAB at the start counts 8)."""
    return [len(line.expandtabs(8)) for line in field.rstrip(b"\r\n").split(b"\r\n")]


# --- the field ---------------------------------------------------------------


def test_field_shape_and_tag_order(ed_key: SigningKey) -> None:
    """STYLE habit 5: tags in a fixed order, b= last."""
    field = sign_one(ed_key, identity="joe@football.example.com", expire_after=3600,
                     body_length=True, copy_headers=True)
    assert field.startswith(b"DKIM-Signature: v=1; ") and field.endswith(b"\r\n")
    assert b"\r\n" not in field[:-2].replace(b"\r\n\t", b"")  # only folded with CRLF TAB
    assert list(tags_of(field)) == ["v", "a", "c", "d", "s", "i", "l", "t", "x", "h", "z", "bh",
                                    "b"]


def test_ed25519_signatures_are_byte_exact_with_a_fixed_clock(ed_key: SigningKey) -> None:
    assert sign_one(ed_key) == sign_one(ed_key)
    assert sign_one(ed_key) != api.sign_specs(
        MSG, [SignSpec(domain="example.com", selector="sel", key=ed_key)], now=NOW + 1)[0]


def test_default_tags(rsa_key: SigningKey) -> None:
    tags = tags_of(sign_one(rsa_key))
    assert tags["v"] == "1" and tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/simple"
    assert tags["d"] == "example.com" and tags["s"] == "sel" and tags["t"] == str(NOW)
    assert "i" not in tags and "x" not in tags and "l" not in tags and "z" not in tags
    # §5.4.1 fields present, each once, From once more (oversigned)
    assert tags["h"].replace("\r\n\t", "") == "from:from:subject:date:to:message-id"
    _, body = split_message(MSG)
    # relaxed/simple: the body part is simple, the body is already canonical
    assert tags["bh"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert len(base64.b64decode("".join(tags["b"].split()))) == 256


@pytest.mark.parametrize(("key_name", "algorithm"), [("rsa_key", "rsa-sha256"),
                                                     ("ed_key", "ed25519-sha256")])
def test_algorithm_follows_the_key(request: pytest.FixtureRequest, key_name: str,
                                   algorithm: str) -> None:
    key = request.getfixturevalue(key_name)
    assert tags_of(sign_one(key))["a"] == algorithm
    assert tags_of(sign_one(key, algorithm=algorithm.upper()))["a"] == algorithm


def test_domain_is_lower_cased(ed_key: SigningKey) -> None:
    assert tags_of(sign_one(ed_key, domain="Example.COM"))["d"] == "example.com"


@pytest.mark.parametrize("canonicalization", ["simple/simple", "simple/relaxed",
                                              "relaxed/simple", "relaxed/relaxed"])
def test_canonicalization_tag_and_body_hash(ed_key: SigningKey, canonicalization: str) -> None:
    tags = tags_of(sign_one(ed_key, canonicalization=canonicalization))
    assert tags["c"] == canonicalization
    body = split_message(MSG)[1]
    canonical = body if canonicalization.endswith("simple") else body.replace(b"  ", b" ")
    assert base64.b64decode(tags["bh"]) == hashlib.sha256(canonical).digest()


def test_canonicalization_without_body_part(ed_key: SigningKey) -> None:
    assert tags_of(sign_one(ed_key, canonicalization="relaxed"))["c"] == "relaxed/simple"


def test_optional_tags(ed_key: SigningKey) -> None:
    tags = tags_of(sign_one(ed_key, identity="joe@Sub.Example.com", expire_after=600,
                            body_length=True))
    assert tags["i"] == "joe@Sub.Example.com"
    assert (tags["t"], tags["x"]) == (str(NOW), str(NOW + 600))
    assert tags["l"] == str(len(split_message(MSG)[1]))


def test_no_timestamp(ed_key: SigningKey) -> None:
    assert "t" not in tags_of(sign_one(ed_key, timestamp=False))
    # x= needs t= to be meaningful (§3.5): expiry brings the timestamp back
    tags = tags_of(sign_one(ed_key, timestamp=False, expire_after=5))
    assert (tags["t"], tags["x"]) == (str(NOW), str(NOW + 5))


def test_l_counts_the_canonical_body(ed_key: SigningKey) -> None:
    message = b"From: a@example.com\r\n\r\nx  y \r\n\r\n\r\n"
    assert tags_of(sign_one(ed_key, message, canonicalization="relaxed/relaxed",
                            body_length=True))["l"] == "5"  # "x y\r\n"
    assert tags_of(sign_one(ed_key, message, canonicalization="relaxed/simple",
                            body_length=True))["l"] == "7"  # "x  y \r\n"
    assert tags_of(sign_one(ed_key, b"From: a@example.com\r\n", canonicalization="relaxed/relaxed",
                            body_length=True))["l"] == "0"


def test_extra_tags_go_before_bh(ed_key: SigningKey) -> None:
    tags = tags_of(sign_one(ed_key, extra=(("q", "dns/txt"), ("n", "note"))))
    assert list(tags)[-4:] == ["q", "n", "bh", "b"]


# --- h= and z= -----------------------------------------------------------------


F = HeaderField


def test_signed_header_names() -> None:
    fields = [F(b"From", b" a"), F(b"Received", b" x"), F(b"To", b" b"), F(b"to", b" c"),
              F(b"Subject", b" s"), F(b"X-Other", b" o")]
    assert signed_header_names(fields, None, ("from",)) == ["from", "from", "subject", "to", "to"]
    assert signed_header_names(fields, ["Subject", "to", "subject"], ()) == [
        "from", "from", "subject", "to", "to"]  # From always, and always oversigned
    assert signed_header_names(fields, ["subject", "cc", "reply-to"], ["subject", "Cc"]) == [
        "from", "from", "subject", "subject", "cc"]  # oversigning an absent field: listed once
    assert signed_header_names(fields, ["x-other", "received"], ()) == [
        "from", "from", "x-other", "received"]


def test_default_signed_fields_include_rfc6376_5_4_1() -> None:
    for name in ("from", "reply-to", "subject", "date", "to", "cc", "resent-date", "resent-from",
                 "resent-sender", "resent-to", "resent-cc", "in-reply-to", "references",
                 "list-id", "list-help", "list-unsubscribe", "list-subscribe", "list-post",
                 "list-owner", "list-archive"):
        assert name in DEFAULT_SIGNED
    assert "received" not in DEFAULT_SIGNED and "return-path" not in DEFAULT_SIGNED


def test_copied_headers_z() -> None:
    """§3.5 z=: dkim-quoted-printable, "|" between fields; ";", "|", "=" and SP encoded."""
    fields = [F(b"From", b" Joe <a@b>"), F(b"Subject", b" a|b;c=d\r\n\tcaf\xc3\xa9 ")]
    assert copied_headers(fields, ["from", "subject"]) == (
        "From:Joe=20<a@b>|Subject:a=7Cb=3Bc=3Dd=09caf=C3=A9")


def test_z_tag_emitted(ed_key: SigningKey) -> None:
    tags = tags_of(sign_one(ed_key, copy_headers=True, headers=("from", "subject")))
    assert "".join(tags["z"].split()) == (
        "From:Joe=20SixPack=20<joe@football.example.com>|Subject:Is=20dinner=20ready?")


# --- errors ------------------------------------------------------------------


@pytest.mark.parametrize(("message", "match"), [
    (b"To: a@example.com\r\n\r\nbody\r\n", "no From field"),
    (b"", "no From field"),
    (b"From: a@example.com\r\nfrom: b@example.com\r\n\r\nbody\r\n", "2 From fields"),
])
def test_from_required_once(ed_key: SigningKey, message: bytes, match: str) -> None:
    """RFC 6376 §5.4: From MUST be signed; RFC 5322 §3.6: exactly one From."""
    with pytest.raises(SignError, match=match):
        sign_one(ed_key, message)


def test_rsa_sha1_refused_unless_allowed(rsa_key: SigningKey) -> None:
    """RFC 8301 §3.1: signers MUST NOT use rsa-sha1."""
    with pytest.raises(SignError, match="RFC 8301"):
        sign_one(rsa_key, algorithm="rsa-sha1")
    tags = tags_of(sign_one(rsa_key, algorithm="rsa-sha1", allow_sha1=True))
    assert tags["a"] == "rsa-sha1"
    assert base64.b64decode(tags["bh"]) == hashlib.sha1(split_message(MSG)[1]).digest()


@pytest.mark.parametrize(("kw", "match"), [
    ({"algorithm": "ed25519-sha256"}, "needs a ed25519 key"),
    ({"algorithm": "rsa-md5"}, "unknown algorithm"),
    ({"canonicalization": "nofws/simple"}, "unknown canonicalization"),
    ({"canonicalization": "relaxed/nofws"}, "unknown canonicalization"),
    ({"identity": "joe@example.org"}, "not within example.com"),
    ({"identity": "joe@notexample.com"}, "not within"),
    ({"identity": "example.com"}, "not within"),
])
def test_bad_specs(rsa_key: SigningKey, kw: dict[str, str], match: str) -> None:
    with pytest.raises(SignError, match=match):
        sign_one(rsa_key, **kw)


@pytest.mark.parametrize("identity", ["joe@example.org", ""])
def test_an_identity_outside_d_is_refused_before_the_body(rsa_key: SigningKey,
                                                          identity: str) -> None:
    """A property of the spec: refused when the signer is made (a signing failure),
    not after the whole body at finish (where the pipeline saw an internal error)."""
    spec = SignSpec(domain="example.com", selector="sel", key=rsa_key, identity=identity)
    with pytest.raises(SignError, match=r"not within example\.com"):
        Signer(split_message(MSG)[0], [spec])


@pytest.mark.parametrize("kw", [
    {"selector": "sel\r\nBcc: evil@example.net"},
    {"selector": "a;b"},
    {"selector": ""},
    {"domain": "exa mple.com"},
    {"domain": ""},
    {"domain": "example.com."},
], ids=["s-crlf-injection", "s-semicolon", "s-empty", "d-space", "d-empty", "d-trailing-dot"])
def test_invalid_domain_or_selector_is_refused(ed_key: SigningKey, kw: dict[str, str]) -> None:
    with pytest.raises(SignError):
        sign_one(ed_key, **kw)


def test_ed_key_with_rsa_algorithm(ed_key: SigningKey) -> None:
    with pytest.raises(SignError, match="needs a rsa key"):
        sign_one(ed_key, algorithm="rsa-sha256")


def test_nothing_to_sign_with() -> None:
    fields, _ = split_message(MSG)
    with pytest.raises(SignError, match="nothing to sign"):
        Signer(fields, [])


@pytest.mark.parametrize(("identity", "written"), [
    ("j\u00e9@example.com", "j=C3=A9@example.com"),
    ("a=b;c@example.com", "a=3Db=3Bc@example.com"),
    ("joe@example.com", "joe@example.com"),
])
def test_identity_is_dkim_quoted_printable(ed_key: SigningKey, identity: str,
                                           written: str) -> None:
    """RFC 6376 §2.11, §3.5: i= is dkim-quoted-printable (UTF-8 octets as =XX)."""
    field = sign_one(ed_key, identity=identity)
    assert tags_of(field)["i"] == written
    assert parsed(field).i == identity


# --- several signatures, one pass ------------------------------------------------


def test_two_specs_one_pass_over_the_body(rsa_key: SigningKey, ed_key: SigningKey) -> None:
    fields, body = split_message(MSG)
    specs = [SignSpec(domain="example.com", selector="rsa", key=rsa_key),
             SignSpec(domain="example.com", selector="ed", key=ed_key),
             SignSpec(domain="example.com", selector="rr", key=ed_key,
                      canonicalization="relaxed/relaxed")]
    signer = Signer(fields, specs)
    for i in range(len(body)):  # the body goes in once, byte by byte, for all three
        signer.feed(body[i : i + 1])
    out = signer.finish(NOW)
    assert [tags_of(f)["s"] for f in out] == ["rsa", "ed", "rr"]  # spec order
    bh = [tags_of(f)["bh"] for f in out]
    assert bh[0] == bh[1] != bh[2]
    # RSASSA-PKCS1-v1_5 and Ed25519 are deterministic: the same fields as signing whole
    assert out == api.sign_specs(MSG, specs, now=NOW)


def test_api_sign_with_a_key_file(tmp_path: Path, ed_key: SigningKey) -> None:
    path = tmp_path / "ed.pem"
    path.write_bytes(ed_key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    os.chmod(path, 0o600)
    field = api.sign(MSG, domain="example.com", selector="sel", key=path, now=NOW)
    assert field == sign_one(ed_key)
    assert api.sign(MSG, domain="example.com", selector="sel", key=str(path), now=NOW) == field


# --- layout ------------------------------------------------------------------


def test_lines_fit_in_78_columns_for_a_usual_message(rsa_key: SigningKey,
                                                     ed_key: SigningKey) -> None:
    for key in (rsa_key, ed_key):
        field = sign_one(key, selector="2026-11", identity="joe@football.example.com",
                         expire_after=86400, body_length=True)
        assert max(columns(field)) <= MAX_LINE, field.decode()


def test_long_h_list_folds_after_colons(ed_key: SigningKey) -> None:
    message = b"From: a@example.com\r\n" + b"".join(
        b"X-Header-Number-%d: v\r\n" % i for i in range(40)) + b"\r\nbody\r\n"
    names = tuple(f"x-header-number-{i}" for i in range(40))
    field = sign_one(ed_key, message, headers=names)
    h = tags_of(field)["h"]
    assert re.sub(r"\s", "", h).split(":") == ["from", "from", *names]
    assert all(line.endswith(":") for line in h.split("\r\n\t")[:-1])
    assert all(len(line.expandtabs(8)) <= MAX_LINE for line in h.split("\r\n"))


def test_fold_tags_short_list() -> None:
    assert fold_tags([("v", "1"), ("b", "")]) == " v=1; b="


def test_b_line_fits_in_78_columns(ed_key: SigningKey) -> None:
    message = b"From: joe@example.com\r\nSubject: hello\r\n\r\nbody\r\n"
    field = sign_one(ed_key, message, timestamp=False)
    assert max(columns(field)) <= MAX_LINE, field.decode()


def test_semicolon_after_folded_value_is_counted() -> None:
    h = "from:from:xxxxx:xxxxxxxx:xxxxx:xxxxxxxxxxxxxxxxx:xxxxxxxxxxxxx:x:xxx"
    tags = [("v", "1"), ("a", "rsa-sha256"), ("c", "relaxed/simple"), ("d", "example.com"),
            ("s", "s"), ("h", h), ("bh", "A" * 44), ("b", "")]
    out = ("DKIM-Signature:" + fold_tags(tags)).encode()
    assert max(columns(out)) <= MAX_LINE, out.decode()


def test_long_z_is_folded_between_escapes(ed_key: SigningKey) -> None:
    value = b"w" * 700 + b" caf\xc3\xa9|=;" * 20
    message = b"From: a@example.com\r\nSubject: " + value + b"\r\n\r\nbody\r\n"
    field = sign_one(ed_key, message, copy_headers=True)
    assert max(columns(field)) <= MAX_LINE
    z = tags_of(field)["z"]
    fields, _ = split_message(message)
    assert "".join(z.split()) == copied_headers(fields, parsed(field).h)
    assert not re.search(r"=\s|=[0-9A-F]\s", z)  # no break inside an =XX escape


def test_unbreakable_value_stays_whole_on_its_own_line(ed_key: SigningKey) -> None:
    domain = "a" * 63 + "." + "b" * 63 + ".example"
    field = sign_one(ed_key, domain=domain)
    assert f"\r\n\td={domain};".encode() in field
    assert parsed(field).d == domain


HEADER_NAMES = st.lists(st.from_regex(r"(Subject|To|Cc|Date|X-[a-z]{1,40})", fullmatch=True),
                        max_size=8)
LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAINS = st.from_regex(rf"{LABEL}(\.{LABEL}){{0,2}}\.com", fullmatch=True)
SELECTORS = st.from_regex(rf"{LABEL}(\.{LABEL})?", fullmatch=True)
LOCAL_PARTS = st.text(alphabet=st.sampled_from(list("abz09.+-=;é ")), min_size=1, max_size=70)


def signed_with(key: SigningKey, domain: str, selector: str, names: list[str],
                timestamp: bool, expire: int | None, local: str | None = None,
                copy: bool = False) -> bytes:
    message = b"From: a@example.com\r\n" + b"".join(
        f"{n}: value of {n}\r\n".encode() for n in names) + b"\r\nbody\r\n"
    return api.sign_specs(message, [SignSpec(
        domain=domain, selector=selector, key=key, timestamp=timestamp, expire_after=expire,
        headers=("from", *names), identity=None if local is None else f"{local}@{domain}",
        copy_headers=copy)], now=NOW)[0]


LAYOUTS = {"domain": DOMAINS, "selector": SELECTORS, "names": HEADER_NAMES,
           "timestamp": st.booleans(), "expire": st.sampled_from([None, 60, 31_536_000]),
           "local": st.none() | LOCAL_PARTS, "copy": st.booleans()}


@settings(max_examples=80)
@given(**LAYOUTS)
@example(domain="example.com", selector="sel", names=["Subject"], timestamp=False, expire=None,
         local=None, copy=False)
def test_folding_keeps_every_value(ed_key: SigningKey, domain: str, selector: str,
                                   names: list[str], timestamp: bool, expire: int | None,
                                   local: str | None, copy: bool) -> None:
    field = signed_with(ed_key, domain, selector, names, timestamp, expire, local, copy)
    sig = parsed(field)
    assert (sig.d, sig.s) == (domain, selector)
    assert sig.i == ("@" + domain if local is None else f"{local}@{domain}")
    fields = [F(b"From", b""), *(F(n.encode(), b"") for n in names)]
    assert list(sig.h) == signed_header_names(fields, ("from", *names), ("from",))
    assert (sig.t is not None) == (timestamp or expire is not None)
    assert (sig.z is not None) == copy


@settings(max_examples=80)
@given(**LAYOUTS)
@example(domain="example.com", selector="sel", names=["Subject"], timestamp=False, expire=None,
         local=None, copy=False)  # once an 80-column b= line
def test_every_line_fits_property(ed_key: SigningKey, domain: str, selector: str,
                                  names: list[str], timestamp: bool, expire: int | None,
                                  local: str | None, copy: bool) -> None:
    """No line passes 78 columns, except one holding a single value that the grammar
    does not let us break (d=, s=, i=), alone on its continuation line."""
    field = signed_with(ed_key, domain, selector, names, timestamp, expire, local, copy)
    for line in field.rstrip(b"\r\n").split(b"\r\n"):
        if len(line.expandtabs(8)) > MAX_LINE:
            assert re.fullmatch(rb"\t[dsi]=[^ ;]+;", line), field.decode()


def test_canon_values_are_the_canon_enum(ed_key: SigningKey) -> None:
    assert parsed(sign_one(ed_key, canonicalization="simple/relaxed")).c == (
        Canon.SIMPLE, Canon.RELAXED)
