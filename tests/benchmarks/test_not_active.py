"""A cluster scenario names the items whose verdict is not active, so a run that ends with one
says which and why (the 10,000-entry run once ended with 9,999 active and no trace of the
other)."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRunItem
from benchmarks.cluster import not_active
from benchmarks.run import scenario_head
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def test_the_items_not_active_are_named_with_their_stage_verdict_and_error():
    run = ImportRunFactory()
    ImportRunItemFactory(run=run, access_status=ImportRunItem.AccessStatus.ACTIVE)
    broken = ImportRunItemFactory(
        run=run,
        current_stage=ImportRunItem.Stage.DONE,
        access_status=ImportRunItem.AccessStatus.BROKEN,
        last_error="gateway answered 502",
    )

    assert not_active(run) == [
        {
            "position": broken.position,
            "stage_ended": "done",
            "access": "broken",
            "confirmation": broken.confirmation_status,
            "error": "gateway answered 502",
        }
    ]


def test_the_table_line_of_a_scenario_says_which_items_are_not_active():
    result = {
        "label": "PostgreSQL + Redis, N=2",
        "items": 2,
        "upstreams": 1,
        "latency_ms": 50.0,
        "wall_s": 1.0,
        "items_per_s": 2.0,
        "state": "completed_with_warnings",
        "active": 1,
        "not_active": [
            {"position": 7, "stage_ended": "done", "access": "broken", "error": "gateway 502"}
        ],
    }
    assert scenario_head(result)[1].endswith("active 1/2; #7 broken (done): gateway 502")
