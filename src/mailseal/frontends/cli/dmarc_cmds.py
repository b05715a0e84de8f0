"""``mailseal dmarc report`` (the RFC 9990 aggregate report from the evaluations kept in
SQLite) and ``mailseal dmarc check`` (the policy a domain publishes, as discovered)."""

from __future__ import annotations

import asyncio
import datetime
import socket
import sqlite3
import sys
import time

import click

from mailseal import __version__
from mailseal.dmarc.check import check_dmarc
from mailseal.dmarc.discover import Lookup, Outcome
from mailseal.dmarc.evaluate import DmarcResult
from mailseal.dmarc.record import Mode
from mailseal.dmarc.report import ReportStore, aggregate
from mailseal.dmarc.reportxml import render
from mailseal.frontends.cli.config_cmds import cli_resolver
from mailseal.frontends.cli.dkim_cmds import ExitStatus
from mailseal.results import Result


def register(group: click.Group) -> None:
    group.add_command(dmarc_group)


@click.group("dmarc")
def dmarc_group() -> None:
    """DMARC: aggregate reports and policy look-ups."""


def _moment(value: str, option: str) -> int:
    """Unix seconds from "2026-11-01", "2026-11-01T12:00:00+01:00" or "1793491200";
    times without a zone are UTC."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD[THH:MM[:SS]]) or "
                                 "Unix time", param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp())


@dmarc_group.command("report")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The SQLite file DMARC evaluations are recorded in.")
@click.option("--domain", required=True, help="The DMARC Policy Domain to report on.")
@click.option("--since", required=True, help="Start of the period (date, UTC), included.")
@click.option("--until", "until", help="End of the period, excluded (default: now).")
@click.option("--org-name", help="Reporting organization (default: this host's name).")
@click.option("--email", help="Contact address (default: postmaster@ this host).")
@click.option("--extra-contact-info", help="Additional contact details.")
@click.option("--report-id", help="Report-ID (default: DOMAIN.BEGIN.END).")
def report_cmd(db_path: str, domain: str, since: str, until: str | None,
               org_name: str | None, email: str | None, extra_contact_info: str | None,
               report_id: str | None) -> None:
    """Print the RFC 9990 aggregate report XML for DOMAIN over a period.

    \b
    Example:
      mailseal dmarc report --db /var/lib/mailseal/dmarc.db --domain example.com \\
          --since 2026-11-01 --until 2026-11-02 > report.xml
    """
    begin = _moment(since, "--since")
    end = _moment(until, "--until") if until else int(time.time())
    if end <= begin:
        raise click.UsageError("--until must be later than --since")
    host = socket.getfqdn()
    try:
        with ReportStore(db_path) as store:
            rows = store.evaluations(domain, begin, end)
    except sqlite3.Error as exc:
        raise click.ClickException(f"{db_path}: {exc}") from None
    report = aggregate(rows, policy_domain=domain, begin=begin, end=end,
                       org_name=org_name or host, email=email or f"postmaster@{host}",
                       report_id=report_id, extra_contact_info=extra_contact_info,
                       generator=f"mailseal {__version__}")
    if report is None:
        click.echo(f"mailseal: no DMARC evaluations for {domain} in that period", err=True)
        raise ExitStatus(1)
    sys.stdout.buffer.write(render(report))


@dmarc_group.command("check")
@click.argument("domain")
@click.option("--dns", "dns_server", metavar="HOST:PORT",
              help="Ask this DNS server (default: the system resolver).")
@click.option("--mode", type=click.Choice([m.value for m in Mode]), default=Mode.RFC9989.value,
              show_default=True, help="RFC 9989 tree walk, or RFC 7489 with the PSL.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="DNS timeout.")
def check_cmd(domain: str, dns_server: str | None, mode: str, timeout: float) -> None:
    """Show the DMARC policy that applies to mail from DOMAIN, and how it was found.

    Exit status: 0 a policy applies; 1 none; 2 a DNS or usage error.
    """
    resolver = cli_resolver(dns_server, timeout)
    result = asyncio.run(check_dmarc(domain, resolver, mode=Mode(mode)))
    _show(result)
    if result.result in (Result.TEMPERROR, Result.PERMERROR):
        raise ExitStatus(2)
    raise ExitStatus(0 if result.record is not None else 1)


def _outcome(lookup: Lookup) -> str:
    if lookup.outcome is Outcome.TEMPFAIL:
        return f"temporary failure: {lookup.error}"
    if lookup.outcome is Outcome.MULTIPLE:
        return "several DMARC records (all discarded)"
    if lookup.outcome is Outcome.RECORD:
        return "DMARC record"
    if lookup.other_txt:
        return f"no DMARC record ({len(lookup.other_txt)} other TXT)"
    return "no DMARC record" + (" (NXDOMAIN)" if lookup.status.value == "nxdomain" else "")


def _show(r: DmarcResult) -> None:
    method = "tree walk (RFC 9989)" if r.mode is Mode.RFC9989 else "Public Suffix List (RFC 7489)"
    click.echo(f"{r.header_from or '?'}: discovery by {method}")
    d = r.discovery
    for lookup in d.queries if d else ():
        click.echo(f"  {lookup.name:<40} {_outcome(lookup)}")
    published = d.published if d else None
    if published is not None and d is not None:
        click.echo(f"  policy domain:  {d.policy_domain}" + ("  (public suffix domain)"
                                                            if d.psd else ""))
        click.echo(f"  record:         {published.text}")
        for error in published.errors:
            click.echo(f"  problem:        {error}")
    if d is not None and d.org_domain:
        click.echo(f"  organizational domain: {d.org_domain}")
    record = r.record
    if record is None:
        click.echo(f"  result:         {r.result.value} ({r.detail or r.reason.value})")
        return
    click.echo(f"  applies:        {r.policy_tag}={r.requested.value if r.requested else '?'}"
               + (f" (t=y: {r.policy.value} is applied)" if record.t and r.policy else ""))
    if r.mode is Mode.RFC7489 and record.pct < 100:
        click.echo(f"  pct:            {record.pct}")
    click.echo(f"  alignment:      adkim={record.adkim.value} aspf={record.aspf.value}")
    if record.rua:
        click.echo(f"  aggregate reports to: {', '.join(record.rua)}")
