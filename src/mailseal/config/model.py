"""The one typed configuration: every door (milter, proxy, policy server, CLI)
reads the same file into these frozen models. Field by field in docs/configuration.md.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mailseal.dkim.signature import valid_domain

ActionName = Literal["accept", "reject", "tempfail", "quarantine", "discard"]

#: OpenDKIM's default signed-and-oversigned set when signing (issue: replay defence).
DEFAULT_OVERSIGN = ("from", "to", "cc", "subject", "date", "message-id", "reply-to",
                    "mime-version", "content-type", "content-transfer-encoding")


def check_networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """Each item an IP address or a CIDR network, or ValueError naming the bad one."""
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class ActionSpec(_Model):
    """An action, with the SMTP reply to give for reject/tempfail."""

    action: ActionName
    reply: str | None = None  # "550 5.7.1 text"; None: the built-in text

    @field_validator("reply")
    @classmethod
    def _reply(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[45][0-9][0-9]( [245]\.[0-9]{1,3}\.[0-9]{1,3})?( [ -~]*)?", value):
            raise ValueError("reply must look like '550 5.7.1 text' (4xx/5xx code, optional "
                             "enhanced code, printable ASCII text)")
        return value


def _action(value: object) -> object:
    return {"action": value} if isinstance(value, str) else value


class ServerSettings(_Model):
    authserv_id: str = ""  # "" = this host's FQDN, resolved at load time
    log_format: Literal["text", "json"] = "text"
    log_target: Literal["stderr", "syslog"] = "stderr"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    session_timeout: float = Field(default=300.0, gt=0)  # seconds a milter session may idle
    message_timeout: float = Field(default=60.0, gt=0)  # seconds for judging one message
    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    workers: int = Field(default=1, ge=1, le=64)  # processes sharing the listeners
    pid_file: str | None = None


class Listener(_Model):
    kind: Literal["milter", "proxy", "policy"]
    address: str  # inet:HOST:PORT, inet:PORT@HOST, inet6:[ADDR]:PORT, unix:/path
    owner: str | None = None  # unix sockets
    group: str | None = None
    mode: str = "0660"
    role: Literal["out", "in"] | None = None  # proxy
    relay: str | None = None  # proxy next hop HOST:PORT

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError("mode must be octal like '0660'")
        return value

    @field_validator("relay")
    @classmethod
    def _relay(cls, value: str | None) -> str | None:
        if value is not None:
            cls.parse_relay(value)
        return value

    @staticmethod
    def parse_relay(value: str) -> tuple[str, int]:
        """A proxy's next hop ``HOST:PORT`` (``[::1]:10026`` for IPv6) → (host, port)."""
        host, sep, port_text = value.rpartition(":")
        host = host.strip("[]")
        if not sep or not host:
            raise ValueError(f"relay {value!r} must be HOST:PORT")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"invalid port {port_text!r}")
        return host, int(port_text)

    @model_validator(mode="after")
    def _proxy(self) -> Listener:
        if self.kind == "proxy" and (self.role is None or self.relay is None):
            raise ValueError("a proxy listener needs role ('out' or 'in') and relay")
        return self


class ProxySettings(_Model):
    """The SMTP proxy (``kind = "proxy"`` listeners), all of them."""

    hostname: str = ""  # greeting and EHLO name; "" = this host's FQDN
    spool_threshold: int = Field(default=1024 * 1024, ge=0)  # bytes kept in memory per message
    spool_directory: str | None = None  # None: the system's temporary directory
    relay_connect_timeout: float = Field(default=10.0, gt=0)  # connect + greeting
    relay_timeout: float = Field(default=60.0, gt=0)  # each command, each write
    relay_data_timeout: float = Field(default=60.0, gt=0)  # the reply to end of data
    x_dkim_authentication_results: bool = False  # role in: DKIMproxy's header too
    tls_cert: str | None = None  # PEM chain; with tls_key, STARTTLS is offered
    tls_key: str | None = None

    @model_validator(mode="after")
    def _tls(self) -> ProxySettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class PolicySettings(_Model):
    """The Postfix policy service (``kind = "policy"`` listeners): SPF at RCPT time."""

    trusted_relays: tuple[str, ...] = ()  # CIDRs never checked (backup MX, forwarders)
    skip_authenticated: bool = True  # SASL clients are ours: not checked
    on_fail: Literal["reject", "prepend"] = "reject"
    fail_reply: str = "550 5.7.23"  # the reply code before the explanation
    on_temperror: Literal["defer", "prepend"] = "defer"
    on_permerror: Literal["prepend", "reject"] = "prepend"
    timeout: float = Field(default=10.0, gt=0, le=120)  # per request, then DEFER_IF_PERMIT

    @field_validator("trusted_relays")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_networks(value)


class SpfSettings(_Model):
    """SPF in the milter and the proxy (the policy service has [policy])."""

    enabled: bool = True  # check MAIL FROM and write spf= into Authentication-Results


class DmarcSettings(_Model):
    """DMARC in the milter and the proxy."""

    enabled: bool = True  # evaluate and write dmarc= into Authentication-Results
    mode: Literal["9989", "7489"] = "9989"  # RFC 9989 tree walk, or RFC 7489 + PSL
    enforce: bool = False  # act on p=reject / p=quarantine failures (default: record)
    trusted_forwarders: tuple[str, ...] = ()  # CIDRs whose failures are never enforced
    reject_reply: str = "550 5.7.1 rejected by the DMARC policy of the sender's domain"
    report_db: str | None = None  # SQLite file recording every evaluation (reports)
    adsp: bool = False  # also write the historic dkim-adsp= (informational only)

    @field_validator("trusted_forwarders")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_networks(value)


