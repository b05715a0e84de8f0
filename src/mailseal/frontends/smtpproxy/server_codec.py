"""The SMTP server side as a codec without I/O (h11's shape): bytes in, events out,
reply values in, bytes out.

Feed the client's bytes with ``receive_data``; take events with ``next_event`` until it
returns ``NEED_DATA`` (read more) or ``PAUSED`` (answer first); answer each command
event with ``send(reply)``, which returns the bytes to write. ``Content`` events (the
message, streamed) take no answer; ``EndOfData`` does.

The codec holds the little state SMTP has and learns it from both directions, as h11
does: the EHLO reply it sends tells it which extensions were offered (so it can refuse
parameters nobody offered), a positive reply to MAIL opens the transaction, one to RCPT
counts a recipient, 354 switches to the message, 220 to STARTTLS hands the socket to
TLS. It parses one command at a time and waits for its answer before the next one:
with PIPELINING (RFC 2920) the client may send a batch, but each command's meaning
depends on the answers before it. What it refuses itself (syntax, sequence, size,
over-long lines, NUL bytes in commands) comes out as ``Refused`` with the reply to send.

Bounds: a command line longer than ``line_limit`` octets is answered 500 5.5.2 and
skipped without being buffered; message content is never buffered here beyond the
five octets that may hold a split end-of-data mark.
"""

from __future__ import annotations

import enum
from typing import Final

from mailseal.frontends.smtpproxy import replies
from mailseal.frontends.smtpproxy.dotstuff import Unstuffer
from mailseal.frontends.smtpproxy.events import (
    CommandSyntaxError,
    Content,
    Data,
    EndOfData,
    Event,
    Helo,
    Mail,
    Noop,
    Parameters,
    Quit,
    Rcpt,
    Refused,
    Rset,
    StartTls,
    Vrfy,
    Xforward,
    parse_envelope,
    parse_xforward,
)
from mailseal.frontends.smtpproxy.replies import Reply

#: Postfix's smtpd line_length_limit; RFC 5321 §4.5.3.1.4 asks for at least 512.
DEFAULT_LINE_LIMIT: Final = 2048
_NOT_IMPLEMENTED: Final = frozenset({"EXPN", "HELP", "TURN", "ETRN", "BDAT", "AUTH", "XCLIENT",
                                     "ATRN", "SEND", "SOML", "SAML"})


class Wait(enum.Enum):
    NEED_DATA = "NEED_DATA"  # read more from the client
    PAUSED = "PAUSED"  # answer the pending event (or finish STARTTLS) first


NEED_DATA: Final = Wait.NEED_DATA
PAUSED: Final = Wait.PAUSED


class State(enum.Enum):
    GREETING = "greeting"  # the server speaks first
    COMMAND = "command"
    DATA = "data"
    TLS = "tls"  # 220 to STARTTLS sent: the adapter does the handshake
    CLOSED = "closed"


