"""The two-step roll-over of a configured key to a new selector.

Step one (``start``) makes the new selector's key beside the current one and records
the roll-over in ``rotation/`` beside the configuration file (one JSON file per
roll-over). Between the steps the postmaster publishes the new record. Step two
(``switch``, after the caller has checked that DNS serves the new record) points the
configuration's ``[[keys]]`` entry at the new selector. The old record must stay
published until mail signed with it has been delivered (``KEEP_OLD_DAYS``); then its
revocation (``p=`` empty, RFC 6376 §3.6.1) replaces it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mailseal.config.load import Config, config_relative
from mailseal.config.model import KeyEntry, Settings
from mailseal.dkim.publish import key_name
from mailseal.keys.configedit import replace_config, set_key_entry
from mailseal.keys.generate import NewKey, create_key, default_selector, taken_in
from mailseal.keystore import generate_key, write_text_atomic

STATE_DIR = "rotation"
STARTED, FINISHED, ABORTED = "started", "finished", "aborted"
#: How long the old record stays published after the switch: mail signed with the old
#: key may sit in queues (Postfix's maximal_queue_lifetime is 5 days) and be verified
#: on delivery or later by the recipient's tools.
KEEP_OLD_DAYS = 7
_TIME = "%Y-%m-%dT%H:%M:%SZ"


class RotationError(ValueError):
    """The roll-over cannot go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Rollover:
    domain: str
    key_name: str  # the [[keys]] entry's name
    key_type: str  # rsa | ed25519
    old_selector: str
    old_file: str  # absolute paths
    new_selector: str
    new_file: str
    created: str  # UTC, _TIME
    step: str  # STARTED, FINISHED or ABORTED
    finished: str | None = None  # when the configuration was switched (or aborted)

    @property
    def new_record_file(self) -> Path:
        return Path(self.new_file).with_suffix(".txt")

    def file_name(self) -> str:
        return f"{re.sub(r'[^A-Za-z0-9._-]', '_', self.key_name)}-{self.new_selector}.json"


def stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime(_TIME)


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _TIME).replace(tzinfo=UTC)


def state_dir(config_path: str | Path) -> Path:
    return Path(config_path).resolve().parent / STATE_DIR


