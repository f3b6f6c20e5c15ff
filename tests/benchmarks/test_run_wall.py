"""A cluster scenario's wall ends when the run's end was written, not at the poll that saw it."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from benchmarks.cluster import run_wall

STARTED = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC).timestamp()


def ended(seconds: float | None) -> SimpleNamespace:
    at = None if seconds is None else datetime.fromtimestamp(STARTED + seconds, tz=UTC)
    return SimpleNamespace(finished_at=at)


def test_the_wall_is_the_time_to_the_runs_written_end():
    assert run_wall(ended(12.4), STARTED, polled=12.6) == pytest.approx(12.4, abs=1e-3)


def test_without_a_written_end_the_wall_is_the_polls():
    assert run_wall(ended(None), STARTED, polled=12.6) == 12.6


def test_an_end_past_the_poll_or_before_the_start_is_bounded_by_them():
    assert run_wall(ended(13.0), STARTED, polled=12.6) == 12.6  # clocks apart
    assert run_wall(ended(-1.0), STARTED, polled=12.6) == 0.0
