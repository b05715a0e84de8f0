"""Read the TOML file into ``Config``: settings validated, keys loaded, networks
parsed. Every error names the file, the key and the reason, in one line."""

from __future__ import annotations

import ipaddress
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mailseal.config.model import Settings
from mailseal.dkim.keys import KeyFileError, SigningKey, load_key

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    """The configuration cannot be used: ``file: key: reason``."""


@dataclass(frozen=True)
class Config:
    """Settings plus what they point to, loaded once and swapped whole on reload."""

    settings: Settings
    path: str = "<defaults>"
    keys: dict[str, SigningKey] = field(default_factory=dict)
    internal_networks: tuple[Network, ...] = ()
    authserv_id: str = ""
    # [policy] trusted_relays and [dmarc] trusted_forwarders, parsed once at load.
    trusted_relays: tuple[Network, ...] = ()
    trusted_forwarders: tuple[Network, ...] = ()

    def is_internal(self, address: str | None) -> bool:
        return in_networks(address, self.internal_networks)

    def is_trusted_relay(self, address: str | None) -> bool:
        return in_networks(address, self.trusted_relays)

    def is_trusted_forwarder(self, address: str | None) -> bool:
        return in_networks(address, self.trusted_forwarders)


def in_networks(address: str | None, networks: tuple[Network, ...]) -> bool:
    """Whether ``address`` (as MTAs write it: ``192.0.2.1``, ``[2001:db8::1]``,
    ``IPv6:2001:db8::1``, IPv4-mapped IPv6) lies in one of ``networks``."""
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def load_config(path: str | Path) -> Config:
    return build_config(_read_toml(Path(path)), str(path))


def load_settings(path: str | Path) -> Settings:
    """The validated settings of ``path`` alone: no key file opened, no path resolved
    (for commands that only read settings, run by users who may not read the keys)."""
    try:
        return Settings.model_validate(_read_toml(Path(path)))
    except ValidationError as exc:
        raise ConfigError(_first_error(str(path), exc)) from None


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: TOML syntax error: {exc}") from None


def build_config(data: dict[str, Any], source: str = "<config>", *,
                 base: Path | None = None) -> Config:
    """``source`` names the configuration in errors; relative path settings are
    relative to its folder (``config_relative``), or to ``base`` when given (text that
    is not a file yet, e.g. an import being checked)."""

    def rel(name: str) -> str:
        return config_relative(source, name) if base is None else str(base / name)

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(source, exc)) from None
    keys: dict[str, SigningKey] = {}
    for index, entry in enumerate(settings.keys):
        try:
            keys[entry.name] = load_key(rel(entry.file))
        except KeyFileError as exc:
            raise ConfigError(f"{source}: keys[{index}].file ({entry.name}): {exc}") from None
    if settings.dmarc.report_db and (base is not None or not source.startswith("<")):
        # Like key files, a relative report database lives beside the configuration.
        db = rel(settings.dmarc.report_db)
        settings = settings.model_copy(update={
            "dmarc": settings.dmarc.model_copy(update={"report_db": db})})
    # So do the proxy's files: resolved here once, not by each user of the settings.
    proxy = settings.proxy
    files = {name: rel(value) for name in ("spool_directory", "tls_cert", "tls_key")
             if (value := getattr(proxy, name)) is not None}
    if files:
        settings = settings.model_copy(update={"proxy": proxy.model_copy(update=files)})
    networks = list(_networks(settings.signing.internal_hosts))
    if settings.signing.internal_hosts_file:
        networks += _read_hosts_file(source, rel(settings.signing.internal_hosts_file))
    return Config(settings=settings, path=source, keys=keys,
                  internal_networks=tuple(networks),
                  authserv_id=settings.server.authserv_id or socket.getfqdn(),
                  trusted_relays=_networks(settings.policy.trusted_relays),
                  trusted_forwarders=_networks(settings.dmarc.trusted_forwarders))


def _networks(items: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in items)  # checked by the model


def config_relative(source: str, name: str) -> str:
    """A path setting of the configuration read from ``source``: a relative one is
    relative to the folder of ``source`` as given (a symlinked file's link, not its
    target: what the daemon reads); ``<...>`` sources have no folder."""
    path = Path(name)
    if path.is_absolute() or source.startswith("<"):
        return str(path)
    return str(Path(source).parent / path)


def _read_hosts_file(source: str, path: str) -> list[Network]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{source}: signing.internal_hosts_file: {path}: {exc.strerror}") from None
    networks: list[Network] = []
    for number, line in enumerate(lines, 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{source}: signing.internal_hosts_file: {path}:{number}: "
                              f"{item!r} is not an IP address or CIDR network") from None
    return networks


def _first_error(source: str, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"])
    loc = loc.replace(".[", "[")
    # Pydantic names union/literal branches in loc (e.g. "function-after[...]"): drop them.
    loc = ".".join(part for part in loc.split(".") if "[" not in part or (part.endswith("]")
                   and not part.startswith(("function", "literal"))))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {loc}: {msg}{more}" if loc else f"{source}: {msg}{more}"
