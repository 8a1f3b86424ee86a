"""Fixtures for the capture tests (helpers live in harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Proxy, Upstream, scripted_stream, start_proxy, start_upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    exchange = scripted_stream([f"w{n} " for n in range(20)], gap_ms=40)
    server = start_upstream([exchange])
    yield Upstream(server, exchange)
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    running = start_proxy(tmp_path)
    yield running
    running.stop()
