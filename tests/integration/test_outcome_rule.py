"""The outcome rule (ARCHITECTURE §4): every finished item has a true verdict, whatever stage
ended it, and the API, the filters and the run counters read that one field."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def api():
    user = get_user_model().objects.create_user(username="ops", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_revoked_key_is_broken_with_its_class_and_the_filter_finds_it(
    host_simulator, upstream_factory, api
):
    good = upstream_factory(models=("kimi-k2.6",))
    revoked = upstream_factory(models=("glm-4.5",), api_key="sk-the-real-key")
    run = drive(start(register(host_simulator), [entry(good), entry(revoked, key="sk-revoked")]))
    ok, dead = run.items.order_by("position")
    assert ok.access_status == "active"
    assert (dead.current_stage, dead.access_status) == ("done", "broken")
    assert (dead.last_error_stage, dead.failure_class) == ("probe", "upstream_auth")
    assert "401" in dead.last_error
    assert (run.state, run.broken_items, run.active_items) == ("completed_with_warnings", 1, 1)

    items = f"/api/batch-import/runs/{run.run_id}/items"
    broken = api.get(items, {"access_status": "broken"}).json()["items"]
    assert [i["item_id"] for i in broken] == [dead.item_id]
    assert broken[0]["failure_class"] == "upstream_auth"
    first = api.get(items).json()["items"][0]
    assert first["item_id"] == dead.item_id  # problems first


def test_an_upstream_without_models_is_broken_as_model_missing(host_simulator, upstream_factory):
    empty = upstream_factory(models=("kimi-k2.6",), models_shape="empty")
    item = drive(start(register(host_simulator), [entry(empty)])).items.get()
    assert (item.access_status, item.failure_class) == ("broken", "upstream_model_missing")
    assert item.last_error


# A real commit: the worker learns the lease ended once the item's last transition commits.
@pytest.mark.django_db(transaction=True)
def test_strict_mode_fails_on_a_probe_failure_and_no_rolled_back_item_reads_active(
    host_simulator, upstream_factory
):
    good = upstream_factory(models=("kimi-k2.6",))
    revoked = upstream_factory(models=("glm-4.5",), api_key="sk-the-real-key")
    host = register(host_simulator)
    run = start(host, [entry(good), entry(revoked, key="sk-revoked")], mode="strict")
    first, second = run.items.order_by("position")
    drive_one(first)  # the good item finishes active before the other one fails
    first.refresh_from_db()
    assert first.access_status == "active"
    run = drive(run)

    first.refresh_from_db()
    second.refresh_from_db()
    assert run.state == "failed"
    assert (second.access_status, second.failure_class) == ("broken", "upstream_auth")
    assert (first.access_status, first.failure_class) == ("broken", "rolled_back")
    assert first.rolled_back_at is not None and first.last_error.startswith("rolled back")
    assert not host_simulator.state.accounts and not host_simulator.state.groups


def drive_one(item):
    from batch_import.tasks import advance_item

    assert advance_item(item.item_id, worker_id="w") == "done"


def test_a_yellow_run_always_says_why(host_simulator, upstream_factory):
    from batch_import.projection import recent_warnings

    good = upstream_factory(models=("kimi-k2.6",))
    revoked = upstream_factory(models=("glm-4.5",), api_key="sk-the-real-key")
    run = drive(start(register(host_simulator), [entry(good), entry(revoked, key="sk-revoked")]))
    assert run.state == "completed_with_warnings"
    warnings = [str(w) for w in recent_warnings(run)]
    assert "1 item: upstream refused the key" in warnings


def test_a_requested_model_failing_the_upstream_chat_gives_way_to_one_that_passes(
    host_simulator, upstream_factory
):
    from probe.simulator.config import Fault

    upstream = upstream_factory(
        models=("glm-4.5", "kimi-k2.6"),
        faults=[Fault(path="/v1/chat/completions", model="glm-4.5", status=400, times=10_000)],
    )
    item = drive(
        start(register(host_simulator), [entry(upstream, models=("glm-4.5",))])
    ).items.get()
    assert (item.resolved_smoke_model, item.access_status) == ("kimi-k2.6", "active")
    assert "smoke_model_fallback" in item.advisory_messages
    assert item.events.filter(message__contains="glm-4.5 failed the upstream smoke chat").exists()


def test_no_account_is_provisioned_around_a_smoke_model_known_to_fail(
    host_simulator, upstream_factory
):
    from probe.simulator.config import Fault

    upstream = upstream_factory(
        models=("glm-4.5",),
        faults=[Fault(path="/v1/chat/completions", status=400, times=10_000)],
    )
    item = drive(
        start(register(host_simulator), [entry(upstream, models=("glm-4.5",))])
    ).items.get()
    assert (item.current_stage, item.access_status) == ("done", "broken")
    assert (item.last_error_stage, item.failure_class) == ("probe", "upstream_model_missing")
    assert not host_simulator.state.accounts


def test_a_key_out_of_balance_at_probe_is_quota_not_a_missing_model(
    host_simulator, upstream_factory
):
    """The upstream lists its models but answers every chat 402 "Insufficient Balance": the
    key is out of quota; no host account is made for it."""
    from probe.simulator import Fault

    broke = upstream_factory(
        models=("deepseek-chat",),
        faults=[Fault(path="/v1/chat/completions", status=402, times=10_000)],
    )
    item = drive(start(register(host_simulator), [entry(broke)])).items.get()
    assert (item.access_status, item.failure_class) == ("broken", "upstream_quota")
    assert (item.last_error_stage, item.account_id) == ("probe", None)
    assert "429/402" in item.last_error
