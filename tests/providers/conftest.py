from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast(fast_pipeline, settings):
    settings.RELAY_RECONCILE_CONCURRENCY = 2
