"""Every bounded call an item makes counts toward its run's fair share (relay_project.limits):
the worker names the run around each stage, and the probe's threads carry it along."""

from __future__ import annotations

import threading

import pytest

from batch_import.tasks import advance_item
from relay_project import limits
from tests.integration.pipeline import entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


class Recording(limits.LocalBackend):
    def __init__(self) -> None:
        super().__init__()
        self.claims: list[tuple[str, str, str]] = []  # (key kind, run, thread name)

    def try_acquire(self, key, size, claim=None):
        kind = key.partition(":")[0]
        self.claims.append((kind, claim.run if claim else None, threading.current_thread().name))
        return super().try_acquire(key, size, claim)


# A real commit: the worker learns the lease ended once the item's last transition commits.
@pytest.mark.django_db(transaction=True)
def test_an_items_calls_hold_places_for_its_run(
    host_simulator, upstream_factory, monkeypatch, fast_pipeline
):
    recording = Recording()
    monkeypatch.setattr(limits, "_backend", recording)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream)])
    recording.claims.clear()  # registering the host and starting the run belong to no run

    assert advance_item(run.items.get().item_id, worker_id="w") == "done"

    kinds = {kind for kind, _, _ in recording.claims}
    assert kinds == {"upstream", "host"}
    assert any(thread.startswith("probe") for _, _, thread in recording.claims)
    assert {claim_run for _, claim_run, _ in recording.claims} == {run.run_id}
