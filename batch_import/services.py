"""Writes that API, pages and CLI share: start a run, cancel it, retry an item, wait."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from batch_import import dispatch
from batch_import.errors import Conflict, InvalidRequest, InvalidTransition
from batch_import.identity import api_key_digest, api_key_fingerprint, normalize_provider_id
from batch_import.models import ImportRun, ImportRunItem, LegacyImportBatch
from batch_import.run_requests import RunRequest, base_url_error
from batch_import.transitions import (
    EventType,
    Writer,
    record_event,
    record_events,
    refresh_run_state,
    transition_item,
)
from relay_project.compiled_reads import CompiledInsert
from relay_project.crypto import Secret, reveal
from relay_project.inputs import key_problem
from relay_project.messages import Msg

Stage = ImportRunItem.Stage
Access = ImportRunItem.AccessStatus


@dataclass(frozen=True)
class StartedRun:
    run: ImportRun
    created: bool  # False when an Idempotency-Key replay returned an existing run


def request_digest(request: RunRequest) -> str:
    """A digest of what the request asks for; keys enter only as keyed digests."""
    body = {
        "host_id": request.host_id,
        "mode": request.mode,
        "access_mode": request.access_mode,
        "subscription_users": list(request.subscription_users),
        "subscription_days": request.subscription_days,
        "probe_api_key": api_key_digest(request.probe_api_key) if request.probe_api_key else None,
        "confirm_wait_timeout_sec": request.confirm_wait_timeout_sec,
        # Only when set, so digests stored before previews existed still match their replays.
        **({"dry_run": True} if request.dry_run else {}),
        "entries": [
            [e.base_url, api_key_digest(e.api_key), list(e.requested_models)]
            for e in request.entries
        ],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# A run's items, written in batched INSERTs compiled once per process.
NEW_ITEMS = CompiledInsert(ImportRunItem)


def run_start(
    *, request: RunRequest, created_by: str = "", idempotency_key: str | None = None
) -> StartedRun:
    """Create the run and its items and hand the items to the workers; returns at once.

    Duplicate entries (same provider_id and key) collapse into the first item, with an event
    on it saying so. With an ``idempotency_key``, the same key and body give the same run and
    the same key with another body is a conflict.
    """
    digest = request_digest(request)
    if idempotency_key:
        existing = ImportRun.objects.with_counts().filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return _replay(existing, digest)
    try:
        with transaction.atomic():
            run = _create_run(request, digest, created_by, idempotency_key)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race.
        existing = ImportRun.objects.with_counts().filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _replay(existing, digest)
    return StartedRun(run=run, created=True)


def _replay(existing: ImportRun, digest: str) -> StartedRun:
    if existing.request_digest != digest:
        raise Conflict(_("Idempotency-Key was already used with a different request body"))
    return StartedRun(run=existing, created=False)


def _create_run(
    request: RunRequest, digest: str, created_by: str, idempotency_key: str | None
) -> ImportRun:
    run = ImportRun.objects.create(
        host_id=request.host_id,
        mode=request.mode,
        access_mode=request.access_mode,
        subscription_users=list(request.subscription_users),
        subscription_days=request.subscription_days,
        probe_api_key=request.probe_api_key,
        confirm_wait_timeout_sec=request.confirm_wait_timeout_sec,
        idempotency_key=idempotency_key or None,
        request_digest=digest,
        created_by=created_by,
        is_preview=request.dry_run,
    )
    if not run.is_preview:  # a preview makes nothing a V1 batch would track
        LegacyImportBatch.objects.create(host_id=request.host_id, run_id=run.run_id, mode=run.mode)
    now = timezone.now()
    items: dict[tuple[str, str], ImportRunItem] = {}
    duplicates: list[tuple[ImportRunItem, int]] = []
    for index, entry in enumerate(request.entries):
        provider_id = normalize_provider_id(entry.base_url)
        key_digest = api_key_digest(entry.api_key)
        first = items.get((provider_id, key_digest))
        if first is not None:
            merged = list(dict.fromkeys([*first.requested_models, *entry.requested_models]))
            first.requested_models = merged
            duplicates.append((first, index))
            continue
        items[(provider_id, key_digest)] = ImportRunItem(
            run=run,
            position=index,
            base_url=entry.base_url,
            provider_id=provider_id,
            api_key=entry.api_key,
            api_key_fingerprint=api_key_fingerprint(entry.api_key),
            api_key_digest=key_digest,
            requested_models=list(entry.requested_models),
            next_retry_at=now,
        )
    NEW_ITEMS.create_many(list(items.values()))
    record_events(
        items=items.values(),
        event_type=EventType.CREATED,
        message=Msg(gettext_noop("entry accepted")),
    )
    for item, index in duplicates:
        record_event(
            item=item,
            event_type=EventType.DUPLICATE,
            message=Msg(
                gettext_noop(
                    "entry %(index)s repeats this provider and key; it is not provisioned twice"
                ),
                index=index,
            ),
            payload={"entry_index": index},
        )
    run.duplicate_entries = len(duplicates)
    run.save(update_fields=["duplicate_entries"])
    refresh_run_state(run_id=run.run_id)
    run.refresh_from_db()
    item_ids = [item.item_id for item in items.values()]
    analyze_items_after_commit(len(item_ids))
    transaction.on_commit(lambda: dispatch.enqueue_items(item_ids))
    return run


# A run of this many items or more has the items' statistics taken again once it is stored.
ANALYZE_AT_ITEMS = 100


def analyze_items_after_commit(count: int) -> None:
    """PostgreSQL plans each item's lookups of its siblings from statistics that had not seen
    a run just stored: they count none of its items when every run they know is among the
    most common values, every index that starts with the run looks as good, and the planner
    took the one that matches fewest columns, reading all of the run's items per lookup
    (issue #17: rows read per item grew with the run). Taking them again after a bulk load is
    what PostgreSQL advises; a sample, so it costs the same whatever the table's size."""
    if count >= ANALYZE_AT_ITEMS and connection.vendor == "postgresql":
        transaction.on_commit(_analyze_items)


def _analyze_items() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ImportRunItem._meta.db_table}")


