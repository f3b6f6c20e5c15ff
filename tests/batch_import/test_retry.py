from __future__ import annotations

import random

import pytest

from batch_import.retry import backoff_delay


@pytest.fixture(autouse=True)
def _delays(settings):
    settings.RELAY_RETRY_BASE_DELAY = 2.0
    settings.RELAY_RETRY_MAX_DELAY = 60.0


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (9, 60)]
)
def test_backoff_grows_exponentially_up_to_the_cap_with_jitter(attempt, ceiling):
    delays = [backoff_delay(attempt, rng=random.Random(seed)) for seed in range(50)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert len({round(d, 6) for d in delays}) > 1  # jittered, not fixed


@pytest.mark.parametrize("at_least", [0, 1, 30, 600])
def test_a_requested_wait_lengthens_the_backoff_up_to_the_cap(at_least):
    from datetime import UTC, datetime, timedelta

    from batch_import.retry import next_retry_at

    now = datetime(2026, 12, 4, tzinfo=UTC)
    rng = random.Random(1)
    backoff = backoff_delay(1, rng=random.Random(1))
    when, waited = next_retry_at(now, 1, rng=rng, at_least=at_least)
    assert waited == pytest.approx(max(backoff, min(at_least, 60)))
    assert when == now + timedelta(seconds=waited)
