"""Reads for the API, pages and CLI: a fixed number of queries whatever the number of rows."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import Mod

from batch_import.models import ImportRun, ImportRunCounterShard, ImportRunItem, ImportRunItemEvent
from batch_import.run_state import PRE_VALIDATION_STAGES, RunCounts

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus
Confirmation = ImportRunItem.ConfirmationStatus


def runs_newest_first() -> QuerySet[ImportRun]:
    """Runs list (seed 004 §8.1: started_at DESC; run_id breaks ties stably)."""
    return ImportRun.objects.select_related("host").with_counts().order_by("-started_at", "-run_id")


def run_get(run_id: str) -> ImportRun:
    """One run with its host and its item counts."""
    return ImportRun.objects.select_related("host").with_counts().get(pk=run_id)


def items_problems_first(run: ImportRun) -> QuerySet[ImportRunItem]:
    """Items of a run, problems first (seed 004 §8.2): unfinished, then broken/degraded, then
    the most recently updated. The stored ``problem_rank`` folds the first two rules into one
    key, so the index (run, problem_rank, updated_at DESC, item_id) serves the order."""
    return (
        ImportRunItem.objects.filter(run=run)
        .defer("api_key", "capability_profile", "raw_models", "normalized_models")
        .order_by("problem_rank", "-updated_at", "item_id")
    )


def item_get_with_events(run_id: str, item_id: str) -> ImportRunItem:
    """One item with its whole event timeline, oldest first (two queries)."""
    return (
        ImportRunItem.objects.select_related("run", "run__host")
        .prefetch_related(
            Prefetch(
                "events", queryset=ImportRunItemEvent.objects.order_by("created_at", "event_id")
            )
        )
        .get(run_id=run_id, pk=item_id)
    )


def run_counts(run_id: str) -> RunCounts:
    """The run's item counts in one aggregate query (the index on (run, …) serves it): a
    transition costs the same whatever the run's size, instead of reading every item."""
    counts = ImportRunItem.objects.filter(run_id=run_id).aggregate(**_COUNTED)
    return RunCounts(**counts)


def run_counts_by_shard(run_id: str) -> dict[int, RunCounts]:
    """``run_counts`` of each counter shard's items (its position modulo ``SHARDS``), in one
    grouped query; shards with no item are absent."""
    rows = (
        ImportRunItem.objects.filter(run_id=run_id)
        .annotate(shard=Mod("position", ImportRunCounterShard.SHARDS))
        .values("shard")
        .annotate(**_COUNTED)
        .order_by()
    )
    return {row.pop("shard"): RunCounts(**row) for row in rows}


def _counted() -> dict[str, Count]:
    done = Q(current_stage=Stage.DONE)
    failed_before_validation = (
        done & Q(access_status=Access.UNKNOWN) & Q(last_error_stage__isnull=False)
    )
    return dict(
        total=Count("pk"),
        done=Count("pk", filter=done),
        active=Count("pk", filter=Q(access_status=Access.ACTIVE)),
        degraded=Count("pk", filter=Q(access_status=Access.DEGRADED)),
        broken=Count("pk", filter=Q(access_status=Access.BROKEN) | failed_before_validation),
        warnings=Count("pk", filter=Q(has_warning=True)),
        ended_by_a_stage=Count(
            "pk",
            filter=done
            & ~Q(access_status=Access.ACTIVE)
            & Q(last_error_stage__in=PRE_VALIDATION_STAGES),
        ),
        advisory=Count("pk", filter=Q(confirmation_status=Confirmation.ADVISORY)),
    )


# What ``run_counts`` counts, each as an aggregate over the items (``RunCounts``' fields).
_COUNTED = _counted()


def stage_counts(run: ImportRun) -> dict[str, int]:
    """Items per current stage (one grouped query). Only unfinished items are counted, through
    the partial index on them; the finished ones are the run's ``completed_items`` counter."""
    rows = (
        ImportRunItem.objects.filter(run_id=run.run_id)
        .exclude(current_stage=Stage.DONE)
        .values("current_stage")
        .annotate(n=Count("*"))  # COUNT(*): the index alone answers, no row is read
        .order_by()
    )
    counts = {row["current_stage"]: row["n"] for row in rows}
    if run.completed_items:
        counts[Stage.DONE] = run.completed_items
    return counts


ESTIMATE_FROM_RUNS = 5


def earlier_seconds_per_item(run: ImportRun) -> float | None:
    """Wall-clock seconds per item of the host's latest finished runs (previews and
    cancelled runs aside), for an estimate before this run has finished an item of its own.

    None without a query once the run has its own figure (or has ended), and when the host has
    no such run yet."""
    if run.is_terminal or run.completed_items:
        return None
    rows = (
        ImportRun.objects.with_counts()
        .filter(
            host_id=run.host_id,
            is_preview=False,
            finished_at__isnull=False,
            total_items__gt=0,
            state__in=[
                ImportRun.State.COMPLETED,
                ImportRun.State.COMPLETED_WITH_WARNINGS,
                ImportRun.State.FAILED,
            ],
        )
        .exclude(pk=run.pk)
        .order_by("-finished_at")
        .values_list("started_at", "finished_at", "total_items")[:ESTIMATE_FROM_RUNS]
    )
    seconds = items = 0.0
    for started_at, finished_at, total in rows:
        seconds += max((finished_at - started_at).total_seconds(), 0.0)
        items += total
    return seconds / items if items else None


def failure_class_counts(run_id: str) -> dict[str, int]:
    """Finished items that did not end active, per failure class (one grouped query)."""
    rows = (
        ImportRunItem.objects.filter(run_id=run_id)
        .exclude(failure_class="")
        .values("failure_class")
        .annotate(n=Count("*"))  # COUNT(*): the index alone answers, no row is read
        .order_by("-n", "failure_class")
    )
    return {row["failure_class"]: row["n"] for row in rows}
