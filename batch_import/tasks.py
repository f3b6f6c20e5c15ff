"""django-q2 entry points: advance one item under a lease, and sweep for due work."""

from __future__ import annotations

import contextlib
import logging
import queue
import time
from functools import partial

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from batch_import import dispatch, leases, rollback, transitions
from batch_import.errors import InvalidTransition
from batch_import.models import ImportRun, ImportRunItem
from batch_import.places import PLACES
from batch_import.services import item_stop_cancelled
from batch_import.stages import STAGE_STEPS, StageContext
from batch_import.stages.common import fail_item, schedule_retry
from batch_import.transitions import RUN, EventType
from hosts.models import Host
from relay_project.compiled_reads import CompiledGet
from relay_project.limits import run_scope
from relay_project.logging import log_context
from relay_project.messages import Msg

logger = logging.getLogger(__name__)
# The stage modules with this one: the cluster imports it before it forks its workers
# (``providers.cluster.preload_and_freeze``), so they share these pages rather than each
# import the stages at its first items, 32 places at once behind the import lock.
STAGE_STEPS.load()
# Retries of a stage that raised an exception nobody expected, before the item ends with it.
UNEXPECTED_ERROR_RETRIES = 2
# A task takes in more items while it has free places only within this share of
# RELAY_TASK_TIMEOUT, so an item it starts has the rest of the timeout to end in.
PULL_WINDOW = 1 / 3


# The worker's reads of an item before its stages, compiled once per process.
ITEM_WITH_RUN_AND_HOST = CompiledGet(
    lambda: ImportRunItem.objects.select_related("run", "run__host")
)
ITEM_WITH_RUN = CompiledGet(lambda: ImportRunItem.objects.select_related("run"))


def advance_item(
    item_id: str,
    worker_id: str | None = None,
    context: StageContext | None = None,
    *,
    lease: leases.HeldLease | None = None,
):
    """Run an item's stages one after another while we hold its lease (``lease``: one taken
    already, by ``advance_items``; else it is taken here).

    Returns why it stopped: ``not_claimed`` (someone else has it, or it is not due),
    ``done``, ``cancelled``, ``scheduled`` (a retry later than the inline limit), ``lost``
    (our lease expired and another worker took over), ``superseded`` (moved under us),
    ``failed`` (a stage kept raising an unexpected exception: the item ended with it).
    """
    if lease is None:
        lease = leases.take(item_id, worker_id=worker_id or leases.new_worker_id())
        if lease is None:
            return "not_claimed"
    worker_id = lease.worker_id
    context = context or StageContext(worker_id=worker_id)
    host, left = None, None
    taken = lease.first_read()  # the item as its take read it, if it did
    ended = False
    try:
        while True:
            item = taken or _read_item(item_id, host, left)
            taken = None
            host, left = item.run.host, None
            if item.lease_owner != worker_id:
                return "lost"
            if item.is_done:
                return "done"
            if item.run.state == ImportRun.State.CANCELLED:
                item_stop_cancelled(item_id=item_id)
                return "cancelled"
            wait = _seconds_until_due(item)
            if wait > settings.RELAY_INLINE_RETRY_MAX_DELAY:
                return "scheduled"
            if wait > 0:
                time.sleep(wait)
                if not lease.keep():
                    return "lost"
                continue
            try:
                with (
                    log_context(
                        run_id=item.run_id,
                        item_id=item_id,
                        stage=item.current_stage,
                        attempt=item.attempt,
                    ),
                    run_scope(item.run_id),  # the item's calls count toward its run's share
                ):
                    logger.debug("stage %s starts", item.current_stage)
                    with leases.holding(lease):
                        left = STAGE_STEPS[item.current_stage](item, context)
            except InvalidTransition as exc:
                # Someone moved the item under us (cancel, strict rollback): stop quietly.
                logger.info("item %s moved while we worked on it: %s", item_id, exc)
                return "superseded"
            except Exception as exc:
                if not _after_unexpected_error(item, exc):
                    return "failed"
            else:
                if lease.released:  # the commit of its finishing transition ended the lease
                    ended = True
                    return "done"
            if not lease.keep():
                return "lost"
    finally:
        if not ended:  # nor after a stage that raised: what it wrote may not have stood
            leases.release(item_id, worker_id=worker_id)


def _read_item(item_id: str, host: Host | None, left: ImportRunItem | None) -> ImportRunItem:
    """The item and its run, fresh before each stage (a cancel, a lease taken over); the host
    row is the same for all of an item's stages, so it is read with the first one only.

    ``left``: the item as the last stage's final transition left it, which that transition
    read with its run under the item's row lock just now and wrote back (``transition_item``):
    taken as it is instead of reading both rows again."""
    if host is None:
        return ITEM_WITH_RUN_AND_HOST.get(item_id)
    if left is not None and left.item_id == item_id and RUN.is_cached(left):
        item = left
    else:
        item = ITEM_WITH_RUN.get(item_id)
    if item.run.host_id == host.pk:
        item.run.host = host
    return item


