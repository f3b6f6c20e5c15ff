from __future__ import annotations

import pytest

from batch_import.run_state import ItemSnapshot, derive_run_state


def item(stage="done", conf="confirmed", access="active", warn=False, err=None):
    return ItemSnapshot(stage, conf, access, warn, err)


ACTIVE = item()
ADVISORY = item(conf="advisory", warn=True)
DEGRADED = item(access="degraded", warn=True)
BROKEN = item(conf="failed", access="broken", err="validate")
PROBE_FAILED = item(conf="pending", access="unknown", err="probe")
PROVISION_FAILED = item(conf="pending", access="unknown", err="provision")
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
        ([ACTIVE, PROBE_FAILED], "strict", "completed_with_warnings"),
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
