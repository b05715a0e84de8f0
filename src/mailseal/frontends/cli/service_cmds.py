"""``mailseal milter``: run the daemon in the foreground (systemd, make run)."""

from __future__ import annotations

import click

from mailseal.config.load import ConfigError
from mailseal.frontends.cli.config_cmds import config_option


def register(group: click.Group) -> None:
    group.add_command(milter_cmd)


@click.command("milter")
@config_option
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes "
              "(default: [server] workers).")
def milter_cmd(config_path: str, workers: int | None) -> None:
    """Run the milter on the [[listeners]] of kind "milter", in the foreground.

    SIGHUP reloads the configuration (a bad file is logged and the old one stays);
    SIGTERM stops after the sessions in flight.

    \b
    Example:
      mailseal milter -c /etc/mailseal/mailseal.toml
    """
    from mailseal.frontends.service import run_service

    try:
        run_service(config_path, ["milter"], workers=workers)
    except (ConfigError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
