"""Fixtures that start the upstream (OpenAI-compatible provider) simulator on loopback.

``upstream_factory(models=..., **UpstreamConfig options)`` starts a simulator on an ephemeral
127.0.0.1 port and stops it at teardown; call it as often as a test needs upstreams.
``upstream`` is one started simulator with two models; ``upstream_client`` is an
``UpstreamClient`` for it with a short timeout and no retries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from probe.client import UpstreamClient
from probe.simulator import SimModel, UpstreamConfig, UpstreamSimulator

DEFAULT_UPSTREAM_MODELS = ("kimi-k2.6", "deepseek-chat")
# Long enough to outlast every client timeout used in tests; stop() cuts it short.
TEST_HANG_SECONDS = 5.0

UpstreamFactory = Callable[..., UpstreamSimulator]


@pytest.fixture
def upstream_factory() -> Iterator[UpstreamFactory]:
    """Start simulated upstreams: ``upstream_factory(["m1", SimModel("m2", tools=False)],
    api_key="sk-x", responses_status=404, latency=0.1, ...)``."""
    started: list[UpstreamSimulator] = []

    def start(
        models: Sequence[str | SimModel | Mapping[str, Any]] = DEFAULT_UPSTREAM_MODELS,
        **options: Any,
    ) -> UpstreamSimulator:
        options.setdefault("hang_seconds", TEST_HANG_SECONDS)
        simulator = UpstreamSimulator(UpstreamConfig(models=list(models), **options)).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in reversed(started):
        simulator.stop()


@pytest.fixture
def upstream(upstream_factory: UpstreamFactory) -> UpstreamSimulator:
    return upstream_factory()


@pytest.fixture
def upstream_client(upstream: UpstreamSimulator) -> Iterator[UpstreamClient]:
    client = UpstreamClient(upstream.base_url, upstream.api_key, timeout=2.0, retries=0, backoff=0)
    yield client
    client.close()
