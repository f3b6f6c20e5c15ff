"""Installed packs feed the pipeline: channel prices, and default models for a thin upstream."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batch_import.models import ImportRun
from batch_import.tasks import advance_item
from model_packs.services import install_pack
from tests.integration.pipeline import drive, entry, register, start
from tests.model_packs.builders import pack_files, provider

pytestmark = [pytest.mark.django_db, pytest.mark.integration]

MODELS = ("Kimi-K2.6", "glm-4.5")


def _install_loopback_pack(**overrides):
    body = provider(
        "loopback",
        base_url="https://127.0.0.1/v1",  # matched by host name: the simulators listen there
        default_models=list(MODELS),
        smoke_test_model="glm-4.5",
        prices={
            "unit": "usd_per_1m_tokens",
            "as_of": "2026-12-01",
            "models": {"Kimi-K2.6": {"input": 0.95, "output": 4.0, "cache_read": 0.16}},
        },
        **overrides,
    )
    install_pack(files=pack_files(providers=[body]))


def test_channel_pricing_comes_from_the_pack(host_simulator, upstream_factory):
    _install_loopback_pack()
    upstream = upstream_factory(models=MODELS)
    run = drive(start(register(host_simulator), [entry(upstream)]))
    item = run.items.get()
    assert item.access_status == "active", list(item.events.values_list("message", flat=True))
    assert item.resolved_smoke_model == "glm-4.5"  # the pack's smoke model
    pricing = host_simulator.state.channels[item.channel_id].model_pricing
    priced = {tuple(e["models"]): e for e in pricing}
    kimi = priced[("kimi-k2.6",)]
    assert kimi["input_price"] == pytest.approx(0.95e-6)
    assert kimi["output_price"] == pytest.approx(4e-6)
    assert kimi["cache_read_price"] == pytest.approx(0.16e-6)
    assert priced[("glm-4.5",)]["input_price"] is None  # unpriced: the host's default
    probe_event = item.events.get(event_type="stage_completed", stage="probe")
    assert probe_event.payload["pack"] == "test-pack 1.0.0"


def test_thin_upstream_takes_the_packs_default_models(host_simulator, upstream_factory):
    _install_loopback_pack()
    upstream = upstream_factory(models=MODELS, models_shape="empty")
    run = drive(start(register(host_simulator), [entry(upstream)]))
    item = run.items.get()
    assert item.raw_models == list(MODELS)
    assert "models_from_pack" in item.advisory_messages
    assert item.access_status == "active"


def test_without_a_pack_pricing_entries_carry_no_price(host_simulator, upstream_factory):
    upstream = upstream_factory(models=MODELS)
    item = drive(start(register(host_simulator), [entry(upstream)])).items.get()
    pricing = host_simulator.state.channels[item.channel_id].model_pricing
    assert all(e["input_price"] is None for e in pricing)


def pack_reads(captured: CaptureQueriesContext) -> int:
    return sum('FROM "pack_providers"' in q["sql"] for q in captured.captured_queries)


def drive_as_workers(run: ImportRun) -> ImportRun:
    """``drive``, each item in a context of its own, as a worker's places advance them."""
    for _ in range(20):
        for item_id in run.items.exclude(current_stage="done").values_list("item_id", flat=True):
            advance_item(item_id, worker_id="test-worker")
    run.refresh_from_db()
    return run


@pytest.mark.django_db(transaction=True)
def test_a_runs_keys_of_one_upstream_read_the_packs_once_and_a_later_run_reads_again(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=MODELS, api_key=None)
    host = register(host_simulator)
    with CaptureQueriesContext(connection) as captured:
        run = drive_as_workers(start(host, [entry(upstream, key=f"sk-key-{n}") for n in range(3)]))
    assert run.state == "completed"
    assert pack_reads(captured) == 1  # the first key's probe; the others took what it read
    assert all(item.resolved_smoke_model != "glm-4.5" for item in run.items.all())

    _install_loopback_pack()  # installed after that run: the next run's items take it
    with CaptureQueriesContext(connection) as captured:
        later = drive_as_workers(start(host, [entry(upstream, key="sk-later")]))
    assert pack_reads(captured) == 1
    assert later.items.get().resolved_smoke_model == "glm-4.5"  # the pack's smoke model
