"""An upstream's capability profile, probed by the first key of a run, is taken over by the
run's next keys of that upstream: the worker process keeps the one it saw
(``upstream_probe.RunProfiles``) instead of reading it from the database for each item."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from batch_import.models import ImportRunItem
from batch_import.stages.upstream_probe import RUN_PROFILES, profiled, sibling_profile
from probe.client import UpstreamClient
from tests.integration.pipeline import drive, entry, register, start
from tests.integration.shared_db import shared_database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]
KEYS = 4


def profile_reads(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and '"capability_profile" IS NOT NULL' in q["sql"]
    ]


def test_a_runs_keys_of_one_upstream_read_its_profile_once(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("kimi-k2.6", "glm-5"), api_key=None)
    host = register(host_simulator)

    with CaptureQueriesContext(connection) as captured:
        run = drive(start(host, [entry(upstream, key=f"sk-key-{n}") for n in range(KEYS)]))

    assert run.state == "completed"
    # The first key looked for a sibling's profile and found none; the others took its own.
    assert len(profile_reads(captured)) == 1
    profiles = {json.dumps(i.capability_profile, sort_keys=True) for i in run.items.all()}
    assert len(profiles) == 1 and profiles != {"null"}


def test_an_item_is_not_given_its_own_profile_and_another_run_reads_its_own(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    host = register(host_simulator)
    first = drive(start(host, [entry(upstream, key="sk-only")]))
    [item] = ImportRunItem.objects.select_related("run").filter(run=first)
    assert item.capability_profile

    with CaptureQueriesContext(connection) as captured:
        assert sibling_profile(item) is None  # its own stands for no sibling: a retry probes
    assert len(profile_reads(captured)) == 1

    second = start(host, [entry(upstream, key="sk-other")])
    [other] = ImportRunItem.objects.select_related("run").filter(run=second)
    with CaptureQueriesContext(connection) as captured:
        assert sibling_profile(other) is None  # the first run's profile is not this run's
    assert len(profile_reads(captured)) == 1


def test_what_it_keeps_is_bounded_and_never_an_items_own() -> None:
    for n in range(RUN_PROFILES.MAX_UPSTREAMS + 5):
        RUN_PROFILES.remember((f"run-{n}", "p", "https://u.example/v1"), f"item-{n}", {"n": n})
    assert len(RUN_PROFILES._profiles) == RUN_PROFILES.MAX_UPSTREAMS  # the oldest went first
    assert RUN_PROFILES.of(("run-0", "p", "https://u.example/v1"), besides="x") is None
    newest = ("run-1028", "p", "https://u.example/v1")
    assert RUN_PROFILES.of(newest, besides="x") == {"n": 1028}
    assert RUN_PROFILES.of(newest, besides="item-1028") is None


def test_keys_of_one_upstream_probed_side_by_side_in_a_process_send_its_probes_once(
    host_simulator, upstream_factory
):
    """A run's first items start together, before any of them has a profile: those of one
    upstream in one worker process wait for the one probing it and take its profile over,
    sending only their own chat, instead of every one of them sending every probe."""
    shared_database_url()  # each thread reads on a connection of its own
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None, latency=0.2)
    host = register(host_simulator)
    run = start(host, [entry(upstream, key=f"sk-key-{n}") for n in range(KEYS)])
    items = list(ImportRunItem.objects.select_related("run").filter(run=run))
    together = threading.Barrier(len(items))
    profiles = {}

    def probe(item: ImportRunItem) -> None:
        client = UpstreamClient(item.base_url, item.api_key)
        try:
            together.wait()
            profiles[item.pk] = profiled(item, client, ["kimi-k2.6"], [])
        finally:
            client.close()
            connections.close_all()

    threads = [threading.Thread(target=probe, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    sent = Counter(request.path for request in upstream.requests)
    assert sent["/v1/responses"] == sent["/v1/messages"] == 1  # the routes, probed once
    assert sent["/v1/chat/completions"] == 3 + KEYS - 1  # its chat, stream, tools; theirs
    assert len(profiles) == KEYS
    assert len({json.dumps(p.to_dict(), sort_keys=True) for p in profiles.values()}) == 1
