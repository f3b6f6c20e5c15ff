"""Keys of one provider validate through one group and one key: the host lists the gateway's
models once for them, and serves each its own chat completion."""

from __future__ import annotations

import pytest

from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.mark.parametrize(("reuse", "listings"), [(10, 1), (0, 3)])
def test_a_providers_keys_share_the_gateways_list(
    host_simulator_factory, upstream_factory, settings, reuse, listings
):
    settings.RELAY_VALIDATE_LISTING_REUSE = reuse
    sim = host_simulator_factory()
    upstream = upstream_factory(models=("glm-4.5",), api_key=None)
    keys = [entry(upstream, key=f"sk-key-{n}") for n in range(3)]
    run = drive(start(register(sim), keys, access_mode="subscription"))

    assert sorted(run.items.values_list("access_status", flat=True)) == ["active"] * 3
    gateway = [r for r in sim.requests if r.path.startswith("/v1/")]
    assert sum(r.path == "/v1/models" for r in gateway) == listings
    assert sum(r.path == "/v1/chat/completions" for r in gateway) == 3
