"""The run page's time estimate (#20): from the run's own finished items, from the host's
latest finished runs before the first item ends, and "estimating…" rather than nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from batch_import import projection, selectors
from batch_import.models import ImportRun
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def finished_run(host, *, items: int, seconds: float, **fields) -> ImportRun:
    run = ImportRunFactory(host=host, total_items=items, completed_items=items, **fields)
    started = timezone.now() - timedelta(hours=1)
    ImportRun.objects.filter(pk=run.pk).update(
        state=fields.get("state", ImportRun.State.COMPLETED),
        started_at=started,
        finished_at=started + timedelta(seconds=seconds),
    )
    return ImportRun.objects.with_counts().get(pk=run.pk)


def test_earlier_runs_on_the_same_host_give_seconds_per_item():
    host = HostFactory()
    finished_run(host, items=10, seconds=100)  # 10 s an item
    finished_run(host, items=10, seconds=300, state=ImportRun.State.COMPLETED_WITH_WARNINGS)
    finished_run(host, items=50, seconds=5, is_preview=True)  # a preview writes nothing: left out
    finished_run(host, items=50, seconds=5, state=ImportRun.State.CANCELLED)  # cut short
    finished_run(HostFactory(), items=1, seconds=9999)  # another host
    run = ImportRunFactory(host=host, total_items=4)
    assert selectors.earlier_seconds_per_item(run) == pytest.approx(20.0)


def test_no_earlier_figure_without_finished_runs_or_once_the_run_has_its_own(
    django_assert_num_queries,
):
    host = HostFactory()
    run = ImportRunFactory(host=host, total_items=4)
    assert selectors.earlier_seconds_per_item(run) is None
    finished_run(host, items=10, seconds=100)
    run.completed_items = 1
    with django_assert_num_queries(0):
        assert selectors.earlier_seconds_per_item(run) is None


def test_estimate_from_earlier_runs_before_the_first_item_is_done():
    run = ImportRunFactory(total_items=4)
    now = run.started_at + timedelta(seconds=15)
    progress = projection.run_progress(run, {}, {}, earlier_seconds_per_item=10.0, now=now)
    assert (progress.eta_seconds, progress.eta_basis) == (25, "earlier_runs")


def test_estimating_when_there_is_no_figure_yet():
    run = ImportRunFactory(total_items=4)
    progress = projection.run_progress(run, {}, {}, now=run.started_at)
    assert (progress.eta_seconds, progress.eta_basis) == (None, "estimating")
    # slower than the earlier runs: no figure (never "0 s left") until an item ends
    late = run.started_at + timedelta(seconds=60)
    progress = projection.run_progress(run, {}, {}, earlier_seconds_per_item=10.0, now=late)
    assert (progress.eta_seconds, progress.eta_basis) == (None, "estimating")


def test_own_items_win_over_earlier_runs_and_an_ended_run_has_no_estimate():
    run = ImportRunFactory(total_items=4, completed_items=1)
    now = run.started_at + timedelta(seconds=30)
    progress = projection.run_progress(run, {}, {}, earlier_seconds_per_item=1.0, now=now)
    assert (progress.eta_seconds, progress.eta_basis) == (90, "this_run")
    run.state = ImportRun.State.COMPLETED
    progress = projection.run_progress(run, {}, {}, earlier_seconds_per_item=1.0, now=now)
    assert (progress.eta_seconds, progress.eta_basis) == (None, "")


@pytest.mark.parametrize(
    ("language", "estimating", "earlier"),
    [
        ("en", "estimating…", "from earlier runs on this host"),
        ("zh-hans", "正在估算…", "按此宿主最近的运行估算"),
    ],
)
def test_run_page_never_leaves_the_estimate_blank(client, staff, language, estimating, earlier):
    run = ImportRunFactory(total_items=3)
    ImportRunItemFactory(run=run)
    html = client.get(
        f"/batch-import/runs/{run.run_id}", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert 'data-eta="estimating"' in html and estimating in html
    finished_run(run.host, items=2, seconds=7200)  # an hour an item: plenty left
    html = client.get(
        f"/batch-import/runs/{run.run_id}", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert 'data-eta="earlier_runs"' in html and earlier in html
