"""Host-test-only fixtures: the throwaway upstream the host simulator forwards to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.hosts.fake_upstream import FakeUpstream


@pytest.fixture
def fake_upstream_factory() -> Iterator[Callable[..., FakeUpstream]]:
    started: list[FakeUpstream] = []

    def start(**options: Any) -> FakeUpstream:
        upstream = FakeUpstream(**options).start()
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.stop()


@pytest.fixture
def fake_upstream(fake_upstream_factory: Callable[..., FakeUpstream]) -> FakeUpstream:
    """Supports /v1/responses; the key is ``sk-upstream-test``."""
    return fake_upstream_factory()
