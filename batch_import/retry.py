"""When a stage is tried again: exponential backoff with jitter, or longer when the other side
asked (``Retry-After``), never past ``RELAY_RETRY_MAX_DELAY``. Whether an error is worth a
retry at all is the error's own ``transient`` (``probe.errors``, ``hosts.sub2api.errors``)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.conf import settings


def backoff_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Seconds before retry number ``attempt`` (1-based): base·2^(attempt-1), capped, with
    "equal jitter" (half fixed, half random) so retries of many items spread out."""
    base = settings.RELAY_RETRY_BASE_DELAY
    cap = settings.RELAY_RETRY_MAX_DELAY
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    jitter = (rng or random).random()
    return ceiling / 2 + ceiling / 2 * jitter


def next_retry_at(
    now: datetime, attempt: int, *, rng: random.Random | None = None, at_least: float = 0.0
):
    """When to retry: the backoff, or longer when the other side asked for a wait
    (``Retry-After``), never past the configured cap."""
    delay = backoff_delay(attempt, rng=rng)
    if at_least > delay:
        delay = min(at_least, settings.RELAY_RETRY_MAX_DELAY)
    return now + timedelta(seconds=delay), delay
