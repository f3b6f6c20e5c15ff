"""No item loops: an exception no stage foresaw is retried a bounded number of times, each
retry an event, then the item ends with the error, whatever stage raised it."""

from __future__ import annotations

import pytest

from batch_import import stages
from batch_import.tasks import UNEXPECTED_ERROR_RETRIES, advance_item
from tests.integration.pipeline import entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.mark.parametrize("stage", ["probe", "provision", "confirm", "validate"])
@pytest.mark.parametrize(
    "error",
    [
        UnicodeEncodeError("ascii", "sk-é", 3, 4, "ordinal not in range(128)"),
        RuntimeError("sk-secret-in-the-message"),
    ],
    ids=["unicode", "runtime"],
)
def test_a_stage_that_keeps_raising_ends_the_item(
    stage, error, host_simulator, upstream_factory, monkeypatch, fast_pipeline, caplog
):
    calls = []

    def raising(item, context):
        calls.append(item.current_stage)
        raise error

    monkeypatch.setitem(stages.STAGE_STEPS, stage, raising)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream)])
    item = run.items.get()

    assert advance_item(item.item_id, worker_id="w") == "failed"

    item.refresh_from_db()
    assert calls == [stage] * (UNEXPECTED_ERROR_RETRIES + 1)
    assert item.current_stage == "done" and item.lease_owner is None
    assert item.last_error_stage == stage
    assert item.last_error.startswith(f"unexpected {type(error).__name__} in the {stage} stage")
    retries = item.events.filter(event_type="retry_scheduled", stage=stage)
    assert retries.count() == UNEXPECTED_ERROR_RETRIES
    assert item.events.filter(event_type="error", stage=stage).count() == 1
    assert "sk-secret" not in item.last_error and "sk-é" not in item.last_error
    run.refresh_from_db()
    assert run.is_terminal
    assert advance_item(item.item_id, worker_id="w2") in ("done", "not_claimed")


# A real commit: the worker learns the lease ended once the item's last transition commits.
@pytest.mark.django_db(transaction=True)
def test_a_stage_that_recovers_after_one_unexpected_error_goes_on(
    host_simulator, upstream_factory, monkeypatch, fast_pipeline
):
    real = stages.STAGE_STEPS["provision"]
    failures = [RuntimeError("blip")]

    def flaky(item, context):
        if failures:
            raise failures.pop()
        real(item, context)

    monkeypatch.setitem(stages.STAGE_STEPS, "provision", flaky)
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = start(register(host_simulator), [entry(upstream)])
    item = run.items.get()
    assert advance_item(item.item_id, worker_id="w") == "done"
    item.refresh_from_db()
    assert item.access_status == "active"
    assert item.events.filter(event_type="retry_scheduled", stage="provision").count() == 1
