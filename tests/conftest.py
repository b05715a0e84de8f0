"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dnsserver import ZoneServer


@pytest.fixture
def zone_server() -> Iterator[Callable[..., ZoneServer]]:
    """A factory: ``start(zone_text, ..., set_ad=False, udp_limit=None)`` returns a
    running loopback :class:`ZoneServer`; every server started is stopped at teardown."""
    servers: list[ZoneServer] = []

    def start(*zones: str, set_ad: bool = False, udp_limit: int | None = None) -> ZoneServer:
        server = ZoneServer(*zones, set_ad=set_ad, udp_limit=udp_limit)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()
