"""The Postfix policy delegation protocol (SMTPD_POLICY_README), sans I/O.

A request is ``name=value`` lines ending in LF, closed by an empty line; the reply is
``action=WHAT`` and an empty line. One connection carries many requests. Postfix
sends what it has (``request=smtpd_access_policy``, ``protocol_state``,
``client_address``, ``helo_name``, ``sender``, ``recipient``, ``sasl_username``,
``instance`` …); unknown names are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REQUEST = 64 * 1024  # bytes of one request (Postfix's are a few hundred)
MAX_ATTRIBUTES = 100


class PolicyProtocolError(ValueError):
    """The client's bytes are not a policy request; the connection should close."""


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    attributes: dict[str, str]

    def get(self, name: str) -> str:
        return self.attributes.get(name, "")


@dataclass(frozen=True, slots=True)
class PolicyReply:
    """``action=`` text: an access(5) action such as ``DUNNO``, ``PREPEND header``,
    ``DEFER_IF_PERMIT text``, ``REJECT text`` or ``550 5.7.23 text``."""

    action: str

    def to_bytes(self) -> bytes:
        text = self.action.replace("\r", " ").replace("\n", " ")
        return f"action={text}\n\n".encode("utf-8", "replace")


class PolicyCodec:
    """Feed bytes with ``receive_data``; take complete requests with ``next_request``."""

    def __init__(self) -> None:
        self._buffer = b""

    def receive_data(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_REQUEST and b"\n\n" not in self._buffer[:MAX_REQUEST + 2]:
            raise PolicyProtocolError(f"request larger than {MAX_REQUEST} bytes")

    def next_request(self) -> PolicyRequest | None:
        # A request may end "\n\n" or, from some clients, "\r\n\r\n".
        data = self._buffer.replace(b"\r\n", b"\n") if b"\r" in self._buffer else self._buffer
        end = data.find(b"\n\n")
        if end < 0:
            if data == b"\n":  # a stray empty line between requests
                self._buffer = b""
            return None
        block, self._buffer = data[:end], data[end + 2 :]
        attributes: dict[str, str] = {}
        for line in block.split(b"\n"):
            if not line:
                continue
            name, sep, value = line.partition(b"=")
            if not sep or not name:
                raise PolicyProtocolError(f"not a name=value line: {line[:60]!r}")
            attributes[name.decode("ascii", "replace").strip().lower()] = value.decode(
                "utf-8", "replace")
            if len(attributes) > MAX_ATTRIBUTES:
                raise PolicyProtocolError(f"more than {MAX_ATTRIBUTES} attributes")
        return PolicyRequest(attributes)
