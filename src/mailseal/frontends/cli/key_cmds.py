"""``mailseal genkey``, ``dns-record``, ``testkey``, ``rotate`` and ``keys list``: the
key lifecycle (docs/keys.md). The logic lives in ``mailseal.keys``; this is the shell."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from mailseal.config.load import Config, ConfigError, load_settings
from mailseal.dkim.keys import KeyFileError, SigningKey, load_key
from mailseal.dkim.publish import (
    bind_record,
    json_record,
    key_name,
    record_value,
    tinydns_record,
    web_form_host,
)
from mailseal.dns.resolver import DnsResolver
from mailseal.dns.types import Answer
from mailseal.frontends.cli.config_cmds import cli_resolver, config_option, load_or_fail
from mailseal.frontends.cli.dkim_cmds import ExitStatus
from mailseal.keys import rotation
from mailseal.keys.check import GOOD_RSA_BITS, MIN_RSA_BITS, Report, evaluate
from mailseal.keys.configedit import ConfigEditError
from mailseal.keys.generate import check_names, create_key, default_selector, taken_in
from mailseal.keys.listing import format_table, inspect_keys
from mailseal.keystore import generate_key

DEFAULT_TTL = 3600
MAX_VERIFIED_BITS = 4096  # RFC 8301 §3.2: verifiers MUST handle 1024 to 4096 bits


def register(group: click.Group) -> None:
    for command in (genkey_cmd, dns_record_cmd, testkey_cmd, rotate_cmd, keys_group):
        group.add_command(command)


def _now() -> datetime:
    return datetime.now(UTC)


def _warn(text: str) -> None:
    click.echo(f"mailseal: warning: {text}", err=True)


def _load_key(path: str) -> SigningKey:
    try:
        return load_key(path)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None


def _echo_publish(domain: str, selector: str, value: str, record_file: Path | None) -> None:
    """The record as a BIND line and as the fields of a provider's web form."""
    name = key_name(selector, domain)
    where = f" (also in {record_file})" if record_file else ""
    click.echo(f"\nPublish this TXT record{where}:\n\n{bind_record(name, value)}\n")
    click.echo("In a DNS provider's web form:")
    click.echo(f"  host:  {web_form_host(selector)}   (some forms want the full name {name})")
    click.echo("  type:  TXT")
    click.echo(f"  value: {value}")


# -- genkey ---------------------------------------------------------------------------


@click.command("genkey")
@click.option("-d", "--domain", required=True, help="Signing domain (d=).")
@click.option("-s", "--selector", help="Selector (s=); default YYYY-MM, with -2, -3 … if taken.")
@click.option("-t", "--type", "key_type", type=click.Choice(["rsa", "ed25519"]), default="rsa",
              show_default=True, help="Key type.")
@click.option("-b", "--bits", type=int, default=2048, show_default=True,
              help="RSA key size (at least 1024; ignored for ed25519).")
@click.option("--testing", is_flag=True, help="Add t=y (testing mode) to the record.")
@click.option("--hash", "hashes", type=click.Choice(["sha256"]), multiple=True,
              help="Restrict h= to this hash algorithm.")
@click.option("--restrict-service", "services", type=click.Choice(["email"]), multiple=True,
              help="Restrict s= to this service type.")
