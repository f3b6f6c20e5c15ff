"""Fixtures that start the sub2api host simulator on loopback.

* ``host_simulator``: a fresh [NEW]-mode simulator on an ephemeral 127.0.0.1 port.
* ``host_simulator_factory(**options)``: more simulators with custom quirks, e.g.
  ``host_simulator_factory(old=True)``, ``(probe_403=True, warmup_seconds=30)`` or
  ``(upstream_transport=httpx.MockTransport(...))``; every ``Quirks`` field and every
  ``HostSimulator`` keyword is accepted. All are stopped at teardown.
* ``old_host_simulator``: the [OLD] 0.1.1 build (no channels, no chat completions).
* ``sim_client``: a ``Sub2ApiClient`` on ``host_simulator`` (admin key, short timeout, no
  retries).

Quirks stay switchable during a test: ``host_simulator.quirks.warmup_seconds = 0``,
``host_simulator.fail_next("GET", "/api/v1/admin/groups", status=503)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any

import pytest

from hosts.simulator import HostSimulator, Quirks
from hosts.sub2api import Sub2ApiClient

QUIRK_FIELDS = frozenset(f.name for f in fields(Quirks))


@pytest.fixture
def host_simulator_factory() -> Iterator[Callable[..., HostSimulator]]:
    started: list[HostSimulator] = []

    def start(**options: Any) -> HostSimulator:
        quirks = Quirks(**{k: options.pop(k) for k in list(options) if k in QUIRK_FIELDS})
        sim = HostSimulator(quirks=quirks, **options).start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def host_simulator(host_simulator_factory: Callable[..., HostSimulator]) -> HostSimulator:
    return host_simulator_factory()


@pytest.fixture
def old_host_simulator(host_simulator_factory: Callable[..., HostSimulator]) -> HostSimulator:
    return host_simulator_factory(old=True)


@pytest.fixture
def sim_client(host_simulator: HostSimulator) -> Iterator[Sub2ApiClient]:
    client = Sub2ApiClient(
        host_simulator.url, admin_api_key=host_simulator.admin_key, timeout=5, retries=0
    )
    yield client
    client.close()