class DnsSettings(_Model):
    nameservers: tuple[str, ...] = ()  # empty: /etc/resolv.conf
    timeout: float = Field(default=5.0, gt=0, le=60)
    cache_size: int = Field(default=10_000, ge=0)


class KeyEntry(_Model):
    name: str
    domain: str
    selector: str
    file: str

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.lower().rstrip(".")
        if not valid_domain(value):
            raise ValueError(f"{value!r} is not a DNS domain name")
        return value

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        if not valid_domain(value):
            raise ValueError(f"{value!r} is not a valid selector (DNS labels)")
        return value


class SigningRule(_Model):
    """One line of the signing table: who (pattern) is signed with which keys.

    Patterns: ``*`` anyone; ``user@example.com``; ``*@example.com`` anyone at the
    domain; ``example.com`` the same; ``*.example.com`` any subdomain (not the domain
    itself). Matching is case-insensitive, first rule wins (OpenDKIM SigningTable
    with refile: patterns)."""

    match: str
    keys: tuple[str, ...] = Field(min_length=1)
    identity: str | None = None  # i=; "" none; "%u@%d"? kept simple: a literal


class SigningSettings(_Model):
    internal_hosts: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    internal_hosts_file: str | None = None
    sign_authenticated: bool = True
    signing_daemon_names: tuple[str, ...] = ()
    rules: tuple[SigningRule, ...] = ()
    canonicalization: str = "relaxed/simple"
    headers: tuple[str, ...] | None = None  # None: RFC 6376 §5.4.1 list + MIME
    oversign: tuple[str, ...] = DEFAULT_OVERSIGN
    expire_after: int | None = Field(default=None, gt=0)
    timestamp: bool = True
    body_length: bool = False

    @field_validator("internal_hosts")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_networks(value)

    @field_validator("canonicalization")
    @classmethod
    def _canon(cls, value: str) -> str:
        head, _, body = value.partition("/")
        if head not in ("simple", "relaxed") or body not in ("", "simple", "relaxed"):
            raise ValueError("must be simple or relaxed, as header/body")
        return value


class VerifySettings(_Model):
    on_bad_signature: ActionSpec = ActionSpec(action="accept")
    on_no_signature: ActionSpec = ActionSpec(action="accept")
    on_dns_error: ActionSpec = ActionSpec(action="tempfail")
    on_key_not_found: ActionSpec = ActionSpec(action="accept")
    on_internal_error: ActionSpec = ActionSpec(action="tempfail")
    on_signing_failure: ActionSpec = ActionSpec(action="tempfail")
    minimum_key_bits: int = Field(default=1024, ge=512)
    allow_sha1: bool = False
    max_signatures: int = Field(default=8, ge=1, le=100)
    clock_skew: int = Field(default=300, ge=0)
    partial_body_result: Literal["policy", "pass"] = "policy"
    must_be_signed: tuple[str, ...] = ()
    remove_forged_authres: bool = True
    max_header_fields: int = Field(default=1000, ge=10)

    _coerce = field_validator("on_bad_signature", "on_no_signature", "on_dns_error",
                              "on_key_not_found", "on_internal_error", "on_signing_failure",
                              mode="before")(_action)


class Settings(_Model):
    server: ServerSettings = ServerSettings()
    listeners: tuple[Listener, ...] = ()
    dns: DnsSettings = DnsSettings()
    keys: tuple[KeyEntry, ...] = ()
    signing: SigningSettings = SigningSettings()
    verify: VerifySettings = VerifySettings()
    policy: PolicySettings = PolicySettings()
    spf: SpfSettings = SpfSettings()
    dmarc: DmarcSettings = DmarcSettings()
    proxy: ProxySettings = ProxySettings()

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [k.name for k in self.keys]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate key name(s): {', '.join(sorted(dupes))}")
        for i, rule in enumerate(self.signing.rules):
            for key in rule.keys:
                if key not in names:
                    raise ValueError(f"signing.rules[{i}] names key {key!r}, "
                                     "which no [[keys]] entry defines")
        return self


def parse_address(value: str) -> tuple[str, str, int]:
    """Listener address → (family, host-or-path, port). Families: inet, inet6, unix.

    Accepts ``inet:127.0.0.1:8891``, the Sendmail/OpenDKIM form ``inet:8891@127.0.0.1``,
    ``inet6:[::1]:8891``, ``unix:/path`` and ``local:/path``."""
    kind, sep, rest = value.partition(":")
    if not sep:
        raise ValueError("address needs a type prefix: inet:, inet6: or unix:")
    kind = kind.lower()
    if kind in ("unix", "local"):
        if not rest.startswith("/"):
            raise ValueError("a unix socket path must be absolute")
        return "unix", rest, 0
    if kind not in ("inet", "inet6"):
        raise ValueError(f"unknown address type {kind!r}")
    if "@" in rest:
        port_text, _, host = rest.partition("@")
    else:
        host, _, port_text = rest.rpartition(":")
    host = host.strip("[]") or ("::1" if kind == "inet6" else "127.0.0.1")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"invalid port {port_text!r}")
    return kind, host, int(port_text)
