"""``mailseal policyd``: the Postfix SPF policy service, in the foreground."""

from __future__ import annotations

import click

from mailseal.config.load import ConfigError
from mailseal.frontends.cli.config_cmds import config_option
from mailseal.frontends.cli.service_cmds import workers_option


def register(group: click.Group) -> None:
    group.add_command(policyd_cmd)


@click.command("policyd")
@config_option
@workers_option
def policyd_cmd(config_path: str, workers: int | None) -> None:
    """Run the SPF policy service on the [[listeners]] of kind "policy".

    In Postfix's main.cf (after reject_unauth_destination):

    \b
      smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated,
          reject_unauth_destination, check_policy_service inet:127.0.0.1:10045
      127.0.0.1:10045_time_limit = 3600s

    \b
    Example:
      mailseal policyd -c /etc/mailseal/mailseal.toml
    """
    from mailseal.frontends.service import run_service

    try:
        run_service(config_path, ["policy"], workers=workers)
    except (ConfigError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
