"""``derive_run_state``: the one rule that turns item outcomes into a run state and counters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch, RunRollback

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus
Confirmation = ImportRunItem.ConfirmationStatus
RunState = ImportRun.State
BatchStatus = LegacyImportBatch.Status

# Stages whose failure ends an item before validation ever runs.
PRE_VALIDATION_STAGES = frozenset({Stage.PROBE, Stage.PROVISION})


@dataclass(frozen=True)
class ItemSnapshot:
    current_stage: str
    confirmation_status: str = Confirmation.PENDING
    access_status: str = Access.UNKNOWN
    has_warning: bool = False
    last_error_stage: str | None = None


@dataclass(frozen=True)
class RunSummary:
    state: str
    total_items: int
    completed_items: int
    active_items: int
    degraded_items: int
    broken_items: int
    warning_items: int


def item_failed_before_validation(item: ItemSnapshot) -> bool:
    """Rows written before the outcome rule: ended by a stage with access still unknown."""
    return (
        item.current_stage == Stage.DONE
        and item.access_status == Access.UNKNOWN
        and item.last_error_stage is not None
    )


def item_ended_by_a_stage(item: ItemSnapshot) -> bool:
    """A stage before validation ended the item with an error (broken or degraded)."""
    return (
        item.current_stage == Stage.DONE
        and item.access_status != Access.ACTIVE
        and item.last_error_stage in PRE_VALIDATION_STAGES
    )


def item_is_broken(item: ItemSnapshot) -> bool:
    return item.access_status == Access.BROKEN or item_failed_before_validation(item)


def item_has_warning(
    *, confirmation_status: str, access_status: str, advisory_messages: Iterable[str]
) -> bool:
    """An item works but deserves a look: advisory confirmation, advisories, or degraded."""
    return (
        confirmation_status == Confirmation.ADVISORY
        or access_status == Access.DEGRADED
        or any(True for _ in advisory_messages)
    )


@dataclass(frozen=True)
class RunCounts:
    """What the run state needs from its items, as counts (one aggregate query, see
    ``run_counts``; ``count_items`` over snapshots for the same numbers in Python)."""

    total: int = 0
    done: int = 0
    active: int = 0
    degraded: int = 0
    broken: int = 0
    warnings: int = 0
    ended_by_a_stage: int = 0
    advisory: int = 0

    def __add__(self, other: RunCounts) -> RunCounts:
        return RunCounts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in _FIELDS}
        )

    def __sub__(self, other: RunCounts) -> RunCounts:
        return RunCounts(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in _FIELDS}
        )

    def __bool__(self) -> bool:
        """False when every count is zero (a delta that changes nothing)."""
        return any(getattr(self, f.name) for f in _FIELDS)


_FIELDS = fields(RunCounts)


def item_counts(item: ItemSnapshot) -> RunCounts:
    """What one item adds to its run's counts (each 0 or 1): the counts of a run are the sum
    over its items, so a transition moves them by ``item_counts(after) - item_counts(before)``
    and never needs to read the run's other items."""
    return RunCounts(
        total=1,
        done=int(item.current_stage == Stage.DONE),
        active=int(item.access_status == Access.ACTIVE),
        degraded=int(item.access_status == Access.DEGRADED),
        broken=int(item_is_broken(item)),
        warnings=int(item.has_warning),
        ended_by_a_stage=int(item_ended_by_a_stage(item)),
        advisory=int(item.confirmation_status == Confirmation.ADVISORY),
    )


def count_items(items: Iterable[ItemSnapshot]) -> RunCounts:
    items = list(items)
    return RunCounts(
        total=len(items),
        done=sum(1 for i in items if i.current_stage == Stage.DONE),
        active=sum(1 for i in items if i.access_status == Access.ACTIVE),
        degraded=sum(1 for i in items if i.access_status == Access.DEGRADED),
        broken=sum(1 for i in items if item_is_broken(i)),
        warnings=sum(1 for i in items if i.has_warning),
        ended_by_a_stage=sum(1 for i in items if item_ended_by_a_stage(i)),
        advisory=sum(1 for i in items if i.confirmation_status == Confirmation.ADVISORY),
    )


def derive_run_state(
    items: Iterable[ItemSnapshot], *, mode: str, cancelled: bool = False
) -> RunSummary:
    """Pure: running while any item is not done; then failed, completed_with_warnings or
    completed (ARCHITECTURE §4). ``cancelled`` is set only by the cancel action and sticks."""
    return derive_run_state_from_counts(count_items(items), mode=mode, cancelled=cancelled)


def derive_run_state_from_counts(
    counts: RunCounts, *, mode: str, cancelled: bool = False
) -> RunSummary:
    """The same rule over counts: the worker's path, whatever the run's size."""
    if cancelled:
        state = RunState.CANCELLED
    elif counts.done < counts.total:
        state = RunState.RUNNING
    elif (counts.total and counts.broken == counts.total) or (
        mode == ImportRun.Mode.STRICT and (counts.broken or counts.ended_by_a_stage)
    ):
        state = RunState.FAILED
    elif counts.broken or counts.degraded or counts.warnings or counts.advisory:
        state = RunState.COMPLETED_WITH_WARNINGS
    else:
        state = RunState.COMPLETED
    return RunSummary(
        state=str(state),
        total_items=counts.total,
        completed_items=counts.done,
        active_items=counts.active,
        degraded_items=counts.degraded,
        broken_items=counts.broken,
        warning_items=counts.warnings,
    )


# A rollback owns the batch status from its start (seed 002 §5.5): one that left resources
# behind marks the batch failed.
ROLLBACK_BATCH_STATUS = {
    RunRollback.Status.RUNNING: BatchStatus.ROLLBACK_RUNNING,
    RunRollback.Status.PARTIAL: BatchStatus.FAILED,
    RunRollback.Status.ROLLED_BACK: BatchStatus.ROLLED_BACK,
}


def legacy_batch_status(
    summary: RunSummary | None = None, *, rollback_status: str | None = None
) -> str:
    """The V1 ``import_batches.status`` (seed 002 §4.2) of a run: its rollback's, once one
    started; else running while the run runs, then ``succeeded`` when every item ended active,
    ``partially_succeeded`` when some did (a cancelled run too), ``failed`` when none did or
    the run failed (strict mode fails it on one broken item)."""
    if rollback_status is not None:
        return ROLLBACK_BATCH_STATUS[rollback_status]
    if summary is None or summary.state == RunState.RUNNING:
        return BatchStatus.RUNNING
    if summary.state == RunState.FAILED or summary.active_items == 0:
        return BatchStatus.FAILED
    if summary.active_items == summary.total_items:
        return BatchStatus.SUCCEEDED
    return BatchStatus.PARTIALLY_SUCCEEDED
