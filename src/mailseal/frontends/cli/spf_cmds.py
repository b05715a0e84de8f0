"""``mailseal spf IP SENDER [HELO]``: one SPF check (RFC 7208) from the command line."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

import click

from mailseal.authres.format import format_field
from mailseal.authres.model import AuthenticationResults
from mailseal.dns.types import FullResolver
from mailseal.frontends.cli.config_cmds import cli_resolver
from mailseal.frontends.cli.dkim_cmds import ExitStatus
from mailseal.results import Result
from mailseal.spf import (
    SpfResult,
    check_helo,
    check_mail_from,
    method_result,
    received_spf_field,
)

#: Exit status per result: 0 the host is authorized; 1 a definite answer that is not
#: pass (the domain's policy, or its broken record); 2 try again later (as for usage
#: errors and `mailseal verify`'s DNS failures).
EXIT_STATUS = {
    Result.PASS: 0,
    Result.FAIL: 1,
    Result.SOFTFAIL: 1,
    Result.NEUTRAL: 1,
    Result.NONE: 1,
    Result.PERMERROR: 1,
    Result.TEMPERROR: 2,
}


def register(group: click.Group) -> None:
    group.add_command(spf_cmd)


@click.command("spf")
@click.argument("ip")
@click.argument("sender")
@click.argument("helo", required=False, default="")
@click.option("--dns", "dns_server", metavar="HOST:PORT", help="Ask this nameserver.")
@click.option("--timeout", type=float, default=5.0, show_default=True,
              help="Time bound of each DNS lookup, in seconds.")
@click.option("--helo-identity", is_flag=True,
              help="Check the HELO identity (postmaster@HELO) instead of MAIL FROM.")
@click.option("--receiver", default=None,
              help="This host's name, for %{r} and receiver= (default: the FQDN).")
@click.option("--time", "now", type=int, help="Check as at this Unix time (%{t}).")
@click.option("-v", "--verbose", is_flag=True, help="Show the evaluation step by step.")
def spf_cmd(ip: str, sender: str, helo: str, dns_server: str | None, timeout: float,
            helo_identity: bool, receiver: str | None, now: int | None,
            verbose: bool) -> None:
    """Check whether IP may send mail from SENDER (the MAIL FROM address), as a
    receiving server would (RFC 7208 check_host()).

    SENDER "" or "<>" is the null reverse-path: then postmaster@HELO is checked, and
    HELO is needed. A SENDER without "@" is read as a domain (postmaster@SENDER).
    HELO also fills the %{h} macro.

    Prints the result, the Received-SPF and Authentication-Results fields a server
    would add, and with -v every step. Exit status: 0 pass; 1 fail, softfail,
    neutral, none or permerror; 2 temperror (DNS trouble: try again) or a usage error.

    \b
    Examples:
      mailseal spf 192.0.2.10 alice@example.com mail.example.com
      mailseal spf -v --dns 127.0.0.1:5353 2001:db8::25 '<>' mx.example.net
    """
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise click.UsageError(f"{ip!r} is not an IPv4 or IPv6 address") from None
    null_sender = sender.strip() in ("", "<>")
    if (null_sender or helo_identity) and not helo:
        raise click.UsageError("HELO is needed for a null SENDER or --helo-identity")
    resolver = _resolver(dns_server, timeout)
    host = receiver or socket.getfqdn()
    clock = time.time() if now is None else now
    result = asyncio.run(_check(resolver, ip, sender, helo, helo_identity, host, clock))
    _report(result, host, sender, verbose)
    raise ExitStatus(EXIT_STATUS.get(result.result, 1))


def _resolver(server: str | None, timeout: float) -> FullResolver:
    return cli_resolver(server, timeout)


async def _check(resolver: FullResolver, ip: str, sender: str, helo: str, helo_identity: bool,
                 receiver: str, now: float) -> SpfResult:
    if helo_identity:
        return await check_helo(resolver, ip, helo, now=now, receiver=receiver)
    return await check_mail_from(resolver, ip, sender, helo, now=now, receiver=receiver)


def _report(result: SpfResult, receiver: str, sender: str, verbose: bool) -> None:
    click.echo(f"spf={result.result} identity={result.identity} domain={result.domain} "
               f"ip={result.ip}")
    if result.mechanism is not None:
        click.echo(f"mechanism: {result.mechanism}")
    if result.explanation is not None:
        click.echo(f"explanation: {result.explanation}")
    if result.problem is not None:
        click.echo(f"problem: {result.problem}")
    envelope = "<>" if sender.strip() in ("", "<>") else None
    click.echo(received_spf_field(result, receiver, envelope_from=envelope)
               .decode("ascii").rstrip("\r\n").replace("\r\n", "\n"))
    ar = AuthenticationResults(receiver, None, (method_result(result),))
    click.echo(format_field(ar).decode("utf-8", "replace").rstrip("\r\n").replace("\r\n", "\n"))
    if verbose:
        click.echo(f"trace ({result.lookups} of 10 DNS-querying terms, "
                   f"{result.void_lookups} of 2 void lookups):")
        for line in result.trace:
            click.echo(f"  {line}")