def run_cancel(*, run_id: str, actor: str = "") -> ImportRun:
    """Cancel a run: items not yet picked up stop now; items a worker holds finish their
    current step and then stop (the worker checks the run state between steps)."""
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run_id)
        if run.is_terminal:
            raise InvalidTransition(
                _("run %(run_id)s is already %(state)s")
                % {"run_id": run_id, "state": run.get_state_display()}
            )
        run.state = ImportRun.State.CANCELLED
        run.save(update_fields=["state", "updated_at"])
        now = timezone.now()
        idle = run.items.exclude(current_stage=Stage.DONE).exclude(lease_until__gt=now)
        for item_id in idle.values_list("item_id", flat=True):
            item_stop_cancelled(item_id=item_id, actor=actor)
        refresh_run_state(run_id=run_id)
    run.refresh_from_db()
    return run


def item_stop_cancelled(*, item_id: str, actor: str = "") -> ImportRunItem:
    return transition_item(
        item_id=item_id,
        stage=Stage.DONE,
        event_type=EventType.CANCELLED,
        message=(
            Msg(gettext_noop("run cancelled by %(actor)s"), actor=actor)
            if actor
            else Msg(gettext_noop("run cancelled"))
        ),
        fields={"next_retry_at": None, "lease_owner": None, "lease_until": None},
    )


def item_retry(*, run_id: str, item_id: str, actor: str = "") -> ImportRunItem:
    """Send a finished item back to the stage that failed, as a new attempt."""
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run_id)
        item = ImportRunItem.objects.select_for_update().get(run=run, pk=item_id)
        if item.current_stage != Stage.DONE:
            raise InvalidTransition(
                _("item %(item_id)s is still in stage %(stage)s")
                % {"item_id": item_id, "stage": item.get_current_stage_display()}
            )
        restart = _retry_stage(item)
        if run.state == ImportRun.State.CANCELLED:
            run.state = ImportRun.State.RUNNING
            run.save(update_fields=["state", "updated_at"])
        fields = {
            "attempt": item.attempt + 1,
            "next_retry_at": timezone.now(),
            "lease_owner": None,
            "lease_until": None,
            "last_error": None,
            "last_error_stage": None,
        }
        if restart in (Stage.CONFIRM, Stage.PROBE, Stage.PROVISION):
            fields["confirmation_attempts"] = 0
        item = transition_item(
            item_id=item_id,
            stage=restart,
            confirmation_status=(
                ImportRunItem.ConfirmationStatus.PENDING if restart != Stage.VALIDATE else None
            ),
            event_type=EventType.RETRIED,
            message=(
                Msg(
                    gettext_noop("retry from %(stage)s by %(actor)s"),
                    stage=Msg.word("stage", restart),
                    actor=actor,
                )
                if actor
                else Msg(gettext_noop("retry from %(stage)s"), stage=Msg.word("stage", restart))
            ),
            fields=fields,
            payload={"from_stage": restart, "attempt": item.attempt + 1},
            writer=Writer.OPERATOR,
        )
    transaction.on_commit(lambda: dispatch.enqueue_items([item_id]))
    return item


