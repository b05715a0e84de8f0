"""Import an OpenDKIM configuration (opendkim.conf, KeyTable, SigningTable,
InternalHosts) as mailseal TOML, so migrating is one command.

Understood settings: Socket, Mode, Domain/Selector/KeyFile (single-key setups),
KeyTable and SigningTable (plain files; ``refile:`` wildcard tables), InternalHosts,
Canonicalization, SignHeaders, OversignHeaders, MustBeSigned, MinimumKeyBits,
AuthservID, On-BadSignature / On-NoSignature / On-DNSError / On-InternalError /
On-KeyNotFound / On-SignatureError, MaximumSignaturesToVerify, Nameservers,
SignatureTTL, BodyLengths? (no: l= is a replay risk, never imported as on).
Anything else is reported as a comment at the top of the output, not silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mailseal.config.tomltext import toml_string

ACTIONS = {"accept": "accept", "reject": "reject", "tempfail": "tempfail",
           "discard": "discard", "quarantine": "quarantine"}
ON_KEYS = {"on-badsignature": "on_bad_signature", "on-nosignature": "on_no_signature",
           "on-dnserror": "on_dns_error", "on-internalerror": "on_internal_error",
           "on-keynotfound": "on_key_not_found", "on-signatureerror": "on_signing_failure"}
HANDLED = {"socket", "mode", "domain", "selector", "keyfile", "keytable", "signingtable",
           "internalhosts", "canonicalization", "signheaders", "oversignheaders",
           "mustbesigned", "minimumkeybits", "authservid", "maximumsignaturestoverify",
           "nameservers", "signaturettl", *ON_KEYS}


class ImportError_(ValueError):
    """The OpenDKIM configuration cannot be read; the text names the file and line."""


@dataclass
class Imported:
    toml: str
    notes: list[str] = field(default_factory=list)


def read_conf(path: Path) -> dict[str, str]:
    """opendkim.conf: ``Name value`` per line, ``#`` comments; names case-insensitive."""
    settings: dict[str, str] = {}
    for number, line in enumerate(_lines(path), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        name, _, value = text.partition(" ") if " " in text else text.partition("\t")
        if not value.strip():
            raise ImportError_(f"{path}:{number}: {name} has no value")
        settings[name.strip().lower()] = value.strip()
    return settings


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ImportError_(f"{path}: {exc.strerror}") from None


def _table(spec: str, base: Path) -> tuple[list[tuple[str, str]], bool]:
    """A data set ``[file:|refile:]PATH`` → (key, value) rows, and whether refile."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("file", "refile", "csl"):
        if kind == "csl":
            return [(item.strip(), "") for item in rest.split(",") if item.strip()], False
        path, refile = rest, kind == "refile"
    else:
        path, refile = spec, False
    p = Path(path) if Path(path).is_absolute() else base / path
    rows = []
    for line in _lines(p):
        text = line.split("#", 1)[0].strip()
        if text:
            key, _, value = text.partition(" ") if " " in text else text.partition("\t")
            rows.append((key.strip(), value.strip()))
    return rows, refile


def _address(socket_spec: str) -> str:
    """OpenDKIM Socket (inet:PORT@HOST, local:/path) → a mailseal listener address."""
    if socket_spec.startswith(("local:", "unix:")):
        return "unix:" + socket_spec.split(":", 1)[1]
    m = re.fullmatch(r"inet6?:(\d+)(?:@(.+))?", socket_spec)
    if m:
        host = m.group(2) or "127.0.0.1"
        host = "127.0.0.1" if host == "localhost" else host
        family = "inet6" if socket_spec.startswith("inet6") else "inet"
        return f"{family}:{'[' + host + ']' if family == 'inet6' else host}:{m.group(1)}"
    raise ImportError_(f"Socket {socket_spec!r} is not inet:PORT@HOST or local:/path")


def _names(value: str) -> str:
    return "[" + ", ".join(toml_string(n.strip().lower()) for n in value.split(",") if n.strip()) + "]"


def import_opendkim(conf_path: str | Path) -> Imported:
    path = Path(conf_path)
    base = path.parent
    s = read_conf(path)
    notes = [f"not imported: {name}" for name in s if name not in HANDLED]
    out: list[str] = [f"# Imported from {path} by `mailseal import-opendkim`."]
    out += [f"# {n}" for n in notes]
    out += ["", "[server]"]
    if "authservid" in s:
        out.append(f"authserv_id = {toml_string(s['authservid'])}")
    out += ["", "[[listeners]]", 'kind = "milter"',
            f"address = {toml_string(_address(s.get('socket', 'inet:8891@localhost')))}"]
    if "nameservers" in s:
        servers = [n.strip() for n in s["nameservers"].split(",") if n.strip()]
        out += ["", "[dns]", "nameservers = [" + ", ".join(toml_string(n) for n in servers) + "]"]
    keys: list[tuple[str, str, str, str]] = []  # name, domain, selector, file
    rules: list[tuple[str, list[str]]] = []
    if "keytable" in s:
        rows, _ = _table(s["keytable"], base)
        for name, value in rows:
            parts = value.split(":", 2)
            if len(parts) != 3:
                raise ImportError_(f"KeyTable entry {name!r}: expected domain:selector:keyfile")
            keys.append((name, parts[0], parts[1], parts[2]))
        if "signingtable" in s:
            table, refile = _table(s["signingtable"], base)
            for pattern, name in table:
                rules.append((_pattern(pattern, refile), [n for n in name.split(",") if n]))
    elif "keyfile" in s and "domain" in s and "selector" in s:
        for domain in (d.strip() for d in s["domain"].split(",") if d.strip()):
            keys.append((f"{domain}-{s['selector']}", domain, s["selector"], s["keyfile"]))
            rules.append((f"*@{domain}", [f"{domain}-{s['selector']}"]))
    for name, domain, selector, keyfile in keys:
        out += ["", "[[keys]]", f"name = {toml_string(name)}", f"domain = {toml_string(domain)}",
                f"selector = {toml_string(selector)}", f"file = {toml_string(keyfile)}"]
    out += ["", "[signing]"]
    if "internalhosts" in s:
        rows, _ = _table(s["internalhosts"], base)
        nets = [k for k, _ in rows if re.fullmatch(r"[0-9a-fA-F:.]+(/\d+)?", k.lstrip("!"))]
        skipped = [k for k, _ in rows if k not in nets]
        out.append("internal_hosts = [" + ", ".join(toml_string(n) for n in nets) + "]")
        if skipped:
            out.insert(1, f"# InternalHosts entries not imported (host names, negations): "
                          f"{', '.join(skipped)}")
    if "canonicalization" in s:
        out.append(f"canonicalization = {toml_string(s['canonicalization'])}")
    if "signheaders" in s:
        out.append(f"headers = {_names(s['signheaders'])}")
    if "oversignheaders" in s:
        out.append(f"oversign = {_names(s['oversignheaders'])}")
    if "signaturettl" in s and s["signaturettl"].isdigit() and int(s["signaturettl"]) > 0:
        out.append(f"expire_after = {int(s['signaturettl'])}")
    if rules:
        out.append("rules = [")
        out += [f"  {{ match = {toml_string(p)}, keys = [{', '.join(toml_string(k) for k in ks)}] }},"
                for p, ks in rules]
        out.append("]")
    out += ["", "[verify]"]
    for key, target in ON_KEYS.items():
        if key in s:
            action = ACTIONS.get(s[key].lower())
            if action is None:
                raise ImportError_(f"{path}: {key}: unknown action {s[key]!r}")
            out.append(f"{target} = {toml_string(action)}")
    if "minimumkeybits" in s:
        out.append(f"minimum_key_bits = {int(s['minimumkeybits'])}")
    if "maximumsignaturestoverify" in s:
        out.append(f"max_signatures = {int(s['maximumsignaturestoverify'])}")
    if "mustbesigned" in s:
        out.append(f"must_be_signed = {_names(s['mustbesigned'])}")
    mode = s.get("mode", "sv")
    if "s" not in mode:
        out.insert(1, "# Mode was verify-only: no signing rules imported as active.")
    return Imported("\n".join(out) + "\n", notes)


def _pattern(pattern: str, refile: bool) -> str:
    """A SigningTable key → a mailseal rule pattern. refile wildcards (``*@example.com``,
    ``*.example.com``) map one to one; a plain table key is an address or a domain."""
    p = pattern.lower()
    if refile or "*" in p:
        return p
    return p if "@" in p else f"*@{p}"
