"""Item leases: one worker owns an item at a time; a killed worker's lease simply expires.

The claim is a compare-and-swap UPDATE whose row count says who won, so it is safe on SQLite
and PostgreSQL alike without holding a row lock while the slow HTTP work runs.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, timedelta
from functools import reduce
from operator import or_

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from batch_import.models import ImportRunItem
from relay_project.compiled_reads import (
    CompiledUpdatePks,
    Slot,
    returns_rows_from_update,
    update_returning_pks,
)
from relay_project.ids import new_id

Stage = ImportRunItem.Stage


def new_worker_id() -> str:
    return f"{this_process()}{new_id('w')[-8:]}"


def this_process() -> str:
    """How the worker ids of this process start (``lease_owner`` tells whose process it is)."""
    return f"{socket.gethostname()}:{os.getpid()}:"


def lease_ttl() -> timedelta:
    return timedelta(seconds=settings.RELAY_LEASE_TTL)


def claimable_items(now: datetime) -> QuerySet[ImportRunItem]:
    """Unfinished items that are due and not leased (uses index ``item_claimable_idx``)."""
    return ImportRunItem.objects.filter(
        ~Q(current_stage=Stage.DONE),
        Q(next_retry_at__lte=now),
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
    )


def claim(item_id: str, *, worker_id: str, now: datetime | None = None) -> bool:
    """Take the lease if it is free or expired and the item is due; True when we won."""
    now = now or timezone.now()
    won = (
        claimable_items(now)
        .filter(pk=item_id)
        .update(lease_owner=worker_id, lease_until=now + lease_ttl())
    )
    return won == 1


def renew(item_id: str, *, worker_id: str, now: datetime | None = None) -> bool:
    """Extend our lease; False means another worker took the item over (ours expired)."""
    now = now or timezone.now()
    kept = ImportRunItem.objects.filter(pk=item_id, lease_owner=worker_id).update(
        lease_until=now + lease_ttl()
    )
    return kept == 1


@dataclass
class HeldLease:
    """The lease a worker won on one item, renewed only once half of it has run out.

    A task ends long before its lease does (``RELAY_TASK_TIMEOUT`` < ``RELAY_LEASE_TTL``), so
    renewing after every stage was a write per stage for nothing; a stage that outlives half
    the lease still renews before the next one starts.
    """

    item_id: str
    worker_id: str
    until: datetime
    # Set once the transition that finished the item and cleared the lease in its UPDATE has
    # been committed (``ends_with_commit``).
    released: bool = False
    # The item as the take wrote it, with its run and the run's host, where the take read
    # them in its statement (``take_next_due`` on PostgreSQL): the worker's first read of the
    # item, taken once (``first_read``).
    taken: ImportRunItem | None = dataclass_field(default=None, repr=False)

    def first_read(self) -> ImportRunItem | None:
        """The item as the take read it, once; None after (and where it read none)."""
        taken, self.taken = self.taken, None
        return taken

    def keep(self, now: datetime | None = None) -> bool:
        """Renew when due; False means another worker took the item over (ours expired)."""
        now = now or timezone.now()
        if self.until - now > lease_ttl() / 2:
            return True
        if not renew(self.item_id, worker_id=self.worker_id, now=now):
            return False
        self.until = now + lease_ttl()
        return True

    def ends_with_commit(self) -> None:
        """The UPDATE just written in this transaction clears the lease: it has ended once
        that transaction (the outermost) commits. A rollback, of the transition or of a caller's
        transaction around it, leaves it held, for the worker to release as usual."""
        transaction.on_commit(self._ended)

    def _ended(self) -> None:
        self.released = True


def take(item_id: str, *, worker_id: str, now: datetime | None = None) -> HeldLease | None:
    """``claim`` that returns the lease it won (None when it lost)."""
    now = now or timezone.now()
    if not claim(item_id, worker_id=worker_id, now=now):
        return None
    return HeldLease(item_id=item_id, worker_id=worker_id, until=now + lease_ttl())


def take_each(item_ids: list[str], *, now: datetime | None = None) -> list[HeldLease]:
    """``take`` of several items in one statement, for one new worker id of this process:
    the leases of those that were free and due (the rest someone else has, or are not due)."""
    now = now or timezone.now()
    return _take_all(claimable_items(now).filter(pk__in=item_ids), now)


def take_next_due(
    run_ids: list[str], *, limit: int, now: datetime | None = None
) -> list[HeldLease]:
    """Up to ``limit`` due, unleased items of these runs, earliest due first, taken in one
    statement (an index walk past the items in flight: ``item_run_due_idx``): a task's places
    that freed get theirs at once, where a read of the next due items and then a claim per
    place cost two statements per item and lost the races another task's places won. The
    statement is compiled once per process, number of runs and places (``NEXT_DUE``)."""
    now = now or timezone.now()
    connection = connections[ImportRunItem.objects.db]
    if not returns_rows_from_update(connection):
        return _take_all(_next_due(claimable_items(now), Q(run_id__in=run_ids), limit), now)
    worker_id, until = new_worker_id(), now + lease_ttl()
    runs = {f"run_{n}": run_id for n, run_id in enumerate(run_ids)}
    shape = (len(run_ids), limit)
    if connection.vendor == "postgresql":  # the items read with their runs and hosts too
        taken = NEXT_DUE.update_objects(shape, now=now, owner=worker_id, until=until, **runs)
        return [
            HeldLease(item_id=item.pk, worker_id=worker_id, until=until, taken=item)
            for item in taken
        ]
    won = NEXT_DUE.update(shape, now=now, owner=worker_id, until=until, **runs)
    return [HeldLease(item_id=pk, worker_id=worker_id, until=until) for pk in won]


def any_due(run_ids: list[str], *, now: datetime | None = None) -> bool:
    """Whether any item of these runs is due and not leased: the first one as the take
    orders them, so the read walks ``item_run_due_idx`` from the front as the take does (an
    ``EXISTS`` without the order was planned as a scan of the table, through every finished
    item of the run before the first due one)."""
    due = _in_take_order(claimable_items(now or timezone.now()), Q(run_id__in=run_ids))
    return bool(due.values_list("pk", flat=True)[:1])


def _in_take_order(claimable: QuerySet[ImportRunItem], runs: Q) -> QuerySet[ImportRunItem]:
    """These runs' claimable items, earliest due first: the order ``item_run_due_idx`` keeps."""
    return claimable.filter(runs).order_by("next_retry_at", "position")


