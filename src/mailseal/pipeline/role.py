"""Who is signed: the trust decision and the signing table (OpenDKIM's
InternalHosts + SigningTable, dkimpy-milter's MacroList), explained step by step.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from mailseal.address import addresses, domain_of
from mailseal.config.load import Config
from mailseal.config.model import SigningRule
from mailseal.dkim.sign import SignSpec
from mailseal.message import HeaderField, find_fields
from mailseal.pipeline.model import Envelope, Role


@dataclass(frozen=True)
class RoleChoice:
    role: Role
    specs: tuple[SignSpec, ...] = ()
    trail: tuple[str, ...] = ()
    author_domain: str = ""


def trusted_because(config: Config, env: Envelope) -> str | None:
    """Why the sender is one of ours, or None when it is not."""
    settings = config.settings.signing
    if env.daemon_name and env.daemon_name in settings.signing_daemon_names:
        return f"MTA daemon {env.daemon_name!r} is a signing daemon"
    if settings.sign_authenticated and env.auth_user:
        return f"client authenticated as {env.auth_user!r}"
    if config.is_internal(env.client_address):
        return f"client {env.client_address} is an internal host"
    return None


def choose_role(config: Config, env: Envelope, fields: Sequence[HeaderField]) -> RoleChoice:
    trail: list[str] = []
    why = trusted_because(config, env)
    if why is None:
        trail.append(f"verify: client {env.client_address or 'unknown'} is not internal, "
                     f"not authenticated{'' if env.auth_user is None else ' for signing'}, "
                     "not on a signing daemon")
        return RoleChoice(Role.VERIFY, trail=tuple(trail))
    trail.append(why)
    froms = find_fields(fields, b"from")
    if len(froms) != 1:
        trail.append(f"not signed: message has {len(froms)} From fields (RFC 5322 wants one)")
        return RoleChoice(Role.TRUSTED, trail=tuple(trail))
    authors = addresses(froms[0].value)
    if len(authors) != 1:
        trail.append(f"not signed: From holds {len(authors)} addresses")
        return RoleChoice(Role.TRUSTED, trail=tuple(trail))
    author = authors[0]
    domain = domain_of(author)
    rule = match_rule(config.settings.signing.rules, author)
    if rule is None:
        trail.append(f"not signed: From domain {domain} has no signing rule")
        return RoleChoice(Role.TRUSTED, trail=tuple(trail), author_domain=domain)
    specs = tuple(_spec(config, name, rule) for name in rule.keys)
    trail.append(f"sign: {author} matches rule {rule.match!r} → keys "
                 + ", ".join(f"{name} (d={s.domain} s={s.selector})"
                             for name, s in zip(rule.keys, specs, strict=True)))
    return RoleChoice(Role.SIGN, specs=specs, trail=tuple(trail), author_domain=domain)


def match_rule(rules: Sequence[SigningRule], author: str) -> SigningRule | None:
    """The first rule whose pattern matches the author address (case-insensitive)."""
    address = author.lower()
    domain = domain_of(address)
    for rule in rules:
        pattern = rule.match.lower()
        if pattern == "*":
            return rule
        if "@" in pattern:
            if fnmatch.fnmatchcase(address, pattern):
                return rule
        elif pattern.startswith("*."):
            if domain.endswith(pattern[1:]):
                return rule
        elif domain == pattern:
            return rule
    return None


def _spec(config: Config, key_name: str, rule: SigningRule) -> SignSpec:
    entry = next(k for k in config.settings.keys if k.name == key_name)
    signing = config.settings.signing
    return SignSpec(
        domain=entry.domain, selector=entry.selector, key=config.keys[key_name],
        canonicalization=signing.canonicalization, headers=signing.headers,
        oversign=signing.oversign, identity=rule.identity, timestamp=signing.timestamp,
        expire_after=signing.expire_after, body_length=signing.body_length,
    )
