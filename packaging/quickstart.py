"""`make run`: first run on a fresh machine, then the milter.

If ./local/mailseal.toml does not exist, writes it (the embedded default) with a fresh
RSA-2048 key for this host's domain (mode 0600). Prints the DNS record to publish and
the Postfix lines, then runs the milter in the foreground (Ctrl-C stops it).
Environment: MAILSEAL_DOMAIN (signing domain), MAILSEAL_LISTEN (milter address).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
LOCAL = HERE / "local"
CONFIG = LOCAL / "mailseal.toml"


def main() -> int:
    from mailseal.frontends.cli.main import main as cli

    if not CONFIG.exists():
        args = ["config", "init", "--directory", str(LOCAL),
                "--address", os.environ.get("MAILSEAL_LISTEN", "inet:127.0.0.1:8891")]
        if os.environ.get("MAILSEAL_DOMAIN"):
            args += ["-d", os.environ["MAILSEAL_DOMAIN"]]
        if cli(args) != 0:
            return 1
    else:
        print(f"using {CONFIG}")
        from mailseal.config.load import load_config
        from mailseal.frontends.cli.config_cmds import print_records

        print_records(load_config(CONFIG))
    print("\nPostfix (main.cf):\n")
    if cli(["postfix-config", "-c", str(CONFIG), "--mode", "milter"]) != 0:
        return 1
    print(f"\nStarting the milter: mailseal milter -c {CONFIG}  (Ctrl-C to stop)\n",
          flush=True)
    return cli(["milter", "-c", str(CONFIG)])


if __name__ == "__main__":
    sys.exit(main())
