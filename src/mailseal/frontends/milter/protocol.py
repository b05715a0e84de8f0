"""Wire constants of the Sendmail milter protocol, version 6, and its one error type.

Names follow libmilter's ``mfdef.h`` and ``mfapi.h`` (``SMFIC_*`` commands from the
MTA, ``SMFIR_*`` replies from the filter, ``SMFIF_*`` actions, ``SMFIP_*`` protocol
bits, ``SMFIM_*`` macro stages), so the code reads against those headers line by line.

Framing (``MILTER_LEN_BYTES``): every packet is a 4-byte big-endian length, then one
command byte, then ``length - 1`` bytes of data. Integers inside data are 32-bit
big-endian, the connect port is 16-bit big-endian, strings are NUL-terminated.
"""

from __future__ import annotations

import enum
from typing import Final

#: The protocol version this codec speaks (``SMFI_PROT_VERSION``).
PROTOCOL_VERSION: Final = 6
#: libmilter refuses an MTA older than this (``SMFI_PROT_VERSION_MIN`` in engine.c).
PROTOCOL_VERSION_MIN: Final = 2

#: Data sizes an MTA may announce with ``SMFIP_MDS_*`` (libmilter.h ``MILTER_MDS_*``);
#: without either bit, data is at most 64 KiB - 1 (``MILTER_MAX_DATA_SIZE``).
MDS_64K: Final = 64 * 1024 - 1
MDS_256K: Final = 256 * 1024 - 1
MDS_1M: Final = 1024 * 1024 - 1

#: Default limit on one packet's length field (command byte + data): the largest
#: negotiable data size (``SMFIP_MDS_1M``) plus the command byte, plus slack.
DEFAULT_MAX_PACKET: Final = MDS_1M + 1 + 4096


class MilterProtocolError(ValueError):
    """The MTA sent bytes that are not the milter protocol: a malformed, oversized or
    out-of-place packet. The connection cannot be trusted after this; close it."""


class MilterNegotiationError(MilterProtocolError):
    """The MTA's option negotiation cannot satisfy what the filter needs."""


class SMFIC(enum.IntEnum):
    """Commands from the MTA to the filter (mfdef.h ``SMFIC_*``)."""

    ABORT = ord("A")  # abort the current message; no reply
    BODY = ord("B")  # body chunk
    CONNECT = ord("C")  # connection information
    MACRO = ord("D")  # define macros for the next command; no reply
    BODYEOB = ord("E")  # end of body
    HELO = ord("H")  # HELO/EHLO
    QUIT_NC = ord("K")  # quit, a new connection follows on this socket; no reply
    HEADER = ord("L")  # one header field
    MAIL = ord("M")  # MAIL FROM
    EOH = ord("N")  # end of headers
    OPTNEG = ord("O")  # option negotiation
    QUIT = ord("Q")  # quit; no reply
    RCPT = ord("R")  # RCPT TO
    DATA = ord("T")  # DATA
    UNKNOWN = ord("U")  # an SMTP command the MTA does not know


class SMFIR(enum.IntEnum):
    """Replies from the filter to the MTA (mfdef.h ``SMFIR_*``); those this codec
    sends, plus the rest for reference."""

    ADDRCPT = ord("+")
    DELRCPT = ord("-")
    ADDRCPT_PAR = ord("2")
    SHUTDOWN = ord("4")
    ACCEPT = ord("a")
    REPLBODY = ord("b")
    CONTINUE = ord("c")
    DISCARD = ord("d")
    CHGFROM = ord("e")
    CONN_FAIL = ord("f")
    ADDHEADER = ord("h")
    INSHEADER = ord("i")
    SETSYMLIST = ord("l")
    CHGHEADER = ord("m")
    PROGRESS = ord("p")
    QUARANTINE = ord("q")
    REJECT = ord("r")
    SKIP = ord("s")
    TEMPFAIL = ord("t")
    REPLYCODE = ord("y")
    OPTNEG = ord("O")  # the negotiation reply reuses SMFIC_OPTNEG