def items_retry(*, run_id: str, item_ids: list[str], actor: str = "") -> list[ImportRunItem]:
    """Retry several finished items of a run (those that ended active are left as they are).
    Returns the items sent back."""
    retried = []
    candidates = ImportRunItem.objects.filter(
        run_id=run_id, pk__in=item_ids, current_stage=Stage.DONE
    ).exclude(access_status=ImportRunItem.AccessStatus.ACTIVE)
    for item_id in candidates.values_list("pk", flat=True):
        retried.append(item_retry(run_id=run_id, item_id=item_id, actor=actor))
    return retried


def item_replace_entry(
    *, run_id: str, item_id: str, base_url: str, api_key: Secret | str, actor: str = ""
) -> ImportRunItem:
    """Fix a finished item that did not end active in place: a new base URL and/or key,
    probed again from the start as a new attempt. The old key is overwritten (kept nowhere);
    the event names only the fingerprints."""
    errors: dict[str, str] = {}
    url_error = base_url_error(base_url)
    if url_error:
        errors["base_url"] = url_error
    key_error = key_problem(reveal(api_key))
    if key_error:
        errors["api_key"] = key_error
    if errors:
        raise InvalidRequest(errors)
    key = Secret(reveal(api_key).strip())
    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run_id)
        item = ImportRunItem.objects.select_for_update().get(run=run, pk=item_id)
        if item.current_stage != Stage.DONE or item.access_status == Access.ACTIVE:
            raise InvalidTransition(
                _("item %(item_id)s is not a finished item that failed") % {"item_id": item_id}
            )
        old_fingerprint = item.api_key_fingerprint
        item = transition_item(
            item_id=item_id,
            stage=Stage.PROBE,
            confirmation_status=ImportRunItem.ConfirmationStatus.PENDING,
            event_type=EventType.RETRIED,
            message=Msg(
                gettext_noop("entry replaced by %(actor)s: %(old)s → %(new)s; probing again")
                if actor
                else gettext_noop("entry replaced: %(old)s → %(new)s; probing again"),
                actor=actor,
                old=old_fingerprint,
                new=api_key_fingerprint(key),
            ),
            fields={
                "base_url": base_url.strip(),
                "provider_id": normalize_provider_id(base_url.strip()),
                "api_key": key,
                "api_key_fingerprint": api_key_fingerprint(key),
                "api_key_digest": api_key_digest(key),
                "attempt": item.attempt + 1,
                "confirmation_attempts": 0,
                "next_retry_at": timezone.now(),
                "lease_owner": None,
                "lease_until": None,
                "last_error": None,
                "last_error_stage": None,
            },
            payload={"from_stage": Stage.PROBE, "attempt": item.attempt + 1, "replaced": True},
            writer=Writer.OPERATOR,
        )
        if run.state == ImportRun.State.CANCELLED:
            run.state = ImportRun.State.RUNNING
            run.save(update_fields=["state", "updated_at"])
    transaction.on_commit(lambda: dispatch.enqueue_items([item_id]))
    return item


def _retry_stage(item: ImportRunItem) -> str:
    """The stage to run again: where it failed, else validation for a verdict worth redoing."""
    if item.last_error_stage in Stage.values and item.last_error_stage != Stage.DONE:
        return item.last_error_stage
    if item.raw_models == []:
        return Stage.PROBE
    if item.account_id is None:
        return Stage.PROVISION
    if item.confirmation_status == ImportRunItem.ConfirmationStatus.FAILED:
        return Stage.CONFIRM
    return Stage.VALIDATE


