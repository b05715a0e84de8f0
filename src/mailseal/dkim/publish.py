"""Key records to publish (RFC 6376 §3.6.1, RFC 8463 §4.2), as text for DNS.

TXT character strings hold at most 255 octets (RFC 1035 §3.3.14), so a 2048-bit
RSA record is split into several strings, which resolvers join (RFC 6376 §3.6.2.2).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from mailseal.dkim.keys import SigningKey

MAX_STRING = 255


def record_value(key: SigningKey, *, testing: bool = False, hashes: Sequence[str] = (),
                 services: Sequence[str] = (), revoked: bool = False) -> str:
    """The TXT value, e.g. ``v=DKIM1; k=rsa; p=MIIB…``."""
    tags = ["v=DKIM1", f"k={key.key_type}"]
    if hashes:
        tags.append("h=" + ":".join(hashes))
    if services:
        tags.append("s=" + ":".join(services))
    if testing:
        tags.append("t=y")
    p = "" if revoked else base64.b64encode(key.public_data()).decode("ascii")
    tags.append("p=" + p)
    return "; ".join(tags)


def split_strings(value: str, size: int = MAX_STRING) -> list[str]:
    """Cut a TXT value into character strings of at most ``size`` octets."""
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


def bind_record(name: str, value: str, ttl: int | None = None) -> str:
    """A BIND zone-file line, one quoted string per piece, inside parentheses."""
    owner = name if name.endswith(".") else name + "."
    pieces = _pieces(value)
    ttl_text = f"{ttl} " if ttl is not None else ""
    if len(pieces) == 1:
        return f'{owner} {ttl_text}IN TXT "{pieces[0]}"'
    body = "\n\t".join(f'"{p}"' for p in pieces)
    return f"{owner} {ttl_text}IN TXT ( {body} )"


def _pieces(value: str) -> list[str]:
    """Break after the tags before p= for readability, then p= in ≤255-octet strings."""
    head, sep, p = value.partition("p=")
    pieces = [head] if head else []
    pieces += split_strings(sep + p)
    return pieces


def key_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain.rstrip('.')}"


def web_form_host(selector: str) -> str:
    """The host field a DNS provider's web form wants: relative to the zone."""
    return f"{selector}._domainkey"


def json_record(name: str, value: str, ttl: int) -> dict[str, object]:
    """The record as data, for DNS providers' APIs and automation."""
    return {"name": name.rstrip("."), "type": "TXT", "ttl": ttl, "value": value,
            "strings": split_strings(value)}


def tinydns_record(name: str, value: str, ttl: int) -> str:
    """A tinydns-data line, ``'fqdn:text:ttl``.

    tinydns-data reads ``\\NNN`` as an octal byte in the text and cuts it into
    character strings itself; ``:`` separates fields and ``\\`` escapes, so both are
    written in octal, as is every byte outside printable ASCII.
    """
    text = "".join(c if " " <= c <= "~" and c not in ":\\" else
                   "".join(f"\\{b:03o}" for b in c.encode("utf-8")) for c in value)
    return f"'{name.rstrip('.')}:{text}:{ttl}"
