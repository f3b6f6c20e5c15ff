"""Preview (dry run): a full plan per entry and nothing written to the host (seed 002 §5.3)."""

from __future__ import annotations

import pytest

from batch_import.errors import Conflict
from batch_import.services import run_promote
from hosts.models import ManagedResource
from tests.integration.pipeline import drive, entry, register, start
from tests.integration.test_rollback import dump

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_preview_writes_nothing_and_the_real_run_decides_the_same(host_simulator, upstream_factory):
    a = upstream_factory(models=("Kimi-K2.6", "deepseek-ai/DeepSeek-V4-Pro"))
    b = upstream_factory(models=("glm-4.5",))
    host = register(host_simulator)
    before = dump(host_simulator)
    writes_before = [r for r in host_simulator.state.requests if r.method != "GET"]

    preview = drive(start(host, [entry(a), entry(b), entry(a)], dry_run=True))

    assert dump(host_simulator) == before
    assert [r for r in host_simulator.state.requests if r.method != "GET"] == writes_before
    assert not ManagedResource.objects.exists()
    assert preview.is_preview and preview.state == "completed"
    first = preview.items.order_by("position").first()
    assert first.access_status == "unknown" and first.current_stage == "done"
    assert first.events.filter(event_type="previewed").exists()
    plan = first.preview_plan
    assert plan["decision"]["action"] == "create"
    assert plan["group"] == {"name": f"rm-{first.provider_id}", "id": None, "action": "create"}
    assert plan["channel"]["action"] == "create"
    assert plan["channel"]["mapping_added"]["deepseek-ai/DeepSeek-V4-Pro"] == "deepseek-v4-pro"
    assert plan["account"]["action"] == "create"
    assert plan["access"][0]["user"] == "create" and plan["conflicts"] == []
    assert plan["duplicate_entries"] == [2]
    assert first.canonical_model_families and first.resolved_smoke_model

    run = drive(run_promote(run_id=preview.run_id, actor="ops"))

    assert run.preview_of == preview.run_id and run.state == "completed"
    for planned, real in zip(
        preview.items.order_by("position"), run.items.order_by("position"), strict=True
    ):
        assert real.account_resolution == planned.account_resolution == "created"
        assert real.events.filter(event_type="created", message__contains="reused").exists()
        assert not real.events.filter(stage="probe", event_type="stage_started").exists()
        assert real.access_status == "active"
    preview.refresh_from_db()
    assert preview.promoted_to == run.run_id
    with pytest.raises(Conflict, match="already promoted"):
        run_promote(run_id=preview.run_id)


def test_preview_of_a_known_provider_plans_reuse_like_the_real_run(
    host_simulator, upstream_factory
):
    # The host's own background probe of a new account settles at once, so nothing changes
    # on the host after the first run however slow the machine is.
    host_simulator.quirks.responses_probe_seconds = 0
    upstream = upstream_factory(models=("glm-4.5",))
    host = register(host_simulator)
    drive(start(host, [entry(upstream)]))
    before = dump(host_simulator)
    preview = drive(start(host, [entry(upstream)], dry_run=True)).items.get()
    assert dump(host_simulator) == before
    assert preview.preview_plan["decision"]["action"] == "reuse"
    assert preview.preview_plan["group"]["action"] == "reuse"
    assert preview.preview_plan["channel"]["action"] == "unchanged"
    assert preview.preview_plan["access"][0]["subscription"] == "reuse"
    real = drive(start(host, [entry(upstream)])).items.get()
    assert real.account_resolution == preview.account_resolution == "reused"
    assert real.account_id == preview.reused_from_account_id


def test_a_real_run_cannot_be_promoted(host_simulator, upstream_factory):
    run = drive(start(register(host_simulator), [entry(upstream_factory(models=("glm-4.5",)))]))
    with pytest.raises(Conflict, match="not a preview"):
        run_promote(run_id=run.run_id)


def test_preview_plans_a_host_user_it_did_not_create_as_existing_and_the_real_run_agrees(
    host_simulator, upstream_factory
):
    """A user the host already had gets the subscription, no key; the validation user (made by
    relay-manager) is planned to validate. Nothing is written by the preview."""
    from hosts.sub2api import client_for_host
    from relay_project.crypto import Secret

    host = register(host_simulator)
    with client_for_host(host) as client:
        client.users.create(email="ops@example.com", password=Secret("x" * 12), balance=0.0)
    before = dump(host_simulator)
    item = drive(
        start(host, [entry(upstream_factory(models=("glm-4.5",)))], dry_run=True)
    ).items.get()
    assert dump(host_simulator) == before
    assert item.preview_plan["conflicts"] == []
    ops, validator = item.preview_plan["access"]
    assert (ops["user"], ops["subscription"], ops["key"], ops["validation"]) == (
        "existing",
        "assign",
        "",
        False,
    )
    assert validator["email"] == "relay-manager-validation@relay-manager.invalid"
    assert (validator["user"], validator["listed"], validator["validation"]) == (
        "create",
        False,
        True,
    )
    real = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))])).items.get()
    assert real.access_status == "active"  # the real run agrees
    assert [(u["email"], u["outcome"]) for u in real.subscription_access] == [
        ("ops@example.com", "existing"),
        ("relay-manager-validation@relay-manager.invalid", "created"),
    ]
