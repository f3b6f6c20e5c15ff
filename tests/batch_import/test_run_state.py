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


@pytest.mark.parametrize(
    ("items", "mode", "state"),
    [
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
    ],
)
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