class SMFIF(enum.IntFlag):
    """Actions the filter may take at end of message (mfapi.h ``SMFIF_*``)."""

    ADDHDRS = 0x001  # add headers (SMFIR_ADDHEADER, SMFIR_INSHEADER)
    CHGBODY = 0x002  # replace the body
    ADDRCPT = 0x004  # add recipients
    DELRCPT = 0x008  # delete recipients
    CHGHDRS = 0x010  # change or delete headers (SMFIR_CHGHEADER)
    QUARANTINE = 0x020  # quarantine the message
    CHGFROM = 0x040  # change the envelope sender
    ADDRCPT_PAR = 0x080  # add recipients with ESMTP arguments
    SETSYMLIST = 0x100  # choose the macros sent per stage (in the negotiation reply)


class SMFIP(enum.IntFlag):
    """Protocol bits (mfdef.h ``SMFIP_*``): steps the MTA should not send, steps the
    filter will not answer, and extensions."""

    NOCONNECT = 0x00000001
    NOHELO = 0x00000002
    NOMAIL = 0x00000004
    NORCPT = 0x00000008
    NOBODY = 0x00000010
    NOHDRS = 0x00000020
    NOEOH = 0x00000040
    NR_HDR = 0x00000080  # no reply for each header (SMFIP_NOHREPL)
    NOUNKNOWN = 0x00000100
    NODATA = 0x00000200
    SKIP = 0x00000400  # the MTA understands SMFIR_SKIP
    RCPT_REJ = 0x00000800  # the MTA also sends rejected recipients
    NR_CONN = 0x00001000
    NR_HELO = 0x00002000
    NR_MAIL = 0x00004000
    NR_RCPT = 0x00008000
    NR_DATA = 0x00010000
    NR_UNKN = 0x00020000
    NR_EOH = 0x00040000
    NR_BODY = 0x00080000
    HDR_LEADSPC = 0x00100000  # header values keep the space after the colon
    MDS_256K = 0x10000000  # packet data may be up to 256 KiB - 1
    MDS_1M = 0x20000000  # packet data may be up to 1 MiB - 1


class SMFIM(enum.IntEnum):
    """Macro stages for the macro lists in the negotiation reply (mfapi.h ``SMFIM_*``)."""

    CONNECT = 0
    HELO = 1
    ENVFROM = 2
    ENVRCPT = 3
    DATA = 4
    EOM = 5  # end of message; numbered before EOH
    EOH = 6


# Masks are plain ints: ``~`` on an IntFlag complements within its members only.
#: Every action bit defined by version 6.
ALL_ACTIONS: Final = 0x1FF
#: Steps the filter can ask the MTA not to send.
NO_STEPS: Final = int(SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL | SMFIP.NORCPT
                      | SMFIP.NOBODY | SMFIP.NOHDRS | SMFIP.NOEOH | SMFIP.NOUNKNOWN
                      | SMFIP.NODATA)
#: Steps the filter can promise not to answer.
NO_REPLY: Final = int(SMFIP.NR_HDR | SMFIP.NR_CONN | SMFIP.NR_HELO | SMFIP.NR_MAIL
                      | SMFIP.NR_RCPT | SMFIP.NR_DATA | SMFIP.NR_UNKN | SMFIP.NR_EOH
                      | SMFIP.NR_BODY)
#: Extensions the filter may accept when offered.
OPTIONS: Final = int(SMFIP.SKIP | SMFIP.RCPT_REJ | SMFIP.HDR_LEADSPC | SMFIP.MDS_256K
                     | SMFIP.MDS_1M)
#: An MTA that offers 0 means the version 1 sets (``SMFI_V1_ACTS``, ``SMFI_V1_PROT``).
V1_ACTIONS: Final = 0x0F
V1_PROTOCOL: Final = 0x3F

_U32_MAX: Final = 0xFFFFFFFF


def u32(value: int) -> bytes:
    """A 32-bit big-endian integer, as every milter length, index and flag word."""
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"{value} does not fit in 32 bits")
    return value.to_bytes(4, "big")


def packet(command: int, data: bytes = b"") -> bytes:
    """One framed packet: length (command byte + data), command byte, data."""
    return u32(1 + len(data)) + bytes((command,)) + data


def flag_names(flags: type[enum.IntFlag], value: int) -> str:
    """``"ADDHDRS|CHGHDRS"`` for log and error text; unknown bits in hex."""
    names = [member.name or "" for member in flags if value & member]
    unknown = value & ~sum(int(member) for member in flags)
    if unknown:
        names.append(hex(unknown))
    return "|".join(names) or "0"