class SmtpServerCodec:
    """One client connection's protocol state. Not thread-safe."""

    def __init__(self, *, max_size: int = 0, line_limit: int = DEFAULT_LINE_LIMIT) -> None:
        """``max_size``: the largest message accepted (SIZE, RFC 1870), 0 for none."""
        self.max_size = max_size
        self.line_limit = line_limit
        self.state = State.GREETING
        self.extensions: dict[str, str] = {}  # keyword → parameters, from our EHLO reply
        self.greeted = False
        self.in_transaction = False
        self.recipients = 0  # accepted in this transaction
        self._buffer = bytearray()
        # Message content as it came, while nothing else is buffered: handed to the
        # unstuffer without a copy into (and out of) ``_buffer``.
        self._raw: bytes | None = None
        self._pending: Event | None = None
        self._discarding = False  # skipping the rest of an over-long line
        self._data: Unstuffer | None = None
        self._size = 0
        self._too_big = False

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def idle(self) -> bool:
        """Between transactions, waiting for a command: a safe moment to close."""
        return self.state is State.COMMAND and not self.in_transaction and self._pending is None

    # -- input ------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.state in (State.CLOSED, State.TLS):
            # After 220 to STARTTLS, nothing sent before the handshake counts
            # (RFC 3207 §4.2, CVE-2011-0411).
            return
        if self.state is State.DATA and self._raw is None and not self._buffer:
            self._raw = data
            return
        if self._raw is not None:
            self._buffer += self._raw
            self._raw = None
        self._buffer += data

    def next_event(self) -> Event | Wait:
        if self._pending is not None or self.state in (State.GREETING, State.TLS):
            return PAUSED
        if self.state is State.DATA:
            return self._data_event()
        if self.state is State.CLOSED:
            return NEED_DATA
        line = self._take_line()
        if line is None:
            return NEED_DATA
        event = line if isinstance(line, Refused) else self._parse(line)
        self._pending = event
        return event

    def batch_ahead(self, limit: int = 101) -> list[Xforward | Mail | Rcpt]:
        """The commands the client pipelined (RFC 2920) behind the XFORWARD or MAIL
        waiting for its answer, parsed as ``next_event`` will parse them if each one
        before is accepted: XFORWARDs up to a MAIL, one MAIL, then RCPTs; up to the
        first line that is anything else, refused, or not complete yet. Nothing is
        consumed: a proxy can send them on in one write with the pending command."""
        pending = self._pending
        if not isinstance(pending, (Xforward, Mail)) or self._discarding \
                or self._raw is not None:
            return []
        transaction = isinstance(pending, Mail)  # as it will be once that is accepted
        buf, pos = self._buffer, 0
        found: list[Xforward | Mail | Rcpt] = []
        try:
            while len(found) < limit:
                end = buf.find(b"\n", pos)
                if end < 0:
                    break
                line = bytes(buf[pos:end]).removesuffix(b"\r")
                pos = end + 1
                if len(line) + 2 > self.line_limit:
                    break
                self.in_transaction = transaction
                event = self._parse(line)
                if (isinstance(event, Rcpt) and transaction) \
                        or (isinstance(event, Xforward) and not transaction):
                    found.append(event)
                elif isinstance(event, Mail) and not transaction:
                    found.append(event)
                    transaction = True
                else:
                    break
        finally:
            self.in_transaction = False  # the pending command is not answered yet
        return found

    def _take_line(self) -> bytes | Refused | None:
        buf = self._buffer
        end = buf.find(b"\n")
        if self._discarding:
            if end < 0:
                buf.clear()
                return None
            del buf[:end + 1]
            self._discarding = False
            end = buf.find(b"\n")
        if end < 0:
            if len(buf) > self.line_limit:
                buf.clear()
                self._discarding = True
                return Refused(replies.LINE_TOO_LONG, "(line too long)")
            return None
        line = bytes(buf[:end])
        del buf[:end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) + 2 > self.line_limit:
            return Refused(replies.LINE_TOO_LONG, "(line too long)")
        return line

    def _data_event(self) -> Event | Wait:
        reader = self._data
        assert reader is not None
        if not reader.done:
            if self._raw is not None:
                chunk, self._raw = self._raw, None
            else:
                chunk = bytes(self._buffer)
                self._buffer.clear()
            content, done = reader.feed(chunk)
            if done:
                self._buffer += reader.rest
            if content:
                self._size += len(content)
                if self.max_size and self._size > self.max_size:
                    self._too_big = True
                if not self._too_big:
                    return Content(content)
        if not reader.done:
            return NEED_DATA
        event = EndOfData(self._size, self._too_big, reader.dot_lines)
        self.state = State.COMMAND
        self._data = None
        self._pending = event
        return event

    # -- commands -----------------------------------------------------------------------

    def _parse(self, line: bytes) -> Event:
        if b"\x00" in line or b"\r" in line:
            return Refused(replies.BAD_CHARACTERS, "(bad characters)")
        text = line.decode("utf-8", "surrogateescape")
        verb, _, argument = text.strip(" ").partition(" ")
        verb = verb.upper()
        argument = argument.strip(" ")
        try:
            return self._command(verb, argument)
        except CommandSyntaxError:
            usage = {"MAIL": "MAIL FROM:<address>", "RCPT": "RCPT TO:<address>",
                     "XFORWARD": "XFORWARD attribute=value..."}.get(verb, verb)
            return Refused(replies.syntax(usage), verb)

    def _command(self, verb: str, argument: str) -> Event:
        if verb in ("EHLO", "HELO"):
            if not argument:
                return Refused(replies.syntax(f"{verb} hostname"), verb)
            return Helo(argument, verb == "EHLO")
        if verb == "MAIL":
            if not self.greeted:
                return Refused(replies.NEED_HELO, verb)
            if self.in_transaction:
                return Refused(replies.NESTED_MAIL, verb)
            address, parameters = parse_envelope(argument, "FROM:")
            return self._check(verb, parameters) or Mail(address, parameters)
        if verb == "RCPT":
            if not self.in_transaction:
                return Refused(replies.NEED_MAIL, verb)
            address, parameters = parse_envelope(argument, "TO:")
            return self._check(verb, parameters) or Rcpt(address, parameters)
        if verb == "DATA":
            if argument:
                return Refused(replies.syntax("DATA"), verb)
            if not self.in_transaction:
                return Refused(replies.NEED_MAIL, verb)
            if not self.recipients:
                return Refused(replies.NEED_RCPT, verb)
            return Data()
        if verb in ("RSET", "QUIT", "STARTTLS") and argument:
            return Refused(replies.syntax(verb), verb)
        if verb == "RSET":
            return Rset()
        if verb == "NOOP":
            return Noop()
        if verb == "QUIT":
            return Quit()
        if verb == "VRFY":
            return Vrfy(argument) if argument else Refused(replies.syntax("VRFY address"), verb)
        if verb == "STARTTLS":
            if "STARTTLS" not in self.extensions:
                return Refused(replies.NOT_IMPLEMENTED, verb)
            if self.in_transaction:
                return Refused(Reply(503, "5.5.1", "Error: MAIL transaction in progress"), verb)
            return StartTls()
        if verb == "XFORWARD":
            return self._xforward(argument)
        if verb in _NOT_IMPLEMENTED:
            return Refused(replies.NOT_IMPLEMENTED, verb)
        return Refused(replies.UNRECOGNIZED, verb[:20])

    def _xforward(self, argument: str) -> Event:
        offered = self.extensions.get("XFORWARD")
        if offered is None:
            return Refused(replies.NOT_IMPLEMENTED, "XFORWARD")
        if self.in_transaction:
            return Refused(Reply(503, "5.5.1", "Error: MAIL transaction in progress"), "XFORWARD")
        event = parse_xforward(argument)
        names = set(offered.upper().split())
        for name, _ in event.attributes:
            if name not in names:
                return Refused(Reply(501, "5.5.4", f"Bad XFORWARD attribute name: {name}"),
                               "XFORWARD")
        return event

    def _check(self, verb: str, parameters: Parameters) -> Refused | None:
        """RFC 1869 §6: refuse parameters of extensions we did not offer."""
        ext = self.extensions
        for key, value in parameters:
            k = key.upper()
            if verb == "MAIL" and k == "SIZE" and "SIZE" in ext:
                if value is None or not value.isdigit():
                    return Refused(replies.syntax("SIZE=number"), verb)
                if self.max_size and int(value) > self.max_size:
                    return Refused(Reply(552, "5.3.4", "Message size exceeds fixed limit"), verb)
            elif verb == "MAIL" and k == "BODY" and "8BITMIME" in ext:
                if (value or "").upper() not in ("7BIT", "8BITMIME"):
                    return Refused(Reply(501, "5.5.4", "Unsupported BODY value"), verb)
            elif verb == "MAIL" and k == "SMTPUTF8" and "SMTPUTF8" in ext:
                if value is not None:
                    return Refused(replies.syntax("SMTPUTF8"), verb)
            elif "DSN" in ext and (verb, k) in (("MAIL", "RET"), ("MAIL", "ENVID"),
                                                ("RCPT", "NOTIFY"), ("RCPT", "ORCPT")):
                if value is None:
                    return Refused(replies.syntax(f"{k}=value"), verb)
            else:
                return Refused(replies.unsupported(key), verb)
        return None

    # -- output -------------------------------------------------------------------------

    def send(self, reply: Reply) -> bytes:
        """The bytes of ``reply``, answering the greeting or the pending event; the
        state follows the answer."""
        if self.state is State.CLOSED:
            raise RuntimeError("the connection is closed")
        if self.state is State.GREETING:
            self.state = State.COMMAND if reply.code == 220 else State.CLOSED
            return replies.wire(reply)
        event, self._pending = self._pending, None
        if event is None:
            raise RuntimeError("no command is waiting for a reply")
        if reply.code == 421:  # RFC 5321 §3.8: the server closes
            self.state = State.CLOSED
        elif isinstance(event, Helo) and reply.code == 250:
            self.greeted = True
            self._reset()
            self.extensions = replies.ehlo_keywords(reply) if event.extended else {}
        elif isinstance(event, Mail) and reply.positive:
            self.in_transaction = True
            self.recipients = 0
        elif isinstance(event, Rcpt) and reply.positive:
            self.recipients += 1
        elif isinstance(event, Data) and reply.code == 354:
            self.state = State.DATA
            self._data = Unstuffer()
            self._size = 0
            self._too_big = False
        elif isinstance(event, EndOfData) or (isinstance(event, Rset) and reply.positive):
            self._reset()
        elif isinstance(event, Quit):
            self.state = State.CLOSED
        elif isinstance(event, StartTls) and reply.code == 220:
            # RFC 3207 §4.2 (and CVE-2011-0411): nothing the client sent before the
            # handshake may be read as a command after it.
            self._buffer.clear()
            self.state = State.TLS
        return replies.wire(reply)

    def send_unsolicited(self, reply: Reply) -> bytes:
        """A 421 the server sends on its own, then closes (RFC 5321 §3.8: shutting
        down, or the client was idle too long)."""
        if reply.code != 421:
            raise ValueError("only a 421 may be sent unasked")
        self.state = State.CLOSED
        return replies.wire(reply)

    def tls_started(self) -> None:
        """The handshake is done: the session starts over (RFC 3207 §4.2)."""
        if self.state is not State.TLS:
            raise RuntimeError("STARTTLS was not accepted")
        self.state = State.COMMAND
        self.greeted = False
        self.extensions = {}
        self._reset()

    def _reset(self) -> None:
        self.in_transaction = False
        self.recipients = 0
