"""``mailseal import-opendkim``: migrate an OpenDKIM setup in one command."""

from __future__ import annotations

from pathlib import Path

import click

from mailseal.config.load import ConfigError, build_config
from mailseal.config.opendkim import ImportError_, import_opendkim


def register(group: click.Group) -> None:
    group.add_command(import_opendkim_cmd)


@click.command("import-opendkim")
@click.argument("conf", default="/etc/opendkim.conf", required=False)
@click.option("--check/--no-check", default=True, show_default=True,
              help="Validate the result (keys readable, mode 0600) before printing.")
def import_opendkim_cmd(conf: str, check: bool) -> None:
    """Print a mailseal.toml equivalent to an OpenDKIM configuration (opendkim.conf with
    its KeyTable, SigningTable and InternalHosts). What cannot be carried over is listed
    in comments at the top.

    \b
    Example:
      mailseal import-opendkim /etc/opendkim.conf > /etc/mailseal/mailseal.toml
    """
    try:
        result = import_opendkim(conf)
    except ImportError_ as exc:
        raise click.ClickException(str(exc)) from None
    if check:
        import tomllib

        try:
            # Relative KeyFile paths as OpenDKIM's configuration meant them: beside it.
            build_config(tomllib.loads(result.toml), f"(imported from {conf})",
                         base=Path(conf).parent)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(result.toml, nl=False)
