"""End-to-end fixtures: a capture sink and private Postfix instances (see the mta package).

Tests that use them should skip when ``mta.missing_postfix()`` names a reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mta import MailSink, PrivatePostfix


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    """A started ``MailSink``; stopping it at teardown raises what its thread hit."""
    with MailSink() as sink:
        yield sink


@pytest.fixture
def private_postfix() -> Iterator[Callable[..., PrivatePostfix]]:
    """A factory: ``start(**PrivatePostfix options)`` returns a running instance;
    every instance made is stopped and its directory removed at teardown."""
    with contextlib.ExitStack() as stack:

        def start(**options: Any) -> PrivatePostfix:
            instance = stack.enter_context(contextlib.closing(PrivatePostfix(**options)))
            return instance.start()

        yield start
