"""Running the daemons: bind the listeners, then serve them in one process or in
several worker processes that share the listening sockets (the kernel spreads new
connections over them), under a small supervisor that forwards SIGHUP/SIGTERM and
restarts a worker that died."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence

from mailseal.config.load import Config, load_config
from mailseal.config.model import Listener
from mailseal.frontends.daemon import Runtime

log = logging.getLogger("mailseal.service")

Starter = Callable[[Runtime, Listener, socket.socket], Awaitable[asyncio.Server]]


def _starter(kind: str) -> Starter:
    if kind == "milter":
        from mailseal.frontends.milter.server import start_listener
        return start_listener
    if kind == "proxy":
        from mailseal.frontends.smtpproxy.listener import start_listener as start_proxy
        return start_proxy
    if kind == "policy":
        from mailseal.frontends.policyd.server import start_listener as start_policy
        return start_policy
    raise ValueError(f"no server for listener kind {kind!r} yet")


def bind_all(listeners: Sequence[Listener]) -> list[socket.socket]:
    # One binder for every kind: inet, inet6 and unix sockets alike (the proxy's too).
    from mailseal.frontends.milter.server import bind_listener

    return [bind_listener(listener) for listener in listeners]


def run_service(path: str, kinds: Sequence[str], *, workers: int | None = None,
                config: Config | None = None) -> int:
    config = config or load_config(path)
    listeners = [item for item in config.settings.listeners if item.kind in kinds]
    if not listeners:
        raise ValueError(f"{path}: no [[listeners]] of kind {', '.join(kinds)}")
    socks = bind_all(listeners)
    count = workers or config.settings.server.workers
    if config.settings.server.pid_file:
        with open(config.settings.server.pid_file, "w") as fh:
            fh.write(f"{os.getpid()}\n")
    if count <= 1:
        asyncio.run(serve(path, config, listeners, socks))
        return 0
    return _supervise(count, path, config, listeners, socks)


async def serve(path: str, config: Config, listeners: Sequence[Listener],
                socks: Sequence[socket.socket]) -> None:
    runtime = Runtime(path, config)
    runtime.setup_logging()
    runtime.install_signals()
    servers = [await _starter(item.kind)(runtime, item, sock)
               for item, sock in zip(listeners, socks, strict=True)]
    # What exists now (modules, configuration, keys) lives as long as the process: the
    # collector need not walk it again on every full collection (gc.freeze).
    gc.collect()
    gc.freeze()
    log.info("serving %s (pid %d)", ", ".join(item.address for item in listeners), os.getpid())
    await runtime.stopping.wait()
    for server in servers:
        server.close()
    # Let sessions in flight finish (bounded), then stop.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(asyncio.all_tasks()) > 1:
        await asyncio.sleep(0.1)
    log.info("stopped")


def _supervise(count: int, path: str, config: Config, listeners: Sequence[Listener],
               socks: Sequence[socket.socket]) -> int:
    children: dict[int, float] = {}
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # worker
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            try:
                asyncio.run(serve(path, config, listeners, socks))
            finally:
                os._exit(0)
        children[pid] = time.monotonic()

    def forward(sig: int, _frame: object) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for _ in range(count):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        started = children.pop(pid, 0.0)
        if not stopping:
            logging.getLogger("mailseal.service").error(
                "worker %d exited (status %d); starting another", pid, status)
            if time.monotonic() - started < 1:
                time.sleep(1)  # don't spin on a worker that dies at once
            spawn()
    return 0
