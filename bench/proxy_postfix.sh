#!/bin/sh
# The SMTP proxy through Postfix, both roles, against the no-filter baseline and the
# milter in the same run (the issue's name for it; the work is in proxy_postfix.py).
# Usage: bench/proxy_postfix.sh [--quick] [--rounds N] [--routes "proxy in,milter verify"]
set -e
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/proxy_postfix.py "$@"
