from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_pipeline(settings):
    """Loopback simulators answer in milliseconds: keep retries and timeouts short."""
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    settings.RELAY_RETRY_BASE_DELAY = 0.05
    settings.RELAY_RETRY_MAX_DELAY = 0.4
    settings.RELAY_HTTP_TIMEOUT = 5.0
    settings.RELAY_HTTP_RETRIES = 1
