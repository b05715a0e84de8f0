"""``mailseal postfix-config``: the exact Postfix lines for the chosen mode."""

from __future__ import annotations

import click

from mailseal.config.model import Listener, parse_address
from mailseal.frontends.cli.config_cmds import config_option, load_or_fail


def register(group: click.Group) -> None:
    group.add_command(postfix_config_cmd)


def milter_address(listener: Listener, queue_directory: str) -> str:
    """How Postfix names the milter socket: inet:HOST:PORT, or a unix path relative to
    the queue directory when the socket lies inside Postfix's chroot."""
    family, host, port = parse_address(listener.address)
    if family == "unix":
        prefix = queue_directory.rstrip("/") + "/"
        if host.startswith(prefix):
            return "unix:/" + host[len(prefix):]
        return f"unix:{host}"
    return f"inet:[{host}]:{port}" if family == "inet6" else f"inet:{host}:{port}"


def milter_lines(listener: Listener, queue_directory: str = "/var/spool/postfix") -> str:
    address = milter_address(listener, queue_directory)
    return f"""\
# /etc/postfix/main.cf — mailseal as a milter (sign mail from internal hosts and
# authenticated users, verify the rest). Then: postfix reload
smtpd_milters = {address}
non_smtpd_milters = {address}
milter_protocol = 6
# Keep mail when mailseal is down or answers late: the client is told to retry.
milter_default_action = tempfail
milter_connect_timeout = 10s
milter_command_timeout = 30s
milter_content_timeout = 120s
# Macros mailseal reads (Postfix sends these by default; listed for clarity).
milter_connect_macros = j {{daemon_name}} {{client_addr}} {{client_name}} v _
milter_mail_macros = i {{auth_type}} {{auth_authen}} {{auth_author}} {{mail_addr}}
# Optional: mark the submission service so its mail is signed whatever the client
# address (add signing_daemon_names = ["ORIGINATING"] to mailseal.toml), in master.cf:
#   submission inet n - y - - smtpd
#     -o milter_macro_daemon_name=ORIGINATING
"""


@click.command("postfix-config")
@config_option
@click.option("--mode", type=click.Choice(["milter"]), default="milter", show_default=True,
              help="How Postfix hands mail to mailseal.")
@click.option("--queue-directory", default="/var/spool/postfix", show_default=True,
              help="Postfix's queue_directory (for unix sockets inside the chroot).")
def postfix_config_cmd(config_path: str, mode: str, queue_directory: str) -> None:
    """Print the main.cf (and master.cf) lines that connect Postfix to mailseal.

    \b
    Example:
      mailseal postfix-config -c /etc/mailseal/mailseal.toml --mode milter
    """
    config = load_or_fail(config_path)
    listeners = [item for item in config.settings.listeners if item.kind == mode]
    if not listeners:
        raise click.ClickException(f"{config_path}: no [[listeners]] with kind = \"{mode}\"")
    click.echo(milter_lines(listeners[0], queue_directory), nl=False)
