"""``mailseal milter`` and ``mailseal proxy``: run a daemon in the foreground
(systemd, make run)."""

from __future__ import annotations

import dataclasses

import click
from pydantic import ValidationError

from mailseal.config.load import ConfigError
from mailseal.config.model import Listener
from mailseal.frontends.cli.config_cmds import config_option, load_or_fail


def register(group: click.Group) -> None:
    group.add_command(milter_cmd)
    group.add_command(proxy_cmd)


workers_option = click.option("--workers", type=click.IntRange(1, 64), help="Worker processes "
                              "(default: [server] workers).")


@click.command("milter")
@config_option
@workers_option
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


def listen_address(value: str) -> str:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as a listener address; a full listener
    address (``inet:…``, ``unix:…``) is taken as it is."""
    if value.startswith(("inet:", "inet6:", "unix:", "local:")):
        return value
    return f"inet6:{value}" if value.startswith("[") else f"inet:{value}"


@click.command("proxy")
@config_option
@click.option("--role", type=click.Choice(["out", "in"]),
              help="out: sign (after the queue, content_filter); in: verify (before the "
                   "queue, smtpd_proxy_filter).")
@click.option("--listen", metavar="HOST:PORT", help="Where the proxy listens.")
@click.option("--relay", metavar="HOST:PORT", help="The next hop (Postfix's return smtpd).")
@workers_option
def proxy_cmd(config_path: str, role: str | None, listen: str | None, relay: str | None,
              workers: int | None) -> None:
    """Run the SMTP proxy (DKIMproxy style), in the foreground.

    With --role, --listen and --relay: one proxy as given. Without them: every
    [[listeners]] of kind "proxy" in the configuration (several in one process).
    Keys, signing rules and verification settings come from the configuration either
    way. SIGHUP reloads it; SIGTERM stops after the transactions in flight.

    \b
    Examples:
      mailseal proxy -c /etc/mailseal/mailseal.toml --role out \\
          --listen 127.0.0.1:10027 --relay 127.0.0.1:10028
      mailseal proxy -c /etc/mailseal/mailseal.toml --role in \\
          --listen 127.0.0.1:10025 --relay 127.0.0.1:10026
      mailseal postfix-config --mode proxy     # the Postfix side
    """
    from mailseal.frontends.service import run_service

    given = [name for name, value in (("--role", role), ("--listen", listen),
                                      ("--relay", relay)) if value is not None]
    config = load_or_fail(config_path)
    if given:
        if len(given) != 3:
            raise click.UsageError("--role, --listen and --relay go together")
        assert role is not None and listen is not None and relay is not None
        try:
            listener = Listener.model_validate({"kind": "proxy", "role": role, "relay": relay,
                                                "address": listen_address(listen)})
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            option = {"address": "--listen", "relay": "--relay"}.get(str(error["loc"][0]), "")
            reason = error["msg"].removeprefix("Value error, ")
            raise click.UsageError(f"{option}: {reason}" if option else reason) from None
        settings = config.settings.model_copy(update={"listeners": (listener,)})
        config = dataclasses.replace(config, settings=settings)
    try:
        run_service(config_path, ["proxy"], workers=workers, config=config)
    except (ConfigError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
