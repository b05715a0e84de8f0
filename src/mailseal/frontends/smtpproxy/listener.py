"""One proxy listener: its route (role, next hop), the TLS context for STARTTLS, the
connections it serves, and closing idle ones when the service stops."""

from __future__ import annotations

import asyncio
import socket
import ssl

from mailseal.config.load import Config, ConfigError
from mailseal.config.model import Listener
from mailseal.frontends.daemon import Runtime
from mailseal.frontends.smtpproxy.proxy import ProxySession, Route
from mailseal.frontends.smtpproxy.relay import RelayPool
from mailseal.frontends.smtpproxy.roles import RoleConfigs
from mailseal.frontends.smtpproxy.server import SmtpConnection


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server context for STARTTLS, when ``[proxy] tls_cert``/``tls_key`` are set."""
    p = config.settings.proxy
    if p.tls_cert is None or p.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(p.tls_cert, p.tls_key)  # made absolute by load_config
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{config.path}: proxy.tls_cert/tls_key: {exc}") from None
    return context


class ProxyListener:
    def __init__(self, runtime: Runtime, listener: Listener) -> None:
        if listener.role is None or listener.relay is None:
            raise ValueError(f"proxy listener {listener.address}: role and relay are required")
        config = runtime.config
        host, port = Listener.parse_relay(listener.relay)
        hostname = config.settings.proxy.hostname or socket.getfqdn()
        self.runtime = runtime
        self.route = Route(listener.role, host, port, hostname)
        self.configs = RoleConfigs(listener.role)
        self.tls = tls_context(config)
        self.pool = RelayPool(host, port)
        self.connections: set[SmtpConnection] = set()
        self._watcher: asyncio.Task[None] | None = None

    def connection(self) -> SmtpConnection:
        """A new client connection (asyncio's protocol factory)."""
        server = self.runtime.config.settings.server
        connection = SmtpConnection(
            self._session, max_size=server.max_message_bytes,
            idle_timeout=server.session_timeout, stopping=self.runtime.stopping,
            tls=self.tls, done=self.connections.discard)
        self.connections.add(connection)
        return connection

    def _session(self, peer: str | None) -> ProxySession:
        return ProxySession(self.runtime, self.route, self.configs, peer, self.pool)

    def watch_stopping(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._close_idle_at_stop())

    async def _close_idle_at_stop(self) -> None:
        await self.runtime.stopping.wait()
        self.pool.close()
        for connection in list(self.connections):
            if connection.waiting_idle and connection.task is not None:
                connection.task.cancel()


async def start_listener(runtime: Runtime, listener: Listener,
                         sock: socket.socket | None = None) -> asyncio.Server:
    """Start serving one proxy listener (on ``sock`` when it was bound beforehand)."""
    from mailseal.frontends.milter.server import bind_listener

    proxy = ProxyListener(runtime, listener)
    if sock is None:
        sock = bind_listener(listener)
    server = await asyncio.get_running_loop().create_server(proxy.connection, sock=sock)
    proxy.watch_stopping()
    return server
