"""What the two proxy roles mean to the pipeline.

``out`` treats every message as ours: the MTA routed it here on purpose (the
submission service's content_filter), and XFORWARD carries no SASL login, so the
client address alone would leave remote authenticated users unsigned. The envelope
names the daemon ``proxy-out``, which the role's configuration lists among the signing
daemons; the signing table still decides which From domains are signed (ours without
a rule: passed through untouched, the trail says why). ``in`` verifies everything:
its configuration trusts no host, user or daemon, so no message it receives is ever
signed, whatever its client address.

The pipeline is not told about roles: each role runs it with its own view of the one
configuration, derived once per loaded configuration.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from mailseal.config.load import Config

#: The daemon name a message gets in role ``out``.
OUT_DAEMON: Final = "proxy-out"


def role_config(config: Config, role: str) -> Config:
    signing = config.settings.signing
    update: dict[str, object]
    if role == "out":
        names = signing.signing_daemon_names
        update = {"signing_daemon_names": names if OUT_DAEMON in names else (*names, OUT_DAEMON)}
        networks = config.internal_networks
    else:
        update = {"signing_daemon_names": (), "sign_authenticated": False}
        networks = ()
    settings = config.settings.model_copy(
        update={"signing": signing.model_copy(update=update)})
    return dataclasses.replace(config, settings=settings, internal_networks=networks)


class RoleConfigs:
    """``role_config`` made once per loaded configuration (a reload makes a new one)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._source: Config | None = None
        self._derived: Config | None = None

    def __call__(self, config: Config) -> Config:
        if config is not self._source or self._derived is None:
            self._source, self._derived = config, role_config(config, self.role)
        return self._derived
