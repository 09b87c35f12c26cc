from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ops._http import LocalServer


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A local HTTP server standing in for the Telegram API and a webhook."""
    srv = LocalServer()
    try:
        yield srv
    finally:
        srv.close()