def load_rollovers(folder: Path) -> list[Rollover]:
    """Every roll-over recorded in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    fields = {f.name for f in dataclasses.fields(Rollover)}
    for path in sorted(folder.glob("*.json")):
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or set(data) - fields:
                raise ValueError("unexpected content")
            rollover = Rollover(**data)
            for value in (rollover.created, rollover.finished or rollover.created):
                parse_stamp(value)
            found.append(rollover)
        except (OSError, ValueError, TypeError) as exc:
            raise RotationError(f"{path}: unreadable roll-over state ({exc}); move it away "
                                "and try again") from None
    return sorted(found, key=lambda r: r.created)


def save_rollover(folder: Path, rollover: Rollover) -> Path:
    folder.mkdir(mode=0o755, exist_ok=True)
    text = json.dumps(dataclasses.asdict(rollover), indent=2) + "\n"
    return write_text_atomic(folder / rollover.file_name(), text)


def find_entry(settings: Settings, source: str, domain: str,
               name: str | None = None) -> tuple[int, KeyEntry]:
    """The ``[[keys]]`` entry to roll over: the one for ``domain`` (named ``name``
    when the domain has several)."""
    domain = domain.lower().rstrip(".")
    matches = [(i, e) for i, e in enumerate(settings.keys)
               if e.domain == domain and (name is None or e.name == name)]
    if not matches:
        known = ", ".join(sorted({e.domain for e in settings.keys})) or "none"
        which = f"named {name!r} " if name else ""
        raise RotationError(f"{source}: no [[keys]] entry {which}for {domain} "
                            f"(configured domains: {known})")
    if len(matches) > 1:
        names = ", ".join(e.name for _, e in matches)
        raise RotationError(f"{source}: {len(matches)} [[keys]] entries for {domain} "
                            f"({names}); choose one with --key NAME")
    return matches[0]


def in_progress(rollovers: list[Rollover], key: str) -> Rollover | None:
    return next((r for r in rollovers if r.key_name == key and r.step == STARTED), None)


def key_path(config: Config, file: str) -> Path:
    """A [[keys]] file setting as a path: relative ones are relative to the config."""
    return Path(config_relative(config.path, file))


def start(config: Config, domain: str, *, name: str | None = None, selector: str | None = None,
          key_type: str | None = None, bits: int = 2048, now: datetime) -> tuple[Rollover, NewKey]:
    """Step one: make the new key beside the current one and record the roll-over."""
    _, entry = find_entry(config.settings, config.path, domain, name)
    folder = state_dir(config.path)
    running = in_progress(load_rollovers(folder), entry.name)
    if running is not None:
        raise RotationError(
            f"a roll-over of {entry.name} ({entry.domain}) is already in progress since "
            f"{show_time(running.created)} (new selector {running.new_selector}); finish it "
            "with --finish, or give it up with --abort")
    old_file = key_path(config, entry.file)
    old_key = config.keys[entry.name]
    key_dir = old_file.parent
    in_use = {e.selector for e in config.settings.keys if e.domain == entry.domain}

    def taken(candidate: str) -> bool:
        return candidate in in_use or taken_in(key_dir)(candidate)

    if selector is None:
        selector = default_selector(now, taken)
    elif selector in in_use:
        raise RotationError(f"selector {selector} is already configured for {entry.domain}; "
                            "choose a new one")
    kind = key_type or old_key.key_type
    if kind == "rsa":
        bits = max(bits, old_key.bits if old_key.key_type == "rsa" else 0)
    try:
        new = create_key(key_dir, entry.domain, selector, generate_key(kind, bits))
    except OSError as exc:
        raise RotationError(f"{key_dir}: cannot write the new key: {exc.strerror}") from None
    rollover = Rollover(domain=entry.domain, key_name=entry.name, key_type=kind,
                        old_selector=entry.selector, old_file=str(old_file),
                        new_selector=selector, new_file=str(new.private_path),
                        created=stamp(now), step=STARTED)
    save_rollover(folder, rollover)
    return rollover, new


def pending(config: Config, domain: str, name: str | None = None) -> tuple[int, KeyEntry, Rollover]:
    """The roll-over step two would finish, with its configuration entry."""
    index, entry = find_entry(config.settings, config.path, domain, name)
    rollover = in_progress(load_rollovers(state_dir(config.path)), entry.name)
    if rollover is None:
        raise RotationError(f"no roll-over in progress for {entry.name} ({entry.domain}); "
                            f"start one with: mailseal rotate -c {config.path} -d {entry.domain}")
    if entry.selector != rollover.old_selector:
        raise RotationError(
            f"{config.path}: {entry.name} now has selector {entry.selector}, not "
            f"{rollover.old_selector} as when the roll-over started; check the file, or "
            "give the roll-over up with --abort")
    if not Path(rollover.new_file).is_file():
        raise RotationError(f"{rollover.new_file}: the new key is missing; give the roll-over "
                            "up with --abort and start again")
    return index, entry, rollover


def switch(config: Config, index: int, entry: KeyEntry, rollover: Rollover, *,
           now: datetime) -> Rollover:
    """Step two, once DNS serves the new record: edit and replace the configuration."""
    path = Path(config.path)
    with open(path, encoding="utf-8", newline="") as fh:  # keep CRLF if the file has it
        text = fh.read()
    old_setting = Path(entry.file)
    new_name = Path(rollover.new_file).name
    setting = (rollover.new_file if old_setting.is_absolute()
               else str(old_setting.parent / new_name))
    edited = set_key_entry(text, index, selector=rollover.new_selector, file=setting,
                           source=config.path)
    replace_config(path, edited)
    done = dataclasses.replace(rollover, step=FINISHED, finished=stamp(now))
    save_rollover(state_dir(config.path), done)
    return done


def abort(config: Config, domain: str, name: str | None, *, now: datetime) -> Rollover:
    _, entry = find_entry(config.settings, config.path, domain, name)
    rollover = in_progress(load_rollovers(state_dir(config.path)), entry.name)
    if rollover is None:
        raise RotationError(f"no roll-over in progress for {entry.name} ({entry.domain})")
    given_up = dataclasses.replace(rollover, step=ABORTED, finished=stamp(now))
    save_rollover(state_dir(config.path), given_up)
    return given_up


def revocation_value(key_type: str) -> str:
    """RFC 6376 §3.6.1: "An empty value means that this public key has been revoked"."""
    return f"v=DKIM1; k={key_type}; p="


def revocation_bind(selector: str, domain: str, key_type: str) -> str:
    """The revocation record as one BIND line (it fits one string)."""
    return f'{key_name(selector, domain)}. IN TXT "{revocation_value(key_type)}"'


def finish_advice(done: Rollover, config_path: str, pid_file: str | None) -> list[str]:
    """What to do after the switch: reload the daemon; keep, later revoke, the old record."""
    old = key_name(done.old_selector, done.domain)
    until = parse_stamp(done.finished or done.created) + timedelta(days=KEEP_OLD_DAYS)
    revoke = revocation_value(done.key_type)
    hup = f"kill -HUP $(cat {pid_file})" if pid_file else "kill -HUP <mailseal's main pid>"
    return [
        f"step 2 of 2: {config_path}: {done.key_name} now signs with selector "
        f"{done.new_selector} ({done.new_file}); the file was checked before it was replaced.",
        "",
        f"Make the running daemon use it: systemctl reload mailseal-milter (or: {hup}).",
        "",
        f"Keep the OLD record {old} published, unchanged, until mail signed with it has been "
        f"delivered: at least {KEEP_OLD_DAYS} days, until {until:%Y-%m-%d}. Only then replace "
        "it with its revocation record:",
        "",
        revocation_bind(done.old_selector, done.domain, done.key_type),
        "",
        f"(web form: host {done.old_selector}._domainkey, type TXT, value: {revoke})",
        f"and delete {done.old_file}. `mailseal rotate -c {config_path} --status` reminds you.",
    ]


def show_time(text: str) -> str:
    return f"{text[:10]} {text[11:16]} UTC"


def describe(rollover: Rollover, config_path: str, now: datetime) -> list[str]:
    """What ``rotate --status`` says about one roll-over: where it is, what is next."""
    r = rollover
    old_name, new_name = key_name(r.old_selector, r.domain), key_name(r.new_selector, r.domain)
    head = f"{r.key_name} ({r.domain}): {r.old_selector} -> {r.new_selector}"
    if r.step == STARTED:
        return [f"{head}: IN PROGRESS, started {show_time(r.created)}",
                f"  new key {r.new_file}; record to publish in {r.new_record_file}",
                f"  next: publish {new_name}, then run: mailseal rotate -c {config_path} "
                f"-d {r.domain} --finish"]
    if r.step == ABORTED:
        return [f"{head}: ABORTED {show_time(r.finished or r.created)}",
                f"  nothing to do; the unused key {r.new_file} may be deleted"]
    switched = parse_stamp(r.finished or r.created)
    until = switched + timedelta(days=KEEP_OLD_DAYS)
    lines = [f"{head}: DONE, switched {show_time(r.finished or r.created)} "
             f"(started {show_time(r.created)})"]
    revoke = revocation_bind(r.old_selector, r.domain, r.key_type)
    if now < until:
        lines.append(f"  next: keep {old_name} published as it is until "
                     f"{until:%Y-%m-%d}, then replace it with: {revoke}")
    else:
        lines.append(f"  next: old mail has had {KEEP_OLD_DAYS} days; publish the revocation "
                     f"{revoke} and delete {r.old_file}")
    return lines

