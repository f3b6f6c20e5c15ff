from __future__ import annotations

import pytest

from batch_import.errors import Conflict, InvalidTransition
from batch_import.models import ImportRun, ImportRunItem, ImportRunItemEvent, LegacyImportBatch
from batch_import.run_requests import validate_run_request
from batch_import.services import item_retry, run_cancel, run_start
from tests.factories import HostFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def make_request(host, entries):
    return validate_run_request(
        {
            "host_id": host.pk,
            "mode": "partial",
            "access_mode": "subscription",
            "subscription_users": ["ops@example.com"],
            "subscription_days": 30,
            "entries": entries,
        }
    )


def entry(url, key, models=()):
    return {"base_url": url, "api_key": key, "requested_models": list(models)}


def test_run_start_creates_running_run_items_and_legacy_batch(django_capture_on_commit_callbacks):
    host = HostFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        started = run_start(
            request=make_request(
                host, [entry("https://a.example", "sk-a"), entry("https://b.example", "sk-b")]
            )
        )
    run = started.run
    assert started.created and run.state == "running" and run.total_items == 2
    items = list(run.items.order_by("position"))
    assert [i.current_stage for i in items] == ["probe", "probe"]
    assert items[0].api_key.reveal() == "sk-a"
    assert items[0].api_key_fingerprint.startswith("sha256:")
    assert LegacyImportBatch.objects.filter(run_id=run.run_id).exists()
    assert len(callbacks) == 1  # the items go to the workers only after commit


def test_duplicate_entries_collapse_into_one_item_with_an_event():
    host = HostFactory()
    run = run_start(
        request=make_request(
            host,
            [
                entry("https://a.example/v1", "sk-a", ["m1"]),
                entry("https://a.example", "sk-a", ["m2"]),
                entry("https://a.example", "sk-other"),
            ],
        )
    ).run
    assert run.total_items == 2 and run.duplicate_entries == 1
    first = run.items.get(position=0)
    assert first.requested_models == ["m1", "m2"]
    assert ImportRunItemEvent.objects.filter(item=first, event_type="duplicate").count() == 1


def test_idempotency_key_replays_the_same_run_and_refuses_another_body():
    host = HostFactory()
    body = make_request(host, [entry("https://a.example", "sk-a")])
    first = run_start(request=body, idempotency_key="k1")
    again = run_start(request=body, idempotency_key="k1")
    assert again.run.pk == first.run.pk and not again.created
    with pytest.raises(Conflict):
        run_start(
            request=make_request(host, [entry("https://b.example", "sk-b")]), idempotency_key="k1"
        )
    assert ImportRun.objects.count() == 1


def test_run_cancel_stops_idle_items_and_sticks():
    host = HostFactory()
    run = run_start(request=make_request(host, [entry("https://a.example", "sk-a")])).run
    cancelled = run_cancel(run_id=run.run_id, actor="ops")
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    item = run.items.get()
    assert item.current_stage == "done"
    assert item.events.filter(event_type="cancelled").exists()
    with pytest.raises(InvalidTransition):
        run_cancel(run_id=run.run_id)


def test_item_retry_restarts_the_failed_stage_as_a_new_attempt():
    item = ImportRunItemFactory(
        current_stage="done", last_error_stage="provision", last_error="host 500"
    )
    retried = item_retry(run_id=item.run_id, item_id=item.item_id, actor="ops")
    assert (retried.current_stage, retried.attempt, retried.last_error) == ("provision", 2, None)
    event = ImportRunItemEvent.objects.get(item=item, event_type="retried")
    assert event.payload["from_stage"] == "provision"


def test_item_retry_refuses_an_item_in_flight():
    item = ImportRunItemFactory(current_stage="confirm")
    with pytest.raises(InvalidTransition):
        item_retry(run_id=item.run_id, item_id=item.item_id)
    assert ImportRunItem.objects.get(pk=item.pk).attempt == 1
