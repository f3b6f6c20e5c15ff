"""[OLD] leaves an orphan account when binding its groups fails after the insert (§13):
the pipeline's retry adopts it by its deterministic name instead of making a twin; a key new
to the host is created without a search of the host's accounts."""

from __future__ import annotations

import pytest

from batch_import.identity import api_key_fingerprint, normalize_provider_id
from hosts.simulator.rows import SimAccount
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_an_orphan_from_a_failed_create_is_adopted_not_twinned(
    host_simulator_factory, upstream_factory
):
    sim = host_simulator_factory(old=True)
    upstream = upstream_factory(models=("glm-4.5",))
    provider_id = normalize_provider_id(upstream.base_url)
    name = f"rm-{provider_id}-{api_key_fingerprint(upstream.api_key).removeprefix('sha256:')}"
    # What the failed create leaves: the row, no group, and a 500 for the create.
    sim.fail_next("POST", "/api/v1/admin/accounts", status=500)
    with sim.state.lock:
        orphan_id = sim.state.new_id("account")
        sim.state.accounts[orphan_id] = SimAccount(
            id=orphan_id,
            name=name,
            platform="openai",
            type="apikey",
            credentials={"api_key": upstream.api_key, "base_url": upstream.base_url},
        )

    run = drive(start(register(sim), [entry(upstream)], access_mode="subscription"))

    item = run.items.get()
    named = [a for a in sim.state.accounts.values() if a.name == name]
    assert [a.id for a in named] == [orphan_id]  # adopted, no twin
    assert item.account_id == orphan_id
    assert named[0].group_ids == [item.group_id]


def test_a_key_new_to_the_host_is_not_searched_for(host_simulator_factory, upstream_factory):
    """Only a provisioning stage creates an account, so with no earlier one for the key on
    the host there is no orphan to look for; a later run of the same key looks."""
    sim = host_simulator_factory()
    upstream = upstream_factory(models=("glm-4.5",))
    host = register(sim)

    def searches() -> int:
        return sum(
            1
            for request in sim.requests
            if request.method == "GET"
            and request.path == "/api/v1/admin/accounts"
            and "search" in request.query
        )

    first = drive(start(host, [entry(upstream)], access_mode="subscription"))
    assert first.items.get().account_id is not None and searches() == 0

    second = drive(start(host, [entry(upstream)], access_mode="subscription"))
    assert second.items.get().account_id == first.items.get().account_id  # reused
    assert searches() == 1
