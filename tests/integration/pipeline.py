"""Helpers for pipeline integration tests: register a simulated host, start a run, and drive
its items through the stages the way a worker would (no django-q cluster needed)."""

from __future__ import annotations

from batch_import.models import ImportRun, ImportRunItem
from batch_import.run_requests import validate_run_request
from batch_import.services import run_start
from batch_import.stages import STAGE_STEPS, StageContext
from batch_import.tasks import advance_item
from hosts.services import register_host


def register(sim, name: str = "sim"):
    return register_host(
        name=name, base_url=sim.url, auth_type="admin_api_key", admin_credential=sim.admin_key
    )


def entry(upstream, key: str | None = None, models=()):
    return {
        "base_url": upstream.base_url,
        "api_key": key if key is not None else upstream.api_key,
        "requested_models": list(models),
    }


def start(host, entries, *, mode="partial", access_mode="subscription", **extra) -> ImportRun:
    data = {
        "host_id": host.pk,
        "mode": mode,
        "access_mode": access_mode,
        "entries": entries,
        **extra,
    }
    if access_mode == "subscription":
        data.setdefault("subscription_users", ["ops@example.com"])
        data.setdefault("subscription_days", 30)
    return run_start(request=validate_run_request(data)).run


def drive(run: ImportRun, *, rounds: int = 20) -> ImportRun:
    """Advance every unfinished item until the run is terminal (or ``rounds`` run out)."""
    context = StageContext(worker_id="test-worker")
    for _ in range(rounds):
        run.refresh_from_db()
        if run.is_terminal:
            return run
        pending = run.items.exclude(current_stage="done").values_list("item_id", flat=True)
        for item_id in list(pending):
            advance_item(item_id, worker_id="test-worker", context=context)
    run.refresh_from_db()
    return run


def before_stage(monkeypatch, stage: str, change):
    """Change the host just before each run of ``stage``, as an admin or time would."""
    step = STAGE_STEPS[stage]

    def changed_then_step(item, ctx):
        change()
        return step(item, ctx)

    monkeypatch.setitem(STAGE_STEPS, stage, changed_then_step)


def before_validate(monkeypatch, change):
    """Change the host just before the gateway is asked."""
    before_stage(monkeypatch, ImportRunItem.Stage.VALIDATE, change)


def on_second_call(change):
    """``change`` from the second call on (the first meets the host as it was)."""
    calls = []

    def maybe_change():
        calls.append(1)
        if len(calls) > 1:
            change()

    return maybe_change


def warm_after_first_gateway_call(sim, monkeypatch) -> None:
    """The account stays in warm-up for the first validation and is warm by the retry, however
    slow the machine (a warm-up of fixed seconds may end before a loaded machine asks)."""
    sim.quirks.warmup_seconds = 60
    before_validate(monkeypatch, on_second_call(lambda: setattr(sim.quirks, "warmup_seconds", 0)))


def host_probe_settles_after_first_confirm(sim, monkeypatch) -> None:
    """The host's background Responses probe is still pending at our first account test and
    has settled by the retry, however slow the machine."""
    sim.quirks.responses_probe_seconds = 60
    before_stage(
        monkeypatch, ImportRunItem.Stage.CONFIRM, on_second_call(sim.settle_responses_probes)
    )
