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
