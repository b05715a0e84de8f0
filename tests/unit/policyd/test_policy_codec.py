"""The policy delegation protocol codec: whole, split at every offset, byte by byte."""

from __future__ import annotations

import pytest

from mailseal.frontends.policyd.codec import (
    MAX_REQUEST,
    PolicyCodec,
    PolicyProtocolError,
    PolicyReply,
)

REQUESTS = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
            b"helo_name=mx.example.net\nsender=a@example.net\nrecipient=b@example.com\n"
            b"instance=1a2b.5c\n\n"
            b"request=smtpd_access_policy\nclient_address=2001:db8::1\nsender=\n"
            b"recipient=c@example.com\nccert_subject=x=y\n\n")


def _all(codec: PolicyCodec) -> list[dict[str, str]]:
    out = []
    while (request := codec.next_request()) is not None:
        out.append(request.attributes)
    return out


def _parse_split(data: bytes, cuts: list[int]) -> list[dict[str, str]]:
    codec = PolicyCodec()
    got: list[dict[str, str]] = []
    start = 0
    for cut in [*cuts, len(data)]:
        codec.receive_data(data[start:cut])
        got += _all(codec)
        start = cut
    return got


def test_two_requests_whole_split_and_bytewise() -> None:
    whole = _parse_split(REQUESTS, [])
    assert [r["client_address"] for r in whole] == ["192.0.2.1", "2001:db8::1"]
    assert whole[1]["sender"] == "" and whole[1]["ccert_subject"] == "x=y"
    for cut in range(1, len(REQUESTS)):
        assert _parse_split(REQUESTS, [cut]) == whole
    assert _parse_split(REQUESTS, list(range(1, len(REQUESTS)))) == whole


def test_crlf_lines_are_accepted() -> None:
    codec = PolicyCodec()
    codec.receive_data(REQUESTS.replace(b"\n", b"\r\n"))
    assert len(_all(codec)) == 2


@pytest.mark.parametrize("bad", [b"no equals sign\n\n", b"=value\n\n"])
def test_malformed_lines(bad: bytes) -> None:
    codec = PolicyCodec()
    codec.receive_data(bad)
    with pytest.raises(PolicyProtocolError):
        codec.next_request()


def test_oversized_request_is_refused() -> None:
    codec = PolicyCodec()
    with pytest.raises(PolicyProtocolError, match="larger than"):
        codec.receive_data(b"x=" + b"y" * (MAX_REQUEST + 10))


def test_reply_bytes() -> None:
    assert PolicyReply("DUNNO").to_bytes() == b"action=DUNNO\n\n"
    assert PolicyReply("PREPEND Received-SPF: pass\r\n x").to_bytes() == \
        b"action=PREPEND Received-SPF: pass   x\n\n"
