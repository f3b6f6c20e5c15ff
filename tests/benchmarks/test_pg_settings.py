"""The bench prints the PostgreSQL settings that decide how an item's database time grows."""

from __future__ import annotations

import pytest
from django.db import connection

from benchmarks.cluster import pg_settings
from benchmarks.run import scenario_rows

pytestmark = pytest.mark.django_db


def test_the_server_settings_on_postgresql_and_none_on_sqlite() -> None:
    found = pg_settings()
    if connection.vendor != "postgresql":
        assert found is None
        return
    assert set(found) == {"autovacuum", "synchronous_commit"}
    assert found["autovacuum"] in {"on", "off"}


def test_the_table_shows_them() -> None:
    result = {"pg_settings": {"autovacuum": "off", "synchronous_commit": "on"}}
    rows = dict(row for row in _rows(result))
    assert rows["  PostgreSQL settings"] == "autovacuum off, synchronous_commit on"


def _rows(extra: dict):
    """scenario_rows of a minimal scenario result with ``extra`` in it."""
    trace = {
        "path_p50": 8,
        "path_max": 14,
        "calls_per_item": 8.5,
        "host_calls_per_item": 6.2,
        "upstream_calls_per_item": 2.3,
        "in_worker_p50_s": 1.0,
        "in_worker_p95_s": 2.0,
        "split_per_item_s": {"http": 0.6},
        "occupancy": 0.8,
        "items_traced": 10,
    }
    result = {
        "label": "x",
        "items": 10,
        "wall_s": 1.0,
        "items_per_s": 10.0,
        "state": "completed",
        "active": 10,
        "in_flight": 64,
        "clusters": 2,
        "workers": 1,
        "items_per_worker": 32,
        "knobs": {"RELAY_HOST_CONCURRENCY": "64", "RELAY_UPSTREAM_CONCURRENCY": "4"},
        "floor_target_s": 1.0,
        "ratio_to_target_floor": 1.0,
        "floor_measured_path_s": 1.0,
        "ratio_to_measured_floor": 1.0,
        "worker_cpu_ms_per_item": 1.0,
        "web_cpu_ms_per_item": 0.1,
        "worker_sql_per_item": 1.0,
        "worker_sql_other_per_item": 0.1,
        "web_sql_per_item": 0.1,
        "worker_peak_rss_sum_mib": 1.0,
        "worker_peak_pss_sum_mib": 1.0,
        "peer": {"items": 3, "items_per_s": 1.0},
        "peer_wall_for_n_s": 10.0,
        "ours_over_peer": 10.0,
        "trace": trace,
        "latency_ms": 50.0,
        "upstreams": 20,
        **extra,
    }
    return scenario_rows(result)