@click.option("-D", "--directory", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Where SELECTOR.private and SELECTOR.txt are written.")
@click.pass_context
def genkey_cmd(ctx: click.Context, domain: str, selector: str | None, key_type: str, bits: int,
               testing: bool, hashes: tuple[str, ...], services: tuple[str, ...],
               directory: str) -> None:
    """Make a new signing key and its DNS record.

    Writes SELECTOR.private (PEM, mode 0600, never overwritten) and SELECTOR.txt (the
    BIND line to publish), and prints the record as a DNS provider's web form wants it.

    \b
    Example:
      mailseal genkey -d example.com -s 2026-11 --directory /etc/mailseal/keys/example.com
      mailseal genkey -d example.com -t ed25519      # selector: this month, e.g. 2026-11
    """
    if key_type == "ed25519":
        if ctx.get_parameter_source("bits") is not click.core.ParameterSource.DEFAULT:
            _warn("--bits is ignored for ed25519 keys (always 256 bits)")
    elif bits < MIN_RSA_BITS:
        raise click.ClickException(f"{bits}-bit RSA keys are not valid for DKIM "
                                   f"(RFC 8301 §3.2: at least {MIN_RSA_BITS}); use --bits 2048")
    elif bits < GOOD_RSA_BITS:
        _warn(f"{bits}-bit RSA keys are weak; RFC 8301 §3.2 recommends {GOOD_RSA_BITS}")
    elif bits > MAX_VERIFIED_BITS:
        _warn(f"verifiers need only handle keys up to {MAX_VERIFIED_BITS} bits (RFC 8301 §3.2)")
    selector = selector or default_selector(_now(), taken_in(directory))
    try:
        check_names(domain, selector)
        new = create_key(directory, domain, selector, generate_key(key_type, bits),
                         testing=testing, hashes=hashes, services=services)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{directory}: {exc.strerror}") from None
    size = f"{new.key.bits}-bit " if new.key.key_type == "rsa" else ""
    click.echo(f"wrote {new.private_path} ({size}{new.key.key_type}, mode 0600) "
               f"and {new.record_path}")
    _echo_publish(new.domain, selector, new.value, new.record_path)
    click.echo(f"\nThen check it: mailseal testkey -d {new.domain} -s {selector} "
               f"-k {new.private_path}")


# -- dns-record -------------------------------------------------------------------------


@click.command("dns-record")
@click.option("-k", "--key", "keyfile", required=True, type=click.Path(dir_okay=False),
              help="Private key file (PEM PKCS#1/PKCS#8 or an Ed25519 seed; mode 0600).")
@click.option("-d", "--domain", required=True, help="Signing domain (d=).")
@click.option("-s", "--selector", required=True, help="Selector (s=).")
@click.option("-f", "--format", "fmt", type=click.Choice(["bind", "value", "json", "tinydns"]),
              default="bind", show_default=True, help="Output format.")
@click.option("--ttl", type=click.IntRange(min=0), help=f"TTL (json and tinydns default "
              f"{DEFAULT_TTL}; bind: none, the zone's $TTL).")
@click.option("--testing", is_flag=True, help="Add t=y.")
@click.option("--hash", "hashes", type=click.Choice(["sha256"]), multiple=True,
              help="Restrict h=.")
@click.option("--restrict-service", "services", type=click.Choice(["email"]), multiple=True,
              help="Restrict s=.")
@click.option("--revoked", is_flag=True, help="The revocation record (empty p=) instead.")
def dns_record_cmd(keyfile: str, domain: str, selector: str, fmt: str, ttl: int | None,
                   testing: bool, hashes: tuple[str, ...], services: tuple[str, ...],
                   revoked: bool) -> None:
    """Print the DNS record of an existing private key.

    For keys made by mailseal, by opendkim-genkey or by openssl (PEM PKCS#1 or PKCS#8,
    RSA or Ed25519, or a base64 Ed25519 seed).

    \b
    Formats: bind (a zone-file line, strings of at most 255 bytes), value (the one
    unbroken value to paste into a DNS provider's web form, host SELECTOR._domainkey),
    json (name, type, ttl, value, strings), tinydns ('fqdn:text:ttl).

    \b
    Example:
      mailseal dns-record -k /etc/mailseal/keys/2026-11.private -d example.com -s 2026-11
      mailseal dns-record -k mail.private -d example.com -s mail --format value
    """
    try:
        check_names(domain, selector)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    key = _load_key(keyfile)
    value = record_value(key, testing=testing, hashes=hashes, services=services, revoked=revoked)
    name = key_name(selector, domain)
    if fmt == "value":
        click.echo(value)
    elif fmt == "json":
        click.echo(json.dumps(json_record(name, value, DEFAULT_TTL if ttl is None else ttl),
                              indent=2))
    elif fmt == "tinydns":
        click.echo(tinydns_record(name, value, DEFAULT_TTL if ttl is None else ttl))
    else:
        click.echo(bind_record(name, value, ttl))


# -- testkey ----------------------------------------------------------------------------


def _resolver(server: str | None, timeout: float | None, config: Config | None = None
              ) -> DnsResolver:
    return cli_resolver(server, timeout, config.settings.dns if config is not None else None)


async def _lookup_all(resolver: DnsResolver, names: Sequence[str]) -> list[Answer[bytes]]:
    return list(await asyncio.gather(*(resolver.txt(name) for name in names)))


def _lookup(resolver: DnsResolver, name: str) -> Answer[bytes]:
    return asyncio.run(_lookup_all(resolver, [name]))[0]


def _echo_report(report: Report) -> None:
    for check in report.checks:
        for line in check.lines():
            click.echo(line)
    if report.temporary:
        click.echo("result: UNKNOWN - the lookup failed temporarily; try again later")
    elif report.safe:
        warnings = sum(c.verdict.name == "WARN" for c in report.checks)
        advice = f" ({warnings} warning{'s' * (warnings != 1)})" if warnings else ""
        click.echo(f"result: OK - safe to sign with this key{advice}")
    else:
        click.echo("result: FAIL - not safe to sign with this key")


dns_option = click.option("--dns", "dns_server", metavar="HOST:PORT",
                          help="Ask this nameserver (default: the system resolver).")
timeout_option = click.option("--timeout", type=click.FloatRange(min=0.1), default=None,
                              help="DNS timeout in seconds (default 5).")


@click.command("testkey")
@click.option("-d", "--domain", required=True, help="Signing domain (d=).")
@click.option("-s", "--selector", required=True, help="Selector (s=).")
@click.option("-k", "--key", "keyfile", type=click.Path(dir_okay=False),
              help="Private key file: check that the record matches it.")
@dns_option
@timeout_option
def testkey_cmd(domain: str, selector: str, keyfile: str | None, dns_server: str | None,
                timeout: float | None) -> None:
    """Check a published key record: is it safe to sign with this key?

    Looks up SELECTOR._domainkey.DOMAIN and prints one line per check: OK, WARN
    (advice; signing works) or FAIL.

    \b
    Exit status: 0 safe to sign with this key (warnings allowed), 1 not safe (a FAIL),
    2 the lookup failed temporarily (timeout, SERVFAIL), or a usage or file error.

    \b
    Example:
      mailseal testkey -d example.com -s 2026-11 -k /etc/mailseal/keys/2026-11.private
      mailseal testkey -d example.com -s 2026-11 --dns 127.0.0.1:5353
    """
    try:
        check_names(domain, selector)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    key = _load_key(keyfile) if keyfile else None
    name = key_name(selector, domain)
    report = evaluate(name, _lookup(_resolver(dns_server, timeout), name), key,
                      f"the private key {keyfile}")
    _echo_report(report)
    raise ExitStatus(report.exit_status)


# -- rotate -----------------------------------------------------------------------------


@click.command("rotate")
@config_option
@click.option("-d", "--domain", help="The domain whose key rolls over.")
@click.option("--key", "name", metavar="NAME", help="The [[keys]] entry, when the domain has "
              "several.")
@click.option("-t", "--type", "key_type", type=click.Choice(["rsa", "ed25519"]),
              help="Type of the new key (default: that of the current key).")
@click.option("-b", "--bits", type=click.IntRange(min=MIN_RSA_BITS), default=GOOD_RSA_BITS,
              show_default=True, help="RSA size of the new key (never below the current).")
@click.option("--selector", help="The new selector (default YYYY-MM, with -2 … if taken).")
@click.option("--finish", is_flag=True, help="Step two: check DNS, then switch the config.")
@click.option("--abort", is_flag=True, help="Give up the roll-over in progress.")
@click.option("--status", is_flag=True, help="Show the roll-overs and what to do next.")
@dns_option
@timeout_option
def rotate_cmd(config_path: str, domain: str | None, name: str | None, key_type: str | None,
               bits: int, selector: str | None, finish: bool, abort: bool, status: bool,
               dns_server: str | None, timeout: float | None) -> None:
    """Roll a configured key over to a new selector, in two steps.

    \b
    1. mailseal rotate -c CONFIG -d DOMAIN: makes the new key beside the current
       one and prints the record to publish.
    2. mailseal rotate -c CONFIG -d DOMAIN --finish, once the record is published:
       checks that DNS serves it and that it matches the new key, then switches the
       configuration to the new selector and prints the old selector's revocation
       record, to publish once mail signed with the old key has been delivered.

    \b
    Example:
      mailseal rotate -c /etc/mailseal/mailseal.toml -d example.com
      mailseal rotate -c /etc/mailseal/mailseal.toml -d example.com --finish
      mailseal rotate -c /etc/mailseal/mailseal.toml --status
    """
    if sum((finish, abort, status)) > 1:
        raise click.UsageError("--finish, --abort and --status exclude each other")
    if status:
        _rotate_status(config_path)
        return
    if not domain:
        raise click.UsageError("-d/--domain is required (except with --status)")
    config = load_or_fail(config_path)
    try:
        if finish:
            _rotate_finish(config, domain, name, dns_server, timeout)
        elif abort:
            done = rotation.abort(config, domain, name, now=_now())
            click.echo(f"gave up the roll-over of {done.key_name} to {done.new_selector}; "
                       f"{config.path} is unchanged; {done.new_file} may be deleted")
        else:
            _rotate_start(config, domain, name, key_type, bits, selector)
    except (rotation.RotationError, ConfigEditError, KeyFileError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename}: {exc.strerror}") from None


def _rotate_start(config: Config, domain: str, name: str | None, key_type: str | None,
                  bits: int, selector: str | None) -> None:
    if selector is not None:
        check_names(domain, selector)
    r, new = rotation.start(config, domain, name=name, selector=selector, key_type=key_type,
                            bits=bits, now=_now())
    click.echo(f"step 1 of 2: new key for {r.key_name}: {new.private_path} "
               f"(selector {r.new_selector}, {new.key.key_type}, mode 0600); "
               f"{config.path} still signs with {r.old_selector}")
    _echo_publish(r.domain, r.new_selector, new.value, new.record_path)
    click.echo(f"\nOnce it is published (allow for the zone's TTL), run:\n"
               f"  mailseal rotate -c {config.path} -d {r.domain} --finish")


def _rotate_finish(config: Config, domain: str, name: str | None, dns_server: str | None,
                   timeout: float | None) -> None:
    index, entry, r = rotation.pending(config, domain, name)
    new_key = load_key(r.new_file)
    record = key_name(r.new_selector, r.domain)
    click.echo(f"checking {record} against the new key {r.new_file}:")
    report = evaluate(record, _lookup(_resolver(dns_server, timeout, config), record), new_key,
                      "the new key")
    for check in report.checks:
        for line in check.lines():
            click.echo(line)
    if report.temporary:
        raise click.ClickException(f"not switching to {r.new_selector}: the DNS lookup failed "
                                   "temporarily; try again")
    if not report.safe:
        raise click.ClickException(
            f"not switching to {r.new_selector}: {record} is not served as it must be "
            f"(see above); publish the record in {r.new_record_file} and run --finish again")
    done = rotation.switch(config, index, entry, r, now=_now())
    click.echo("")
    for line in rotation.finish_advice(done, config.path, config.settings.server.pid_file):
        click.echo(line)


def _rotate_status(config_path: str) -> None:
    if not Path(config_path).is_file():
        raise click.ClickException(f"{config_path}: cannot read: no such file")
    folder = rotation.state_dir(config_path)
    try:
        rollovers = rotation.load_rollovers(folder)
    except rotation.RotationError as exc:
        raise click.ClickException(str(exc)) from None
    if not rollovers:
        click.echo(f"no roll-overs recorded in {folder}")
        return
    now = _now()
    for r in rollovers:
        for line in rotation.describe(r, config_path, now):
            click.echo(line)


# -- keys list ------------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """The configured keys (mailseal keys list)."""


@keys_group.command("list")
@config_option
@dns_option
@timeout_option
@click.option("--no-dns", is_flag=True, help="Do not look the records up.")
def keys_list_cmd(config_path: str, dns_server: str | None, timeout: float | None,
                  no_dns: bool) -> None:
    """List the configured keys, their files and their DNS records.

    One row per key: name, domain, selector, type, size, file mode, age (since the
    file was written) and whether DNS serves a matching record (the testkey checks).

    \b
    Exit status: 0 every key is usable and served, 1 some key FAILs (file or DNS),
    2 a lookup failed temporarily, or a usage or configuration error.

    \b
    Example:
      mailseal keys list -c /etc/mailseal/mailseal.toml
      mailseal keys list -c mailseal.toml --no-dns
    """
    try:
        settings = load_settings(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    files = inspect_keys(settings, config_path)
    names = [key_name(f.entry.selector, f.entry.domain) for f in files]
    reports: list[Report | None] = [None] * len(files)
    if not no_dns and files:
        resolver = cli_resolver(dns_server, timeout or None, settings.dns)
        answers = asyncio.run(_lookup_all(resolver, names))
        reports = [evaluate(n, a, f.key) for n, a, f in zip(names, answers, files, strict=True)]
    now = time.time()
    rows = []
    status = 0
    for f, report in zip(files, reports, strict=True):
        key = f.key
        dns_text = "not checked" if report is None else report.summary()
        rows.append([f.entry.name, f.entry.domain, f.entry.selector,
                     key.key_type if key else "?", str(key.bits) if key else "?",
                     f.mode_text(), f.age_text(now), dns_text])
        if f.problem or (report is not None and not report.safe and not report.temporary):
            status = 1
        elif report is not None and report.temporary and status == 0:
            status = 2
    if not files:
        click.echo(f"{config_path}: no [[keys]] configured")
        return
    header = ["NAME", "DOMAIN", "SELECTOR", "TYPE", "BITS", "MODE", "AGE", "DNS"]
    for line in format_table(header, rows):
        click.echo(line)
    for f in files:
        if f.problem:
            click.echo(f"FAIL {f.entry.name}: {f.problem}")
    raise ExitStatus(status)
