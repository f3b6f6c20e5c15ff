from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast(fast_pipeline):
    """Every integration test runs against loopback simulators."""
