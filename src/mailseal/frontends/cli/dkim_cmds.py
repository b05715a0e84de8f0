"""``mailseal sign`` and ``mailseal verify``: dkimsign/dkimverify and
dkimproxy-sign/dkimproxy-verify replacements."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from mailseal.api import verify_file
from mailseal.authres.format import format_field
from mailseal.authres.model import AuthenticationResults
from mailseal.dkim.keys import KeyFileError, load_key
from mailseal.dkim.report import best, dkim_method_results
from mailseal.dkim.sign import Signer, SignError, SignSpec
from mailseal.dkim.verify import DkimResult, VerifyPolicy
from mailseal.dns.types import Resolver
from mailseal.frontends.cli.config_cmds import cli_resolver
from mailseal.frontends.cli.sources import count_sources, iter_sources
from mailseal.message import MessageError, iter_chunks, split_message
from mailseal.results import Result


class ExitStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def register(group: click.Group) -> None:
    group.add_command(sign_cmd)
    group.add_command(verify_cmd)


def _split_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(n.strip() for n in value.replace(",", ":").split(":") if n.strip())


@click.command("sign")
@click.option("-d", "--domain", required=True, help="Signing domain (d=).")
@click.option("-s", "--selector", required=True, help="Selector (s=).")
@click.option("-k", "--key", "keyfile", required=True, type=click.Path(dir_okay=False),
              help="Private key file (PEM, mode 0600).")
@click.option("-a", "--algorithm", default="", help="rsa-sha256 (RSA key) or ed25519-sha256.")
@click.option("-c", "--canonicalization", default="relaxed/simple", show_default=True,
              help="header/body: simple or relaxed.")
@click.option("--headers", help="Fields to sign, colon- or comma-separated "
              "(default: RFC 6376 §5.4.1 list, those present).")
@click.option("--oversign", default="from", show_default=True,
              help="Fields signed once more than present (From always).")
@click.option("-i", "--identity", help="Agent or user identifier (i=), e.g. @example.com.")
@click.option("--expire", type=click.IntRange(min=1), help="Signature lifetime in seconds (x=).")
@click.option("--body-length", is_flag=True, help="Add l= (not recommended).")
@click.option("--copy-headers", is_flag=True, help="Add z= (diagnostic copy of the fields).")
@click.option("--no-timestamp", is_flag=True, help="Leave out t=.")
@click.option("--legacy-sha1", is_flag=True, help="Allow rsa-sha1 (RFC 8301 forbids it).")
@click.option("--time", "now", type=click.IntRange(min=0),
              help="Sign as at this Unix time (tests).")
@click.argument("message", required=False, type=click.File("rb"), default="-")
def sign_cmd(domain: str, selector: str, keyfile: str, algorithm: str, canonicalization: str,
             headers: str | None, oversign: str, identity: str | None, expire: int | None,
             body_length: bool, copy_headers: bool, no_timestamp: bool, legacy_sha1: bool,
             now: int | None, message: Any) -> None:
    """Sign MESSAGE (default stdin) and write it, signed, to stdout.

    The input's line endings are kept: a message with LF line endings gets a
    signature with LF line endings.

    \b
    Example:
      mailseal sign -d example.com -s 2026-11 -k /etc/mailseal/keys/2026-11.private \\
          msg.eml > signed.eml
    """
    try:
        key = load_key(keyfile)
        spec = SignSpec(domain=domain, selector=selector, key=key, algorithm=algorithm,
                        canonicalization=canonicalization, headers=_split_list(headers),
                        oversign=_split_list(oversign) or (), identity=identity,
                        timestamp=not no_timestamp, expire_after=expire,
                        body_length=body_length, copy_headers=copy_headers,
                        allow_sha1=legacy_sha1)
        data = message.read()
        fields, body = split_message(data)
        signer = Signer(fields, [spec])
        for chunk in iter_chunks(body):
            signer.feed(chunk)
        signature = signer.finish(int(time.time()) if now is None else now)[0]
    except (KeyFileError, SignError, MessageError) as exc:
        raise click.ClickException(str(exc)) from None
    # Keep the input's convention, judged by its first line ending.
    first = data.find(b"\n")
    if first >= 0 and data[first - 1 : first] != b"\r":
        signature = signature.replace(b"\r\n", b"\n")
    out = sys.stdout.buffer
    out.write(signature)
    out.write(data)
    out.flush()


@click.command("verify")
@click.option("--dns", "dns_server", metavar="HOST:PORT", help="Ask this nameserver.")
@click.option("--dns-file", type=click.Path(exists=True, dir_okay=False),
              help="Answer key queries from this BIND zone file (offline).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0,
              show_default=True, help="DNS timeout in seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message.")
@click.option("--authserv-id", default=None, help="authserv-id for Authentication-Results "
              "(default: this host's name).")
@click.option("--min-key-bits", type=int, default=1024, show_default=True)
@click.option("--allow-sha1", is_flag=True, help="Accept rsa-sha1 (RFC 8301 forbids it).")
@click.option("--max-signatures", type=click.IntRange(1, 100), default=8, show_default=True)
@click.option("--time", "now", type=click.IntRange(min=0),
              help="Verify as at this Unix time.")
@click.option("-q", "--quiet", is_flag=True, help="Only the exit status.")
@click.argument("paths", nargs=-1, type=click.Path())
def verify_cmd(dns_server: str | None, dns_file: str | None, timeout: float, as_json: bool,
               authserv_id: str | None, min_key_bits: int, allow_sha1: bool,
               max_signatures: int, now: int | None, quiet: bool, paths: tuple[str, ...]) -> None:
    """Verify the DKIM signatures of messages in PATHS (files, mbox files, Maildir
    folders; stdin when none).

    Prints one line per signature and the Authentication-Results field. Exit status:
    0 every message has a passing signature; 1 a message has none or fails;
    2 a temporary error (DNS) or a usage error.

    \b
    Example:
      mailseal verify --dns 127.0.0.1:5353 ~/Maildir
    """
    resolver = _resolver(dns_server, dns_file, timeout)
    policy = VerifyPolicy(min_key_bits=min_key_bits, allow_sha1=allow_sha1,
                          max_signatures=max_signatures)
    authserv = authserv_id or socket.getfqdn()
    status = asyncio.run(_verify_all(paths, resolver, policy, now, authserv, as_json, quiet))
    raise ExitStatus(status)


def _resolver(server: str | None, zone: str | None, timeout: float) -> Resolver:
    if server and zone:
        raise click.UsageError("--dns and --dns-file exclude each other")
    if zone:
        from mailseal.dns.static import StaticResolver

        try:
            return StaticResolver.from_zone_file(zone)
        except Exception as exc:  # dnspython raises many kinds for a bad zone
            raise click.ClickException(f"{zone}: cannot read zone file: {exc}") from None
    return cli_resolver(server, timeout)


async def _verify_all(paths: tuple[str, ...], resolver: Resolver, policy: VerifyPolicy,
                      now: int | None, authserv: str, as_json: bool, quiet: bool) -> int:
    status = 0
    total = count_sources(paths) if sys.stderr.isatty() and not quiet else None
    progress = _Progress(total) if total and total > 1 else None
    try:
        for source in iter_sources(paths):
            with source.open() as stream:
                results = await verify_file(stream, dns=resolver, policy=policy, now=now)
            status = max(status, _status(results))
            if not quiet:
                _report(source.label, results, authserv, as_json)
            if progress is not None:
                progress.advance()
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if progress is not None:
            progress.stop()
    return status


def _status(results: Sequence[DkimResult]) -> int:
    word = best(results)
    if word is Result.PASS:
        return 0
    if word is Result.TEMPERROR:
        return 2
    return 1


def _report(label: str, results: Sequence[DkimResult], authserv: str, as_json: bool) -> None:
    ar = AuthenticationResults(authserv, None, tuple(dkim_method_results(results)))
    header = format_field(ar).decode("utf-8", "replace")
    if as_json:
        click.echo(json.dumps({
            "message": label,
            "result": str(best(results)),
            "signatures": [_as_dict(r) for r in results],
            "authentication_results": header.rstrip("\r\n"),
        }))
        return
    click.echo(f"{label}:")
    if not results:
        click.echo("  none     no DKIM signature")
    for r in results:
        where = f"d={r.domain} s={r.selector} a={r.algorithm}"
        extra = f", {r.key_bits}-bit key" if r.key_bits else ""
        extra += ", testing" if r.testing else ""
        click.echo(f"  {r.result.value:<10}{where} ({r.reason_text}{extra})")
    click.echo("  " + header.replace("\r\n", "\n  ").rstrip())


def _as_dict(r: DkimResult) -> dict[str, Any]:
    return {"result": r.result.value, "reason": r.reason.name.lower(), "detail": r.detail,
            "domain": r.domain, "selector": r.selector, "algorithm": r.algorithm,
            "identity": r.identity, "testing": r.testing, "key_bits": r.key_bits,
            "unsigned_bytes": r.unsigned_bytes}


class _Progress:
    """A transient progress bar on stderr for batches (rich)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._p = Progress(console=Console(stderr=True), transient=True)
        self._task = self._p.add_task("verifying", total=total)
        self._p.start()

    def advance(self) -> None:
        self._p.advance(self._task)

    def stop(self) -> None:
        self._p.stop()