def run_wait(*, run_id: str, timeout_sec: float, poll_sec: float = 0.5) -> ImportRun:
    """Block until the run is terminal or the timeout ends (for callers that want to wait)."""
    deadline = time.monotonic() + max(timeout_sec, 0)
    while True:
        run = ImportRun.objects.with_counts().get(pk=run_id)
        if run.is_terminal or time.monotonic() >= deadline:
            return run
        time.sleep(min(poll_sec, max(deadline - time.monotonic(), 0.01)))


# A preview's probe results are trusted this long; an older preview is probed again by a new
# preview (the upstream's models or the host may have changed).
PREVIEW_MAX_AGE = timedelta(hours=1)
# What a promoted item keeps from its preview's probe stage.
PROBE_FIELDS = (
    "raw_models",
    "normalized_models",
    "canonical_model_families",
    "resolved_smoke_model",
    "recommended_models",
    "capability_profile",
    "advisory_messages",
)


def run_promote(*, run_id: str, actor: str = "") -> ImportRun:
    """Turn a recent preview into a real run that starts at provisioning with the preview's
    probe results (no second probe); entries the preview could not probe start from probing."""
    with transaction.atomic():
        preview = ImportRun.objects.select_for_update().get(pk=run_id)
        if not preview.is_preview:
            raise Conflict(_("run %(run_id)s is not a preview") % {"run_id": run_id})
        if preview.promoted_to:
            raise Conflict(
                _("preview %(run_id)s was already promoted to run %(promoted_to)s")
                % {"run_id": run_id, "promoted_to": preview.promoted_to}
            )
        if not preview.is_terminal:
            raise Conflict(
                _("preview %(run_id)s is still %(state)s")
                % {"run_id": run_id, "state": preview.get_state_display()}
            )
        if timezone.now() - preview.started_at > PREVIEW_MAX_AGE:
            raise Conflict(
                _("preview %(run_id)s is older than %(age)s; preview again")
                % {"run_id": run_id, "age": PREVIEW_MAX_AGE}
            )
        run = ImportRun.objects.create(
            host_id=preview.host_id,
            mode=preview.mode,
            access_mode=preview.access_mode,
            subscription_users=list(preview.subscription_users),
            subscription_days=preview.subscription_days,
            probe_api_key=preview.probe_api_key,
            confirm_wait_timeout_sec=preview.confirm_wait_timeout_sec,
            request_digest=preview.request_digest,
            created_by=actor or preview.created_by,
            preview_of=preview.run_id,
            duplicate_entries=preview.duplicate_entries,
        )
        LegacyImportBatch.objects.create(host_id=run.host_id, run_id=run.run_id, mode=run.mode)
        preview.promoted_to = run.run_id
        preview.save(update_fields=["promoted_to", "updated_at"])
        now = timezone.now()
        items = []
        for old in preview.items.order_by("position"):
            probed = bool(old.raw_models) and old.last_error_stage != Stage.PROBE
            item = ImportRunItem(
                run=run,
                position=old.position,
                base_url=old.base_url,
                provider_id=old.provider_id,
                api_key=old.api_key,
                api_key_fingerprint=old.api_key_fingerprint,
                api_key_digest=old.api_key_digest,
                requested_models=list(old.requested_models),
                current_stage=Stage.PROVISION if probed else Stage.PROBE,
                next_retry_at=now,
            )
            if probed:
                for name in PROBE_FIELDS:
                    setattr(item, name, getattr(old, name))
            items.append(item)
        ImportRunItem.objects.bulk_create(items)
        analyze_items_after_commit(len(items))
        for item in items:
            record_event(
                item=item,
                event_type=EventType.CREATED,
                message=Msg(
                    gettext_noop("promoted from preview %(preview)s (probe results reused)")
                    if item.current_stage == Stage.PROVISION
                    else gettext_noop("promoted from preview %(preview)s"),
                    preview=preview.run_id,
                ),
                payload={"preview_of": preview.run_id},
            )
        refresh_run_state(run_id=run.run_id)
        run.refresh_from_db()
        item_ids = [item.item_id for item in items]
        transaction.on_commit(lambda: dispatch.enqueue_items(item_ids))
    return run
