"""Each start of a stage is one ``stage_started`` event: written with the transition into the
stage when the worker goes on into it at once, else when the stage starts."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRunItem
from batch_import.reuse_preflight import provisioned_before
from batch_import.stages import STAGE_STEPS, StageContext
from batch_import.stages.common import record_start
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def timeline(item: ImportRunItem) -> list[tuple[str, str]]:
    events = item.events.order_by("created_at", "event_id")
    return list(events.values_list("event_type", "stage"))


def test_a_worker_starts_each_stage_once_right_after_the_last_one_ended(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    run = drive(start(register(host_simulator), [entry(upstream)]))
    item = run.items.get()
    assert item.access_status == "active"
    assert timeline(item) == [
        ("created", "probe"),
        ("stage_started", "probe"),
        ("stage_completed", "probe"),
        ("stage_started", "provision"),
        # its group, channel, account, managed user, subscription and user key
        *[("resource_created", "provision")] * 6,
        ("access_granted", "provision"),
        ("stage_completed", "provision"),
        ("stage_started", "confirm"),
        ("confirmed", "confirm"),
        ("stage_started", "validate"),
        ("validated", "validate"),
    ]


def test_another_worker_that_takes_over_a_provisioning_counts_a_second_start(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",))
    item = start(register(host_simulator), [entry(upstream)]).items.get()
    probed = ImportRunItem.objects.select_related("run").get(pk=item.pk)
    # The probe's transition writes the provision stage's start for the worker going on.
    moved = STAGE_STEPS["probe"](probed, StageContext(worker_id="w"))
    record_start(moved)
    assert timeline(item)[-1] == ("stage_started", "provision")
    assert provisioned_before(moved) is False  # its own, first start: nothing to look for
    # That worker dies; the one taking the item over reads it afresh and starts again.
    heir = ImportRunItem.objects.select_related("run").get(pk=item.pk)
    record_start(heir)
    assert [event for event in timeline(item) if event[0] == "stage_started"][-2:] == [
        ("stage_started", "provision"),
        ("stage_started", "provision"),
    ]
    assert provisioned_before(heir) is True  # the account may exist unrecorded: look
