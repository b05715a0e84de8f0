"""What goes into the pipeline (an envelope) and what comes out (a decision)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Action(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    TEMPFAIL = "tempfail"
    QUARANTINE = "quarantine"
    DISCARD = "discard"


class Role(enum.StrEnum):
    SIGN = "sign"  # our user or host, From domain with a signing rule
    TRUSTED = "trusted"  # our user or host, nothing to sign: passed through untouched
    VERIFY = "verify"  # everything else


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply for reject/tempfail (RFC 5321 §4.2, RFC 3463 enhanced code)."""

    code: int
    enhanced: str
    text: str

    @classmethod
    def parse(cls, value: str) -> Reply:
        code, _, rest = value.partition(" ")
        enhanced = ""
        if rest[:1] in "245" and rest[1:2] == ".":
            enhanced, _, rest = rest.partition(" ")
        return cls(int(code), enhanced, rest)

    def __str__(self) -> str:
        return " ".join(p for p in (str(self.code), self.enhanced, self.text) if p)


DEFAULT_REPLIES = {
    Action.REJECT: Reply(550, "5.7.1", "message rejected by DKIM policy"),
    Action.TEMPFAIL: Reply(451, "4.7.1", "message authentication temporarily unavailable, try later"),
}


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the MTA tells us about one SMTP transaction."""

    client_address: str | None = None  # "{client_addr}"
    client_name: str | None = None  # "{client_name}" / the connect hostname
    helo: str | None = None
    mail_from: str | None = None  # without angle brackets; "" for the null sender
    recipients: tuple[str, ...] = ()
    auth_user: str | None = None  # "{auth_authen}"
    daemon_name: str | None = None  # "{daemon_name}"
    queue_id: str | None = None  # "i"
    mta_name: str | None = None  # "j"
    macros: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HeaderEdit:
    """Insert ``name: value`` at the top (remove=False), or delete the ``index``-th
    (1-based, counted among fields of that name) field called ``name``."""

    name: str
    value: bytes = b""
    remove: bool = False
    index: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    role: Role
    reply: Reply | None = None
    edits: tuple[HeaderEdit, ...] = ()  # removals first, then insertions in order
    trail: tuple[str, ...] = ()  # why, step by step, for logs and `mailseal explain`
    summary: dict[str, object] = field(default_factory=dict)  # for the one log line

    def explain(self) -> str:
        return "; ".join(self.trail)
