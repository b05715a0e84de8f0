"""``mailseal config init|check`` and ``mailseal explain``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from mailseal.config.default import write_default_config
from mailseal.config.load import Config, ConfigError, load_config
from mailseal.config.model import DnsSettings
from mailseal.dkim.keys import KeyFileError
from mailseal.dkim.publish import bind_record, key_name, record_value
from mailseal.message import split_message
from mailseal.pipeline.model import Envelope
from mailseal.pipeline.session import MessageSession

if TYPE_CHECKING:
    from mailseal.dns.resolver import DnsResolver

DEFAULT_CONFIG = "/etc/mailseal/mailseal.toml"
config_option = click.option("-c", "--config", "config_path", default=DEFAULT_CONFIG,
                             show_default=True, envvar="MAILSEAL_CONFIG",
                             help="Configuration file (env MAILSEAL_CONFIG).")


def register(group: click.Group) -> None:
    group.add_command(config_group)
    group.add_command(explain_cmd)


def cli_resolver(server: str | None, timeout: float | None,
                 dns: DnsSettings | None = None) -> DnsResolver:
    """The resolver a command was asked for: ``--dns SERVER``, else the configuration's
    nameservers (``dns``, when the command read one), else the system's; ``--timeout``,
    else the configuration's, else 5 s. A bad server is a usage error."""
    from mailseal.dns.resolver import DnsResolver

    servers: Sequence[str] = [server] if server else (dns.nameservers if dns else ())
    if timeout is None:
        timeout = dns.timeout if dns else 5.0
    try:
        return DnsResolver(servers, timeout=timeout)
    except ValueError as exc:
        raise click.UsageError(f"--dns {server}: {exc}" if server else f"[dns]: {exc}") from None


def load_or_fail(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("config")
def config_group() -> None:
    """Create and check the configuration file.

    \b
    Example:
      mailseal config init --directory /etc/mailseal -d example.com
      mailseal config check /etc/mailseal/mailseal.toml
    """


@config_group.command("init")
@click.option("--directory", default="/etc/mailseal", show_default=True,
              help="Where mailseal.toml and keys/ are written.")
@click.option("-d", "--domain", help="Signing domain (default: this host's domain).")
@click.option("-s", "--selector", help="Selector (default: YYYY-MM).")
@click.option("--address", default="inet:127.0.0.1:8891", show_default=True,
              help="Milter listener address.")
def init_cmd(directory: str, domain: str | None, selector: str | None, address: str) -> None:
    """Write a default configuration with a fresh RSA-2048 key; print its DNS record.

    \b
    Example:
      mailseal config init --directory /etc/mailseal -d example.com
    """
    try:
        path, keyfile = write_default_config(directory, domain=domain, selector=selector,
                                             address=address)
        config = load_config(path)
    except (FileExistsError, KeyFileError, ConfigError, OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path} and {keyfile} (mode 0600)")
    print_records(config)


def print_records(config: Config) -> None:
    click.echo("\nPublish in DNS:\n")
    for entry in config.settings.keys:
        value = record_value(config.keys[entry.name])
        click.echo(bind_record(key_name(entry.selector, entry.domain), value))


@config_group.command("check")
@click.argument("path", default=DEFAULT_CONFIG, required=False)
def check_cmd(path: str) -> None:
    """Validate a configuration file: syntax, settings, key files and permissions.

    \b
    Example:
      mailseal config check /etc/mailseal/mailseal.toml
    """
    config = load_or_fail(path)
    s = config.settings
    click.echo(f"{path}: OK — {len(s.keys)} key(s), {len(s.signing.rules)} signing rule(s), "
               f"{len(s.listeners)} listener(s), authserv-id {config.authserv_id}")


@click.command("explain")
@config_option
@click.option("--client-ip", help="Client address as the MTA would report it.")
@click.option("--auth-user", help="SASL login name, if the client authenticated.")
@click.option("--daemon-name", help="MTA daemon name ({daemon_name} macro).")
@click.option("--mail-from", help="Envelope sender.")
@click.argument("message", type=click.File("rb"), default="-", required=False)
def explain_cmd(config_path: str, client_ip: str | None, auth_user: str | None,
                daemon_name: str | None, mail_from: str | None, message: object) -> None:
    """Run a saved MESSAGE and envelope through the pipeline and print the decision
    trail: why it would be signed or not, and the verdict.

    \b
    Example:
      mailseal explain -c mailseal.toml --client-ip 192.0.2.10 saved.eml
    """
    config = load_or_fail(config_path)
    from mailseal.frontends.daemon import make_resolver

    data = message.read()  # type: ignore[attr-defined]
    fields, body = split_message(data)
    env = Envelope(client_address=client_ip, auth_user=auth_user, daemon_name=daemon_name,
                   mail_from=mail_from)
    session = MessageSession(config, env, make_resolver(config))
    for field in fields:
        session.header(field.name, field.value)
    session.end_of_headers()
    session.body(body)
    decision = asyncio.run(session.finish())
    for step in decision.trail:
        click.echo(f"- {step}")
    click.echo(f"action: {decision.action}" + (f" ({decision.reply})" if decision.reply else ""))
    for edit in decision.edits:
        if edit.remove:
            click.echo(f"remove: {edit.name} #{edit.index}")
        else:
            value = edit.value.decode("utf-8", "replace").replace("\r\n", "\n")
            click.echo(f"add: {edit.name}:{value}")
    sys.stdout.flush()


