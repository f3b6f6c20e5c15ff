from __future__ import annotations

import pytest

from batch_import.run_state import ItemSnapshot, derive_run_state


def item(stage="done", conf="confirmed", access="active", warn=False, err=None):
    return ItemSnapshot(stage, conf, access, warn, err)


ACTIVE = item()
ADVISORY = item(conf="advisory", warn=True)
DEGRADED = item(access="degraded", warn=True)
BROKEN = item(conf="failed", access="broken", err="validate")
# Rows written before the outcome rule (access left unknown by a failing stage).
PROBE_FAILED = item(conf="pending", access="unknown", err="probe")
PROVISION_FAILED = item(conf="pending", access="unknown", err="provision")
# The outcome rule: a stage's definitive failure is broken, exhausted transient degraded.
PROBE_BROKEN = item(conf="pending", access="broken", err="probe")
PROVISION_DEGRADED = item(conf="pending", access="degraded", err="provision")
VALIDATE_DEGRADED = item(access="degraded", err="validate")
IN_FLIGHT = item(stage="confirm", conf="pending", access="unknown")


CASES = [
    ([ACTIVE, ACTIVE], "partial", "completed"),
    ([ACTIVE, IN_FLIGHT], "partial", "running"),
    ([IN_FLIGHT], "strict", "running"),
    ([ACTIVE, ADVISORY], "partial", "completed_with_warnings"),
    ([ACTIVE, DEGRADED], "partial", "completed_with_warnings"),
    ([ACTIVE, BROKEN], "partial", "completed_with_warnings"),
    ([BROKEN, BROKEN], "partial", "failed"),
    ([BROKEN, PROBE_FAILED], "partial", "failed"),
    ([ACTIVE, PROVISION_FAILED], "partial", "completed_with_warnings"),
    ([ACTIVE, PROVISION_FAILED], "strict", "failed"),
    # Strict mode: a failure at any stage fails the run (seed 002 §5.5).
    ([ACTIVE, PROBE_FAILED], "strict", "failed"),
    ([ACTIVE, PROBE_BROKEN], "strict", "failed"),
    ([ACTIVE, PROBE_BROKEN], "partial", "completed_with_warnings"),
    ([PROBE_BROKEN, PROBE_BROKEN], "partial", "failed"),
    ([ACTIVE, PROVISION_DEGRADED], "strict", "failed"),
    ([ACTIVE, PROVISION_DEGRADED], "partial", "completed_with_warnings"),
    ([ACTIVE, VALIDATE_DEGRADED], "strict", "completed_with_warnings"),
    ([], "partial", "completed"),
]


@pytest.mark.parametrize(("items", "mode", "state"), CASES)
def test_derive_run_state(items, mode, state):
    assert derive_run_state(items, mode=mode).state == state


def test_cancelled_sticks_whatever_the_items():
    assert derive_run_state([IN_FLIGHT, ACTIVE], mode="partial", cancelled=True).state == (
        "cancelled"
    )


def test_counters_follow_the_items():
    summary = derive_run_state(
        [ACTIVE, ADVISORY, DEGRADED, BROKEN, PROBE_FAILED, IN_FLIGHT], mode="partial"
    )
    assert (summary.total_items, summary.completed_items) == (6, 5)
    assert (summary.active_items, summary.degraded_items, summary.broken_items) == (2, 1, 2)
    assert summary.warning_items == 2


@pytest.mark.django_db
@pytest.mark.parametrize(("items", "mode", "state"), CASES)
def test_the_aggregate_query_counts_like_the_rule(items, mode, state):
    """``selectors.run_counts`` (SQL) and ``count_items`` (Python) agree on every case."""
    from batch_import.run_state import count_items, derive_run_state_from_counts
    from batch_import.selectors import run_counts
    from tests.factories import ImportRunFactory, ImportRunItemFactory

    run = ImportRunFactory(mode=mode)
    for snapshot in items:
        ImportRunItemFactory(
            run=run,
            current_stage=snapshot.current_stage,
            confirmation_status=snapshot.confirmation_status,
            access_status=snapshot.access_status,
            has_warning=snapshot.has_warning,
            last_error_stage=snapshot.last_error_stage,
        )
    counts = run_counts(run.run_id)
    assert counts == count_items(items)
    assert derive_run_state_from_counts(counts, mode=mode).state == state
