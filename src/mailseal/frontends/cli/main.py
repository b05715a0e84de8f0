"""The ``mailseal`` command: one group, one module per family of commands.

Errors a user can cause (bad file, bad key, bad option) end in one line on stderr,
``mailseal: error: …``, and exit status 2; a bug prints its traceback.
"""

from __future__ import annotations

import sys

import click

from mailseal import __version__
from mailseal.frontends.cli import (
    config_cmds,
    dkim_cmds,
    dmarc_cmds,
    import_cmds,
    key_cmds,
    policy_cmds,
    postfix_cmds,
    service_cmds,
    spf_cmds,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mailseal")
def cli() -> None:
    """mailseal: DKIM signing and verification for mail servers.

    \b
    Examples:
      mailseal sign -d example.com -s 2026-11 -k 2026-11.private < msg.eml > signed.eml
      mailseal verify --dns 127.0.0.1:53 signed.eml
    """


dkim_cmds.register(cli)
config_cmds.register(cli)
service_cmds.register(cli)
postfix_cmds.register(cli)
import_cmds.register(cli)
policy_cmds.register(cli)
key_cmds.register(cli)
spf_cmds.register(cli)
dmarc_cmds.register(cli)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="mailseal", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("mailseal: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        # One line for every error a user can cause, usage errors included.
        click.echo(f"mailseal: error: {exc.format_message()}", err=True)
        return 2
    except dkim_cmds.ExitStatus as exc:
        return exc.status
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