def _after_unexpected_error(item: ImportRunItem, exc: Exception) -> bool:
    """An exception no stage foresaw (a bug, a value nothing validated, a database blip) must
    never make the item loop: retry the stage a bounded number of times, an event each time,
    then end the item with the error. Returns whether the item will be tried again.

    The message names the exception's type only: its text may hold a key or a URL.
    """
    logger.error(
        "stage %s of item %s failed unexpectedly", item.current_stage, item.item_id, exc_info=exc
    )
    item = ImportRunItem.objects.get(pk=item.item_id)  # the stage may have moved it first
    if item.is_done:
        return False
    stage = item.current_stage
    earlier = item.events.filter(
        event_type=EventType.RETRY_SCHEDULED,
        stage=stage,
        attempt=item.attempt,
        payload__unexpected_error__isnull=False,
    ).count()
    reason = Msg(
        gettext_noop("unexpected %(error)s in the %(stage)s stage (details in the server log)"),
        error=type(exc).__name__,
        stage=Msg.word("stage", stage),
    )
    payload = {"unexpected_error": type(exc).__name__}
    if earlier < UNEXPECTED_ERROR_RETRIES:
        schedule_retry(
            item,
            attempt=earlier + 1,
            reason=Msg(
                gettext_noop("%(reason)s; retry %(retry)s of %(retries)s"),
                reason=reason,
                retry=earlier + 1,
                retries=UNEXPECTED_ERROR_RETRIES,
            ),
            payload=payload,
        )
        return True
    fail_item(
        item, error=reason, failure_class=ImportRunItem.FailureClass.INTERNAL_ERROR, payload=payload
    )
    return False


def advance_items(item_ids: list[str]) -> dict[str, str]:
    """Advance several items side by side in this worker process, each under its own lease
    (the task ``dispatch`` enqueues), each in a place of the process (``places``: a thread
    with its database connection, kept for later tasks), and keep as many in flight as the
    task has items: when items end, the next due items of the same runs take their places
    (``leases.take_next_due``, one statement for all of them), so the task no longer waits
    for its slowest item with the others' places empty. The run's later tasks find the items
    it took leased or done and end at once. Returns each advanced item's ``advance_item``
    outcome (``not_claimed`` for those someone else had)."""
    if len(item_ids) == 1:
        return {item_ids[0]: advance_item(item_ids[0])}
    places = len(item_ids)
    runs = sorted(
        set(ImportRunItem.objects.filter(pk__in=item_ids).values_list("run_id", flat=True))
    )
    take_until = time.monotonic() + settings.RELAY_TASK_TIMEOUT * PULL_WINDOW
    ended: queue.SimpleQueue[tuple[str, str | BaseException]] = queue.SimpleQueue()
    outcomes: dict[str, str] = dict.fromkeys(item_ids, "not_claimed")
    failure: BaseException | None = None

    def start(taken: list[leases.HeldLease]) -> int:
        for lease in taken:
            PLACES.hand(lease.item_id, partial(advance_item, lease.item_id, lease=lease), ended)
        return len(taken)

    def take_more(free: int) -> int:
        """Start the next due items of the task's runs in the free places; how many.

        A take that comes back empty while items are still due lost a race: another task's
        take, at the same moment, leased the rows this one chose (on PostgreSQL it waited for
        that commit, then found them leased). It is taken again, once, on the rows now due;
        told instead that nothing was due, the task stopped filling its places, which stood
        half empty for about a second at a time (0.82 of the places busy instead of 0.93 in
        the bench's run on two clusters)."""
        nonlocal runs
        if failure or not runs or not free or time.monotonic() >= take_until:
            return 0
        taken = leases.take_next_due(runs, limit=free)
        if not taken and leases.any_due(runs):
            taken = leases.take_next_due(runs, limit=free)
        elif not taken:
            runs = []  # nothing due but what this task has: it only finishes now
        return start(taken)

    in_flight = start(leases.take_each(item_ids))
    in_flight += take_more(places - in_flight)
    while in_flight:
        # Every item that has ended by now, so the places they freed are filled at once.
        finished = [ended.get()]
        with contextlib.suppress(queue.Empty):
            while True:
                finished.append(ended.get_nowait())
        for item_id, outcome in finished:
            in_flight -= 1
            if isinstance(outcome, BaseException):
                failure = failure or outcome
            else:
                outcomes[item_id] = outcome
        in_flight += take_more(places - in_flight)
    if failure is not None:
        raise failure
    return outcomes


def _seconds_until_due(item: ImportRunItem) -> float:
    if item.next_retry_at is None:
        return 0.0
    return max((item.next_retry_at - timezone.now()).total_seconds(), 0.0)


def sweep(limit: int | None = None) -> int:
    """Scheduled: hand every due, unleased, unfinished item to a worker (all of them by
    default: after a killed worker's leases expire, every orphan runs again within one sweep
    interval, whatever their number). Returns the count."""
    due_items = leases.claimable_items(timezone.now()).order_by("next_retry_at")
    if limit is not None:
        due_items = due_items[:limit]
    due = list(due_items.values_list("item_id", flat=True))
    dispatch.enqueue_items(due)
    if due:
        logger.info("sweep handed %d items to workers", len(due))
    if ended := transitions.settle_ended_runs():
        logger.info("sweep settled %d runs whose last settle was lost", ended)
    rollbacks = rollback.due_rollbacks()
    dispatch.enqueue_rollbacks(rollbacks)
    if rollbacks:
        logger.info("sweep handed %d partial rollbacks to workers", len(rollbacks))
    return len(due)


def resume_rollback(run_id: str) -> str:
    """Retry a partial rollback (scheduled by the sweep with backoff). Returns its status."""
    with log_context(run_id=run_id):
        return rollback.rollback_run(run_id=run_id, requested_by="retry").status
