"""The embedded default configuration that `mailseal config init` (and `make run`)
writes on a machine that has none, with a fresh key for its domain."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from mailseal.config.tomltext import toml_string
from mailseal.dkim.signature import valid_domain
from mailseal.keystore import generate_key, write_private_key, write_text_atomic

TEMPLATE = """\
# mailseal configuration (TOML). Every setting: docs/configuration.md
# Written by `mailseal config init` on {date}.

[server]
authserv_id = {host}          # the authserv-id in Authentication-Results
log_format = "text"             # text | json
log_target = "stderr"           # stderr | syslog

[[listeners]]
kind = "milter"
address = {address}           # Postfix: smtpd_milters = {postfix_address}

[dns]
nameservers = []                # empty: /etc/resolv.conf; "127.0.0.1:5353" allowed
timeout = 5.0

[[keys]]                        # the key table: name -> domain, selector, file
name = "{domain}-rsa"
domain = "{domain}"
selector = "{selector}"
file = {keyfile}

[signing]
internal_hosts = ["127.0.0.0/8", "::1/128"]   # clients whose mail is signed
sign_authenticated = true       # SASL-authenticated clients are signed too
signing_daemon_names = []       # e.g. ["ORIGINATING"] with milter_macro_daemon_name
canonicalization = "relaxed/simple"
rules = [                       # the signing table: first match wins
  {{ match = "*@{domain}", keys = ["{domain}-rsa"] }},
  {{ match = "*.{domain}", keys = ["{domain}-rsa"] }},
]

[dmarc]
enforce = false                 # record only; true acts on p=reject / p=quarantine failures
report_db = "dmarc-reports.sqlite"   # every evaluation, for `mailseal dmarc report`

[verify]
on_bad_signature = "accept"     # accept | reject | tempfail | quarantine | discard
on_no_signature = "accept"
on_dns_error = "tempfail"
on_key_not_found = "accept"
on_internal_error = "tempfail"
on_signing_failure = "tempfail"
minimum_key_bits = 1024
max_signatures = 8
"""


def host_domain() -> tuple[str, str]:
    """(host FQDN, its mail domain): the domain is the FQDN minus the first label."""
    fqdn = socket.getfqdn()
    labels = fqdn.split(".")
    domain = ".".join(labels[1:]) if len(labels) > 2 else (fqdn if "." in fqdn else "example.com")
    return fqdn, domain


def write_default_config(directory: str | Path, *, domain: str | None = None,
                         selector: str | None = None, address: str = "inet:127.0.0.1:8891",
                         key_type: str = "rsa") -> tuple[Path, Path]:
    """Write ``mailseal.toml`` and a new key under ``directory``; return both paths.
    Refuses to overwrite an existing configuration."""
    folder = Path(directory)
    config_path = folder / "mailseal.toml"
    if config_path.exists():
        raise FileExistsError(f"{config_path} exists; not overwriting it")
    host, host_dom = host_domain()
    domain = (domain or host_dom).lower().rstrip(".")
    selector = selector or time.strftime("%Y-%m")
    for what, name in (("domain", domain), ("selector", selector)):
        if not valid_domain(name):  # also keeps "../" out of the key path
            raise ValueError(f"{what} {name!r} is not a DNS name")
    keyfile = folder / "keys" / domain / f"{selector}.private"
    folder.mkdir(parents=True, exist_ok=True)
    if not keyfile.exists():
        write_private_key(keyfile, generate_key(key_type))
    family, _, rest = address.partition(":")
    postfix_address = address if family != "unix" else f"unix:{rest}"
    # Values that are not DNS names are quoted as TOML (a path may hold " or \).
    text = TEMPLATE.format(date=time.strftime("%Y-%m-%d"), host=toml_string(host),
                           address=toml_string(address), postfix_address=postfix_address,
                           domain=domain, selector=selector,
                           keyfile=toml_string(str(keyfile.resolve())))
    write_text_atomic(config_path, text)
    return config_path, keyfile
