"""New keys on disk: ``SELECTOR.private`` (PEM, 0600, never overwritten) and
``SELECTOR.txt`` (the BIND line to publish), as opendkim-genkey writes them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailseal.dkim.keys import KeyFileError, SigningKey
from mailseal.dkim.publish import bind_record, key_name, record_value
from mailseal.dkim.signature import valid_domain
from mailseal.keystore import write_private_key, write_text_atomic

PRIVATE_SUFFIX = ".private"
RECORD_SUFFIX = ".txt"


@dataclass(frozen=True, slots=True)
class NewKey:
    key: SigningKey
    domain: str
    selector: str
    private_path: Path
    record_path: Path
    value: str  # the TXT value, one unbroken string

    @property
    def name(self) -> str:
        return key_name(self.selector, self.domain)

    @property
    def bind(self) -> str:
        return bind_record(self.name, self.value)


def check_names(domain: str, selector: str) -> None:
    """RFC 6376 §3.1: a selector is one or more DNS labels, like the domain."""
    if not valid_domain(domain):
        raise KeyFileError(f"invalid domain {domain!r}")
    if not valid_domain(selector):
        raise KeyFileError(f"invalid selector {selector!r}: use letters, digits and '-', "
                           "e.g. 2026-11")


def key_paths(directory: str | Path, selector: str) -> tuple[Path, Path]:
    folder = Path(directory)
    return folder / f"{selector}{PRIVATE_SUFFIX}", folder / f"{selector}{RECORD_SUFFIX}"


def default_selector(now: datetime, taken: Callable[[str], bool]) -> str:
    """``YYYY-MM`` of ``now``; ``YYYY-MM-2``, ``-3`` … when that one is taken."""
    base = now.strftime("%Y-%m")
    for candidate in itertools.chain([base], (f"{base}-{n}" for n in itertools.count(2))):
        if not taken(candidate):
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def taken_in(directory: str | Path) -> Callable[[str], bool]:
    """A ``taken`` test for default_selector: a key or record file of that name exists."""
    def taken(selector: str) -> bool:
        return any(p.exists() for p in key_paths(directory, selector))
    return taken


def create_key(directory: str | Path, domain: str, selector: str, key: SigningKey, *,
               testing: bool = False, hashes: Sequence[str] = (),
               services: Sequence[str] = ()) -> NewKey:
    """Write the key (atomically, 0600) and its record file; refuse to replace either."""
    domain = domain.lower().rstrip(".")
    check_names(domain, selector)
    private_path, record_path = key_paths(directory, selector)
    for path in (private_path, record_path):
        if path.exists():
            raise KeyFileError(f"{path}: exists; refusing to overwrite (choose another "
                               "selector with -s, or another --directory)")
    value = record_value(key, testing=testing, hashes=hashes, services=services)
    new = NewKey(key, domain, selector, private_path, record_path, value)
    write_private_key(private_path, key)
    write_text_atomic(record_path, new.bind + "\n")
    return new