def _next_due(claimable: QuerySet[ImportRunItem], runs: Q, limit: int):
    """The claimable items among the first ``limit`` due ones of these runs."""
    return claimable.filter(pk__in=_in_take_order(claimable, runs).values("pk")[:limit])


def _next_due_statement(shape: tuple[int, int]) -> tuple[QuerySet[ImportRunItem], dict]:
    runs, limit = shape
    field = ImportRunItem._meta.get_field
    now = Slot("now", field("next_retry_at"))
    claimable = ImportRunItem.objects.filter(
        ~Q(current_stage=Stage.DONE),
        Q(next_retry_at__lte=now),
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
    )
    # One condition per run: ``__in`` would take a slot for a value.
    runs_q = reduce(
        or_, (Q(run_id=Slot(f"run_{n}", field("run").target_field)) for n in range(runs))
    )
    written = {
        "lease_owner": Slot("owner", field("lease_owner")),
        "lease_until": Slot("until", field("lease_until")),
    }
    return _next_due(claimable, runs_q, limit), written


# ``take_next_due``'s UPDATE … RETURNING: built as ``claimable_items`` and ``_next_due`` build
# it, with slots for each call's values. Building it was most of a claim's CPU. A fixed plan:
# the run's due items by ``item_run_due_idx`` in its order (its condition matched by the stage
# written in; given as a parameter, the plan read every item of the run).
NEXT_DUE = CompiledUpdatePks(
    ImportRunItem, _next_due_statement, related=("run__host",), fixed_plan=True
)


def _take_all(items: QuerySet[ImportRunItem], now: datetime) -> list[HeldLease]:
    # One worker id for the lot: a lease is the row's owner and expiry, so items sharing an
    # owner still end, renew and get lost each on its own row.
    worker_id, until = new_worker_id(), now + lease_ttl()
    if returns_rows_from_update(connections[items.db]):
        won = update_returning_pks(items, lease_owner=worker_id, lease_until=until)
    else:  # one claim each, as before UPDATE … RETURNING
        candidates = items.values_list("pk", flat=True)
        won = [pk for pk in candidates if claim(pk, worker_id=worker_id, now=now)]
    return [HeldLease(item_id=pk, worker_id=worker_id, until=until) for pk in won]


def release(item_id: str, *, worker_id: str) -> None:
    ImportRunItem.objects.filter(pk=item_id, lease_owner=worker_id).update(
        lease_owner=None, lease_until=None
    )


# The lease the stage running in this thread (or task) holds, so the transition that finishes
# its item ends the lease in the same UPDATE (``transitions.transition_item``) instead of the
# worker writing the row once more afterwards.
_held: ContextVar[HeldLease | None] = ContextVar("held_lease", default=None)


@contextmanager
def holding(lease: HeldLease) -> Iterator[HeldLease]:
    """Within: the transition that finishes ``lease``'s item releases it."""
    token = _held.set(lease)
    try:
        yield lease
    finally:
        _held.reset(token)


def ending_with(item: ImportRunItem) -> HeldLease | None:
    """The lease held here when the transition finishing ``item`` (read under its row lock)
    ends it too: the lease must be this item's and its owner's still."""
    lease = _held.get()
    if lease is None or lease.item_id != item.item_id or item.lease_owner != lease.worker_id:
        return None
    return lease
