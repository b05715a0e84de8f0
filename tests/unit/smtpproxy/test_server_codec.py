"""SmtpServerCodec against a scripted client wired in memory: a session fed whole,
split at every offset and one byte at a time gives the same events and the same reply
bytes (STYLE habit 1, h11's tests); and SMTP's state rules, bounds and refusals."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.frontends.smtpproxy.events import (
    Content,
    Data,
    EndOfData,
    Event,
    Helo,
    Mail,
    Noop,
    Quit,
    Rcpt,
    Refused,
    Rset,
    StartTls,
    Vrfy,
    Xforward,
)
from mailseal.frontends.smtpproxy.replies import Reply
from mailseal.frontends.smtpproxy.server_codec import (
    NEED_DATA,
    PAUSED,
    SmtpServerCodec,
    State,
)

GREETING = Reply(220, "", "mx.test ESMTP")
EXTENSIONS = ("PIPELINING", "SIZE 1000", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES",
              "XFORWARD NAME ADDR HELO", "STARTTLS")


def answer(event: Event) -> Reply:
    """A small, well-behaved server."""
    if isinstance(event, Refused):
        return event.reply
    if isinstance(event, Helo):
        return Reply(250, "", "mx.test", EXTENSIONS if event.extended else ())
    if isinstance(event, Rcpt) and event.address.startswith("bad"):
        return Reply(550, "5.1.1", "no such user")
    if isinstance(event, Data):
        return Reply(354, "", "go ahead")
    if isinstance(event, EndOfData):
        return Reply(552, "5.3.4", "too big") if event.too_big else Reply(250, "2.0.0", "queued")
    if isinstance(event, Quit):
        return Reply(221, "2.0.0", "Bye")
    if isinstance(event, StartTls):
        return Reply(220, "2.0.0", "Ready")
    if isinstance(event, Vrfy):
        return Reply(252, "2.0.0", "maybe")
    return Reply(250, "2.0.0", "Ok")


def run(pieces: list[bytes], codec: SmtpServerCodec | None = None,
        answerer: Callable[[Event], Reply] = answer) -> tuple[list[Event], bytes, SmtpServerCodec]:
    codec = codec or SmtpServerCodec(max_size=1000)
    out = codec.send(GREETING)
    events: list[Event] = []
    for piece in pieces:
        codec.receive_data(piece)
        while not codec.closed:
            event = codec.next_event()
            if event is NEED_DATA or event is PAUSED:
                break
            if isinstance(event, Content) and events and isinstance(events[-1], Content):
                events[-1] = Content(events[-1].data + event.data)  # chunking is free
                continue
            events.append(event)
            if not isinstance(event, Content):
                out += codec.send(answerer(event))
    return events, out, codec


SESSION = (b"EHLO client.test\r\n"
           b"XFORWARD NAME=host.test ADDR=192.0.2.1 HELO=h+2Bx\r\n"
           b"MAIL FROM:<a@example.com> SIZE=100 BODY=8BITMIME\r\n"
           b"RCPT TO:<b@example.org> NOTIFY=NEVER\r\nRCPT TO:<bad@example.org>\r\n"
           b"DATA\r\n"
           b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\n"
           b"RSET\r\nNOOP\r\nVRFY someone\r\nQUIT\r\n")

EXPECTED = [
    Helo("client.test", True),
    Xforward((("NAME", "host.test"), ("ADDR", "192.0.2.1"), ("HELO", "h+2Bx"))),
    Mail("a@example.com", (("SIZE", "100"), ("BODY", "8BITMIME"))),
    Rcpt("b@example.org", (("NOTIFY", "NEVER"),)),
    Rcpt("bad@example.org"),
    Data(),
    Content(b"Subject: x\r\n\r\n.dot\r\nbody\r\n"),
    EndOfData(26, dot_lines=1),
    Rset(), Noop(), Vrfy("someone"), Quit(),
]


def splits(wire: bytes) -> list[list[bytes]]:
    return [[wire], [bytes([b]) for b in wire], *([wire[:i], wire[i:]]
                                                  for i in range(1, len(wire)))]


def test_session_same_however_split() -> None:
    first_events, first_out, codec = run([SESSION])
    assert first_events == EXPECTED
    assert codec.closed
    assert first_out.startswith(b"220 mx.test ESMTP\r\n250-mx.test\r\n250-PIPELINING\r\n")
    assert b"550 5.1.1 no such user\r\n354 go ahead\r\n250 2.0.0 queued\r\n" in first_out
    assert first_out.endswith(b"252 2.0.0 maybe\r\n221 2.0.0 Bye\r\n")
    for pieces in splits(SESSION):
        events, out, _ = run(pieces)
        assert (events, out) == (first_events, first_out), pieces


def test_xforward_values_are_xtext_decoded() -> None:
    assert EXPECTED[1].decoded() == {"NAME": "host.test", "ADDR": "192.0.2.1", "HELO": "h+x"}  # type: ignore[union-attr]


def refused(wire: bytes, codec: SmtpServerCodec | None = None) -> list[str]:
    events, _, _ = run([wire], codec)
    return [str(e.reply) for e in events if isinstance(e, Refused)]


@pytest.mark.parametrize(("wire", "expected"), [
    (b"MAIL FROM:<a@b>\r\n", "503 5.5.1 Error: send HELO/EHLO first"),
    (b"EHLO c\r\nRCPT TO:<a@b>\r\n", "503 5.5.1 Error: need MAIL command"),
    (b"EHLO c\r\nDATA\r\n", "503 5.5.1 Error: need MAIL command"),
    (b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bad@b>\r\nDATA\r\n",
     "503 5.5.1 Error: need RCPT command"),
    (b"EHLO c\r\nMAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n", "503 5.5.1 Error: nested MAIL command"),
    (b"EHLO c\r\nMAIL FROM:<a@b> AUTH=<>\r\n", "555 5.5.4 Unsupported option: AUTH"),
    (b"EHLO c\r\nMAIL FROM:<a@b> SIZE=1001\r\n", "552 5.3.4 Message size exceeds fixed limit"),
    (b"EHLO c\r\nMAIL FROM:<a@b> SIZE=x\r\n", "501 5.5.4 Syntax: SIZE=number"),
    (b"EHLO c\r\nMAIL FROM:<a@b> BODY=BINARYMIME\r\n", "501 5.5.4 Unsupported BODY value"),
    (b"HELO c\r\nMAIL FROM:<a@b> SMTPUTF8\r\n", "555 5.5.4 Unsupported option: SMTPUTF8"),
    (b"EHLO c\r\nMAIL TO:<a@b>\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    (b"EHLO c\r\nMAIL FROM:<a@b\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    (b"EHLO c\r\nMAIL FROM:<a@b> X=\r\n", "501 5.5.4 Syntax: MAIL FROM:<address>"),
    (b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d> FOO=1\r\n", "555 5.5.4 Unsupported option: FOO"),
    (b"EHLO c\r\nXFORWARD PORT=25\r\n", "501 5.5.4 Bad XFORWARD attribute name: PORT"),
    (b"EHLO c\r\nXFORWARD\r\n", "501 5.5.4 Syntax: XFORWARD attribute=value..."),
    (b"EHLO c\r\nMAIL FROM:<a@b>\r\nXFORWARD ADDR=1.2.3.4\r\n",
     "503 5.5.1 Error: MAIL transaction in progress"),
    (b"HELO c\r\nXFORWARD ADDR=1.2.3.4\r\n", "502 5.5.1 Error: command not implemented"),
    (b"EHLO\r\n", "501 5.5.4 Syntax: EHLO hostname"),
    (b"EHLO c\r\nDATA x\r\n", "501 5.5.4 Syntax: DATA"),
    (b"RSET x\r\n", "501 5.5.4 Syntax: RSET"),
    (b"VRFY\r\n", "501 5.5.4 Syntax: VRFY address"),
    (b"EXPN list\r\n", "502 5.5.1 Error: command not implemented"),
    (b"BDAT 10 LAST\r\n", "502 5.5.1 Error: command not implemented"),
    (b"FOO\r\n", "500 5.5.2 Error: command not recognized"),
    (b"NOOP \x00\r\n", "500 5.5.2 Error: bad characters in command"),
    (b"NOOP a\rb\r\n", "500 5.5.2 Error: bad characters in command"),
])
def test_refusals(wire: bytes, expected: str) -> None:
    assert refused(wire) == [expected]


def test_paths_and_parameters() -> None:
    events, _, _ = run([b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO: <\"a b>\"@c> ORCPT=rfc822;x\r\n"
                        b"RSET\r\nmail from:a@b smtputf8\r\n"])
    assert events[1:] == [Mail(""), Rcpt('"a b>"@c', (("ORCPT", "rfc822;x"),)), Rset(),
                          Mail("a@b", (("smtputf8", None),))]
    assert events[2].line() == 'RCPT TO:<"a b>"@c> ORCPT=rfc822;x'  # type: ignore[union-attr]
    assert events[4].line(frozenset()) == "MAIL FROM:<a@b>"  # type: ignore[union-attr]


def test_bare_lf_ends_a_command_line() -> None:
    events, _, _ = run([b"EHLO c\nNOOP\n"])
    assert events == [Helo("c", True), Noop()]


@pytest.mark.parametrize("pieces", [[b"a" * 5000 + b"\r\nNOOP\r\n"],
                                    [b"a" * 2000, b"a" * 3000, b"\r\nNOOP\r\n"],
                                    [b"a" * 2047 + b"\r\nNOOP\r\n"]])
def test_overlong_line_is_refused_once_and_skipped(pieces: list[bytes]) -> None:
    events, out, codec = run(pieces)
    assert [type(e) for e in events] == [Refused, Noop]
    assert out.endswith(b"500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n")
    assert len(codec._buffer) == 0


def test_line_at_the_limit_is_accepted() -> None:
    name = b"a" * (2048 - len(b"EHLO \r\n"))
    events, _, _ = run([b"EHLO " + name + b"\r\n"])
    assert events == [Helo(name.decode(), True)]


def test_message_over_the_size_limit_is_drained_then_refused() -> None:
    wire = (b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + b"x" * 600 + b"\r\n"
            + b"y" * 600 + b"\r\n.\r\nNOOP\r\n")
    for pieces in ([wire], [wire[:700], wire[700:]]):
        events, out, _ = run(pieces)
        assert isinstance(events[-2], EndOfData) and events[-2].too_big
        assert sum(len(e.data) for e in events if isinstance(e, Content)) <= 1000
        assert b"552 5.3.4 too big\r\n250 2.0.0 Ok\r\n" in out


def test_transaction_ends_with_the_reply_to_the_dot() -> None:
    wire = (b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n.\r\n"
            b"RCPT TO:<c@d>\r\nMAIL FROM:<a@b>\r\n")
    assert refused(wire) == ["503 5.5.1 Error: need MAIL command"]


def test_starttls_discards_what_was_pipelined_after_it() -> None:
    codec = SmtpServerCodec()
    codec.send(GREETING)
    codec.receive_data(b"EHLO c\r\n")
    event = codec.next_event()
    codec.send(answer(event))  # type: ignore[arg-type]
    codec.receive_data(b"STARTTLS\r\nMAIL FROM:<injected@x>\r\n")
    assert codec.next_event() == StartTls()
    assert codec.send(Reply(220, "2.0.0", "Ready")) == b"220 2.0.0 Ready\r\n"
    assert codec.state is State.TLS and codec.next_event() is PAUSED
    codec.receive_data(b"RSET\r\nMAIL FROM:<later@x>\r\n")  # in the clear, before the handshake
    codec.tls_started()
    assert codec.next_event() is NEED_DATA
    codec.receive_data(b"MAIL FROM:<a@b>\r\n")
    event = codec.next_event()
    assert isinstance(event, Refused) and event.reply.code == 503  # EHLO again first


def greeted() -> SmtpServerCodec:
    """A codec past the greeting and EHLO (answered with every extension)."""
    codec = SmtpServerCodec()
    codec.send(GREETING)
    codec.receive_data(b"EHLO c\r\n")
    codec.send(answer(codec.next_event()))  # type: ignore[arg-type]
    return codec


def test_batch_ahead_is_the_pipelined_batch_as_it_will_be_parsed() -> None:
    codec = greeted()
    assert codec.batch_ahead() == []  # nothing pending
    codec.receive_data(b"XFORWARD ADDR=192.0.2.1\r\nXFORWARD NAME=x.test\r\nMAIL FROM:<a@b>\r\n"
                       b"RCPT TO:<c@d>\r\nRCPT TO:<e@f> NOTIFY=NEVER\r\nRCPT TO:<g@h> BOGUS=1\r\n"
                       b"RCPT TO:<i@j>\r\nDATA\r\nRCPT TO:<k")
    assert isinstance(codec.next_event(), Xforward)
    ahead = codec.batch_ahead()
    assert [type(e).__name__ for e in ahead] == ["Xforward", "Mail", "Rcpt", "Rcpt"]  # to BOGUS
    assert not codec.in_transaction
    for expected in ahead:  # each is what next_event parses, unconsumed before
        codec.send(Reply(250, "2.0.0", "Ok"))
        assert codec.next_event() == expected
    assert codec.batch_ahead() == []  # RCPT pending: nothing rides with it


@pytest.mark.parametrize(("wire", "pending"), [
    (b"MAIL FROM:<a@b>\r\nXFORWARD ADDR=192.0.2.1\r\nRCPT TO:<c@d>\r\n", Mail),  # XFORWARD in a transaction
    (b"XFORWARD ADDR=192.0.2.1\r\nRCPT TO:<c@d>\r\nMAIL FROM:<a@b>\r\n", Xforward),  # RCPT before MAIL
])
def test_batch_ahead_stops_where_the_sequence_would_be_refused(wire: bytes,
                                                                pending: type) -> None:
    codec = greeted()
    codec.receive_data(wire)
    assert isinstance(codec.next_event(), pending)
    assert codec.batch_ahead() == []


def test_starttls_not_offered_is_not_implemented() -> None:
    codec = SmtpServerCodec()
    assert refused(b"HELO c\r\nSTARTTLS\r\n", codec) == ["502 5.5.1 Error: command not implemented"]


def test_421_closes_and_unsolicited_421() -> None:
    codec = SmtpServerCodec()
    codec.send(GREETING)
    codec.receive_data(b"NOOP\r\nNOOP\r\n")
    codec.next_event()
    codec.send(Reply(421, "4.3.2", "bye"))
    assert codec.closed and codec.next_event() is NEED_DATA
    other = SmtpServerCodec()
    other.send(GREETING)
    assert other.idle
    assert other.send_unsolicited(Reply(421, "4.4.2", "timeout")) == b"421 4.4.2 timeout\r\n"
    assert other.closed
    with pytest.raises(ValueError):
        SmtpServerCodec().send_unsolicited(Reply(250, "2.0.0", "no"))


def test_refused_greeting_closes() -> None:
    codec = SmtpServerCodec()
    codec.send(Reply(421, "4.4.1", "next hop down"))
    assert codec.closed


def test_misuse_is_a_bug() -> None:
    codec = SmtpServerCodec()
    codec.send(GREETING)
    with pytest.raises(RuntimeError):
        codec.send(Reply(250, "2.0.0", "unasked"))
    codec.receive_data(b"NOOP\r\n")
    assert codec.next_event() == Noop()
    assert codec.next_event() is PAUSED  # answer first
    with pytest.raises(RuntimeError):
        codec.tls_started()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b" ", b":", b".", b"<", b">", b"=", b"\x00",
                                 b"EHLO c", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"RSET",
                                 b"XFORWARD ", b"STARTTLS", b"QUIT", b"NOOP", b"x" * 700]),
                max_size=30).map(b"".join), st.data())
def test_fuzz_never_raises_and_stays_bounded(wire: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=5)))
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True)]
    codec = SmtpServerCodec(max_size=1000)
    codec.send(GREETING)
    for piece in pieces:
        codec.receive_data(piece)
        while not codec.closed:
            event = codec.next_event()
            if event is NEED_DATA:
                break
            if event is PAUSED:
                assert codec.state is State.TLS
                codec.tls_started()
                continue
            if not isinstance(event, Content):
                codec.send(answer(event))
        assert len(codec._buffer) <= max(len(piece), codec.line_limit) + 5
