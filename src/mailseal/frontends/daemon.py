"""What every long-running door shares: the configuration holder with atomic
reload on SIGHUP, the DNS resolver and its cache, logging, and shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

from mailseal.config.load import Config, ConfigError, load_config
from mailseal.dns.cache import DnsCache
from mailseal.dns.resolver import DnsResolver
from mailseal.log import setup_logging

log = logging.getLogger("mailseal.daemon")


def make_resolver(config: Config, cache: DnsCache | None = None) -> DnsResolver:
    dns = config.settings.dns
    return DnsResolver(dns.nameservers, timeout=dns.timeout,
                       cache=cache if cache is not None else DnsCache(max(dns.cache_size, 1)))


class Runtime:
    """The configuration in force. Sessions take ``runtime.config`` once when they
    start and keep that object: a reload swaps the reference, it never mutates a
    configuration a session is using."""

    def __init__(self, path: str, config: Config | None = None) -> None:
        self.path = path
        self.config = config if config is not None else load_config(path)
        self.resolver = make_resolver(self.config)
        self.stopping = asyncio.Event()

    def setup_logging(self) -> None:
        s = self.config.settings.server
        setup_logging(s.log_format, s.log_target, s.log_level)

    def reload(self) -> bool:
        """Load the file again; on any error keep the old configuration."""
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            log.error("reload failed, keeping the configuration in force: %s", exc)
            return False
        if new.settings.dns != self.config.settings.dns:
            self.resolver = make_resolver(new)
        self.config = new
        self.setup_logging()
        log.info("configuration reloaded from %s", self.path)
        return True

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
