"""Runs, items and events: the single source of truth for API, pages, admin and CLI.

Field names and enum values follow the canonical contract of seed 001 §2 and §6.1.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Case, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hosts.models import Host
from relay_project.crypto import EncryptedTextField
from relay_project.ids import new_event_id, new_item_id, new_run_id
from relay_project.messages import render

# A run's item counts (``run_state.RunCounts``, by field): the columns of its counter shards,
# read on its rows as annotations of the same names (``ImportRun.objects.with_counts()``).
RUN_COUNT_COLUMN = {
    "total": "total_items",
    "done": "completed_items",
    "active": "active_items",
    "degraded": "degraded_items",
    "broken": "broken_items",
    "warnings": "warning_items",
    "advisory": "advisory_items",
    "ended_by_a_stage": "stage_ended_items",
}
RUN_COUNT_COLUMNS = tuple(RUN_COUNT_COLUMN.values())


class ImportRunQuerySet(models.QuerySet):
    def with_counts(self) -> ImportRunQuerySet:
        """Runs with their item counts (``RUN_COUNT_COLUMNS`` as attributes of each run),
        each the sum of its counter shards' column: a subquery over the run's ``SHARDS`` rows
        (their unique index), so no join multiplies the sums; 0 for a run never counted."""
        return self.annotate(
            **{
                name: Coalesce(
                    Subquery(
                        ImportRunCounterShard.objects.filter(run=OuterRef("pk"))
                        .order_by()
                        .values("run")
                        .annotate(sum=Sum(name))
                        .values("sum")
                    ),
                    0,
                )
                for name in RUN_COUNT_COLUMNS
            }
        )


class ImportRun(models.Model):
    class State(models.TextChoices):
        RUNNING = "running", pgettext_lazy("run state", "running")
        COMPLETED = "completed", pgettext_lazy("run state", "completed")
        COMPLETED_WITH_WARNINGS = (
            "completed_with_warnings",
            pgettext_lazy("run state", "completed with warnings"),
        )
        FAILED = "failed", pgettext_lazy("run state", "failed")
        CANCELLED = "cancelled", pgettext_lazy("run state", "cancelled")

    class Mode(models.TextChoices):
        STRICT = "strict", _("strict")
        PARTIAL = "partial", _("partial")

    class AccessMode(models.TextChoices):
        SUBSCRIPTION = "subscription", _("subscription")
        SELF_SERVICE = "self_service", _("self-service")

    TERMINAL_STATES = frozenset(
        {State.COMPLETED, State.COMPLETED_WITH_WARNINGS, State.FAILED, State.CANCELLED}
    )

    run_id = models.CharField(
        primary_key=True,
        max_length=40,
        default=new_run_id,
        editable=False,
        verbose_name=_("run ID"),
    )
    host = models.ForeignKey(
        Host, on_delete=models.PROTECT, related_name="runs", verbose_name=_("host")
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, verbose_name=_("mode"))
    access_mode = models.CharField(
        max_length=20, choices=AccessMode.choices, verbose_name=_("access mode")
    )
    state = models.CharField(
        max_length=30, choices=State.choices, default=State.RUNNING, verbose_name=_("state")
    )
    subscription_users = models.JSONField(
        default=list, blank=True, verbose_name=_("subscription users")
    )
    subscription_days = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("subscription days")
    )
    probe_api_key = EncryptedTextField(null=True, blank=True, verbose_name=_("probe API key"))
    confirm_wait_timeout_sec = models.PositiveIntegerField(
        default=0, verbose_name=_("confirm wait timeout (s)")
    )
    duplicate_entries = models.PositiveIntegerField(default=0, verbose_name=_("duplicate entries"))
    idempotency_key = models.CharField(
        max_length=255, null=True, blank=True, verbose_name=_("idempotency key")
    )
    request_digest = models.CharField(max_length=64, blank=True, verbose_name=_("request digest"))
    created_by = models.CharField(max_length=150, blank=True, verbose_name=_("created by"))
    # A preview (dry run) probes for real but writes nothing to the host; promoting it starts
    # the real run from its probe results (seed 002 §5.3).
    is_preview = models.BooleanField(default=False, verbose_name=_("is preview"))
    preview_of = models.CharField(
        max_length=40,
        blank=True,
        help_text=_("The preview promoted."),
        verbose_name=_("preview of"),
    )
    promoted_to = models.CharField(
        max_length=40, blank=True, help_text=_("The run it became."), verbose_name=_("promoted to")
    )
    started_at = models.DateTimeField(auto_now_add=True, verbose_name=_("started at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    # Each counter shard counts the items of its own positions (``ImportRunCounterShard``):
    # set by every recount since; a run counted before keeps its whole count in shard 0.
    counted_by_shard = models.BooleanField(
        default=False, editable=False, verbose_name=_("counted by shard")
    )

    objects = ImportRunQuerySet.as_manager()

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        db_table = "import_runs"
        ordering = ["-started_at", "-run_id"]
        indexes = [
            # Runs list: newest first, optionally filtered by state.
            models.Index(fields=["-started_at", "-run_id"], name="run_started_idx"),
            models.Index(fields=["state", "-started_at"], name="run_state_started_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="run_idempotency_key_uniq",
            )
        ]

    def __str__(self) -> str:
        return self.run_id

    @property
    def is_terminal(self) -> bool:
        return self.state in self.TERMINAL_STATES

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        """As Django's, and the item counts too when every field is read again (a run read
        ``with_counts()`` keeps them current)."""
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        if fields is None:
            counts = ImportRun.objects.using(using or self._state.db).with_counts()
            vars(self).update(counts.values(*RUN_COUNT_COLUMNS).get(pk=self.pk))


class ImportRunCounterShard(models.Model):
    """One of a run's ``SHARDS`` rows of item counts; the run's counts are their sums.

    An item's transition adds what it changed in the run's counts (``run_state.item_counts``)
    to the row of its shard (its position modulo ``SHARDS``), so concurrent transitions of
    one run lock different rows, and none locks the run's. A recount
    (``transitions.refresh_run_state``) counts each shard's items into its row, so a shard
    counts exactly its items (``ImportRun.counted_by_shard``; before, a recount put the whole
    count in shard 0), and one whose items are not all done says the run goes on."""

    SHARDS = 16

    run = models.ForeignKey(
        ImportRun,
        on_delete=models.CASCADE,
        related_name="counter_shards",
        db_column="run_id",
        verbose_name=_("run"),
    )
    shard = models.PositiveSmallIntegerField(verbose_name=_("shard"))
    total_items = models.IntegerField(default=0, verbose_name=_("total items"))
    completed_items = models.IntegerField(default=0, verbose_name=_("completed items"))
    active_items = models.IntegerField(default=0, verbose_name=_("active items"))
    degraded_items = models.IntegerField(default=0, verbose_name=_("degraded items"))
    broken_items = models.IntegerField(default=0, verbose_name=_("broken items"))
    warning_items = models.IntegerField(default=0, verbose_name=_("warning items"))
    # The two counts the run state needs besides the shown ones (run_state.RunCounts).
    advisory_items = models.IntegerField(default=0, verbose_name=_("advisory items"))
    stage_ended_items = models.IntegerField(default=0, verbose_name=_("items ended by a stage"))

    class Meta:
        verbose_name = _("run counter shard")
        verbose_name_plural = _("run counter shards")
        db_table = "import_run_counters"
        constraints = [
            models.UniqueConstraint(fields=["run", "shard"], name="run_counter_shard_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.shard}"


class LegacyImportBatch(models.Model):
    """V1 ``import_batches`` row kept for linkage only; V2 state lives on runs and items."""

    class Status(models.TextChoices):
        """Seed 002 §4.2, written by ``run_state.legacy_batch_status`` from the run's outcome
        and its rollback; a rollback that leaves resources behind marks the batch failed (§5.5).
        The V2 pipeline creates the batch when its run starts, so it begins at ``running``;
        ``pending`` and ``previewed`` complete the seed's set (V1 batches)."""

        PENDING = "pending", _("pending")
        PREVIEWED = "previewed", _("previewed")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        PARTIALLY_SUCCEEDED = "partially_succeeded", _("partially succeeded")
        FAILED = "failed", _("failed")
        ROLLBACK_RUNNING = "rollback_running", _("rollback running")
        ROLLED_BACK = "rolled_back", _("rolled back")

    host = models.ForeignKey(
        Host, on_delete=models.PROTECT, related_name="legacy_batches", verbose_name=_("host")
    )
    run_id = models.CharField(max_length=40, unique=True, verbose_name=_("run ID"))
    mode = models.CharField(max_length=10, verbose_name=_("mode"))
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.RUNNING, verbose_name=_("status")
    )
    provider_ids = models.JSONField(default=list, blank=True, verbose_name=_("provider IDs"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("legacy import batch")
        verbose_name_plural = _("legacy import batches")
        db_table = "import_batches"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"batch {self.pk} (run {self.run_id})"


class ImportRunItem(models.Model):
    """One entry of a run, from probe to a verdict."""

    class Stage(models.TextChoices):
        PROBE = "probe", pgettext_lazy("stage", "probe")
        PROVISION = "provision", pgettext_lazy("stage", "provision")
        CONFIRM = "confirm", pgettext_lazy("stage", "confirm")
        VALIDATE = "validate", pgettext_lazy("stage", "validate")
        DONE = "done", pgettext_lazy("stage", "done")

    class ConfirmationStatus(models.TextChoices):
        PENDING = "pending", pgettext_lazy("confirmation", "pending")
        CONFIRMED = "confirmed", pgettext_lazy("confirmation", "confirmed")
        ADVISORY = "advisory", pgettext_lazy("confirmation", "advisory")
        FAILED = "failed", pgettext_lazy("confirmation", "failed")

    class AccessStatus(models.TextChoices):
        UNKNOWN = "unknown", pgettext_lazy("access", "unknown")
        ACTIVE = "active", pgettext_lazy("access", "active")
        DEGRADED = "degraded", pgettext_lazy("access", "degraded")
        BROKEN = "broken", pgettext_lazy("access", "broken")

    class FailureClass(models.TextChoices):
        """Why an item is degraded or broken, so an operator tells a dead key from a host
        problem at a glance (ARCHITECTURE §4, outcome rule)."""

        UPSTREAM_AUTH = "upstream_auth", _("upstream refused the key")
        UPSTREAM_QUOTA = "upstream_quota", _("upstream quota or rate limit")
        UPSTREAM_UNREACHABLE = "upstream_unreachable", _("upstream unreachable")
        UPSTREAM_ERROR = "upstream_error", _("upstream answered with an error")
        UPSTREAM_MODEL_MISSING = "upstream_model_missing", _("no usable model upstream")
        UPSTREAM_REFUSED_URL = "upstream_refused_url", _("upstream address not allowed")
        HOST_REFUSED = "host_refused", _("host refused a change")
        HOST_COMPATIBILITY_GAP = "host_compatibility_gap", _("host lacks a needed feature")
        GATEWAY_ROUTING = "gateway_routing", _("host gateway does not route to the account")
        ROLLED_BACK = "rolled_back", _("rolled back")
        INTERNAL_ERROR = "internal_error", _("internal error")

    class MatchedAccountState(models.TextChoices):
        ACTIVE = "active", pgettext_lazy("account state", "enabled")
        DISABLED = "disabled", pgettext_lazy("account state", "disabled")
        DEPRECATED = "deprecated", pgettext_lazy("account state", "deprecated")
        BROKEN = "broken", pgettext_lazy("account state", "broken")

    class AccountResolution(models.TextChoices):
        CREATED = "created", pgettext_lazy("account resolution", "created")
        REUSED = "reused", pgettext_lazy("account resolution", "reused")
        REACTIVATED = "reactivated", pgettext_lazy("account resolution", "reactivated")
        REPLACED = "replaced", pgettext_lazy("account resolution", "replaced")

    item_id = models.CharField(
        primary_key=True,
        max_length=40,
        default=new_item_id,
        editable=False,
        verbose_name=_("item ID"),
    )
    run = models.ForeignKey(
        ImportRun,
        on_delete=models.CASCADE,
        related_name="items",
        db_column="run_id",
        verbose_name=_("run"),
    )
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    base_url = models.CharField(max_length=500, verbose_name=_("base URL"))
    provider_id = models.CharField(max_length=255, verbose_name=_("provider ID"))
    api_key = EncryptedTextField(verbose_name=_("API key"))
    api_key_fingerprint = models.CharField(max_length=20, verbose_name=_("API key fingerprint"))
    api_key_digest = models.CharField(max_length=64, verbose_name=_("API key digest"))
    current_stage = models.CharField(
        max_length=10, choices=Stage.choices, default=Stage.PROBE, verbose_name=_("current stage")
    )
    confirmation_status = models.CharField(
        max_length=10,
        choices=ConfirmationStatus.choices,
        default=ConfirmationStatus.PENDING,
        verbose_name=_("confirmation status"),
    )
    access_status = models.CharField(
        max_length=10,
        choices=AccessStatus.choices,
        default=AccessStatus.UNKNOWN,
        verbose_name=_("access status"),
    )
    matched_account_state = models.CharField(
        max_length=12,
        choices=MatchedAccountState.choices,
        null=True,
        blank=True,
        verbose_name=_("matched account state"),
    )
    account_resolution = models.CharField(
        max_length=12,
        choices=AccountResolution.choices,
        null=True,
        blank=True,
        verbose_name=_("account resolution"),
    )
    requested_models = models.JSONField(
        default=list, blank=True, verbose_name=_("requested models")
    )
    raw_models = models.JSONField(default=list, blank=True, verbose_name=_("raw models"))
    normalized_models = models.JSONField(
        default=list, blank=True, verbose_name=_("normalized models")
    )
    canonical_model_families = models.JSONField(
        default=list, blank=True, verbose_name=_("canonical model families")
    )
    resolved_smoke_model = models.CharField(
        max_length=255, null=True, blank=True, verbose_name=_("resolved smoke model")
    )
    recommended_models = models.JSONField(
        default=list, blank=True, verbose_name=_("recommended models")
    )
    capability_profile = models.JSONField(
        null=True, blank=True, verbose_name=_("capability profile")
    )
    group_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("group ID"))
    channel_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("channel ID"))
    account_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("account ID"))
    attempt = models.PositiveIntegerField(default=1, verbose_name=_("attempt"))
    retry_count = models.PositiveIntegerField(default=0, verbose_name=_("retry count"))
    confirmation_attempts = models.PositiveIntegerField(
        default=0, verbose_name=_("confirmation attempts")
    )
    last_retry_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last retry at"))
    next_retry_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next retry at"))
    lease_owner = models.CharField(
        max_length=100, null=True, blank=True, verbose_name=_("lease owner")
    )
    lease_until = models.DateTimeField(null=True, blank=True, verbose_name=_("lease until"))
    advisory_messages = models.JSONField(
        default=list, blank=True, verbose_name=_("advisory messages")
    )
    has_warning = models.BooleanField(default=False, verbose_name=_("has warning"))
    last_error_stage = models.CharField(
        max_length=10, null=True, blank=True, verbose_name=_("last error stage")
    )
    last_error = models.TextField(null=True, blank=True, verbose_name=_("last error"))
    # The same error as a translatable message (relay_project.messages); null on older rows.
    last_error_i18n = models.JSONField(
        null=True, blank=True, verbose_name=_("last error (message id)")
    )
    failure_class = models.CharField(
        max_length=32,
        choices=FailureClass.choices,
        blank=True,
        default="",
        verbose_name=_("failure class"),
    )
    # The last gateway validation's proof (seed 003): status, model, latency, short preview.
    validation_evidence = models.JSONField(
        null=True, blank=True, verbose_name=_("validation evidence")
    )
    # subscription mode: per user, created / found / refused and why, and whose key validates
    # (hosts.subscribers.SubscriberAccess).
    subscription_access = models.JSONField(
        default=list, blank=True, verbose_name=_("subscription access")
    )
    legacy_batch = models.ForeignKey(
        LegacyImportBatch,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="items",
        db_column="legacy_batch_id",
        verbose_name=_("legacy batch"),
    )
    legacy_provider_id = models.CharField(
        max_length=255, null=True, blank=True, verbose_name=_("legacy provider ID")
    )
    provision_reused = models.BooleanField(default=False, verbose_name=_("provision reused"))
    reused_from_provider_id = models.CharField(
        max_length=255, null=True, blank=True, verbose_name=_("reused from provider ID")
    )
    reused_from_account_id = models.BigIntegerField(
        null=True, blank=True, verbose_name=_("reused from account ID")
    )
    preview_plan = models.JSONField(
        null=True,
        blank=True,
        help_text=_("A preview's plan: decision and host resources."),
        verbose_name=_("preview plan"),
    )
    rolled_back_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When the run's rollback removed what this item made."),
        verbose_name=_("rolled back at"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    # One more at every transition's write (``transitions.transition_item``), the only writer
    # of an item's columns besides its lease's: a worker writes the item it read without
    # reading it again while the row still has the version it read.
    version = models.PositiveIntegerField(default=0, editable=False, verbose_name=_("version"))
    # The first key of the "problems first" order (seed 004 §8.2), stored so that an index
    # serves the order: 0 unfinished and broken/degraded, 1 unfinished, 2 finished and
    # broken/degraded, 3 the rest. The database computes it from the row itself, so every
    # write (transitions, bulk updates, fixtures) keeps it right without code of its own.
    problem_rank = models.GeneratedField(
        expression=Case(
            When(
                ~Q(current_stage=Stage.DONE)
                & Q(access_status__in=[AccessStatus.BROKEN, AccessStatus.DEGRADED]),
                then=Value(0),
            ),
            When(~Q(current_stage=Stage.DONE), then=Value(1)),
            When(access_status__in=[AccessStatus.BROKEN, AccessStatus.DEGRADED], then=Value(2)),
            default=Value(3),
        ),
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
        verbose_name=_("problem rank"),
    )

    class Meta:
        verbose_name = _("import item")
        verbose_name_plural = _("import items")
        db_table = "import_run_items"
        # By the run's id, not the relation: "run" would follow ImportRun's ordering, a join
        # and a sort of every matching row even for .first() within one run.
        ordering = ["-run_id", "position"]
        indexes = [
            models.Index(fields=["run", "position"], name="item_run_position_idx"),
            # The items list, problems first (selectors.items_problems_first), first and deep
            # pages alike: an index range scan, never a sort of the run's items.
            models.Index(
                fields=["run", "problem_rank", "-updated_at", "item_id"],
                name="item_run_problems_idx",
            ),
            # The run's counts read only the rows they count (run detail and run page):
            #   projection.recent_warnings: WHERE run_id = ? AND confirmation_status = 'advisory'
            models.Index(
                fields=["run"],
                name="item_run_advisory_idx",
                condition=Q(confirmation_status="advisory"),
            ),
            #   projection.recent_warnings: WHERE run_id = ? AND has_warning AND NOT advisory
            #     AND access_status NOT IN (degraded, broken)
            models.Index(
                fields=["run", "confirmation_status", "access_status"],
                name="item_run_warning_idx",
                condition=Q(has_warning=True),
            ),
            #   selectors.failure_class_counts, projection._failure_reasons:
            #     WHERE run_id = ? AND failure_class <> '' [AND access_status IN …] GROUP BY 1
            models.Index(
                fields=["run", "failure_class", "access_status"],
                name="item_run_failure_idx",
                condition=~Q(failure_class=""),
            ),
            #   selectors.stage_counts: WHERE run_id = ? AND current_stage <> 'done' GROUP BY 1
            models.Index(
                fields=["run", "current_stage"],
                name="item_run_unfinished_idx",
                condition=~Q(current_stage="done"),
            ),
            # Per item, one row whatever the run's size: the first earlier key of the same
            # upstream that has a capability profile (stages.upstream_probe.sibling_profile)
            #   WHERE run_id = ? AND provider_id = ? AND base_url = ? AND profile IS NOT NULL
            #   ORDER BY position LIMIT 1
            models.Index(
                fields=["run", "provider_id", "base_url", "position"],
                name="item_run_profile_idx",
                condition=Q(capability_profile__isnull=False),
            ),
            #   and the first item that settled the provider's group (reuse_preflight.
            #   settled_sibling): WHERE run_id = ? AND provider_id = ? AND group_id IS NOT NULL
            #   AND rolled_back_at IS NULL ORDER BY position LIMIT 1
            models.Index(
                fields=["run", "provider_id", "position"],
                name="item_run_settled_idx",
                condition=Q(group_id__isnull=False, rolled_back_at__isnull=True),
            ),
            models.Index(fields=["run", "current_stage"], name="item_run_stage_idx"),
            models.Index(fields=["run", "access_status"], name="item_run_access_idx"),
            models.Index(fields=["provider_id", "api_key_digest"], name="item_provider_key_idx"),
            # A provider's latest finished item (providers.reconcile._latest_item, per provider,
            # account and access mode on every pass): a walk that stops at the first match
            # instead of a sort of every item the provider ever finished.
            models.Index(
                fields=["provider_id", "-updated_at"],
                name="item_provider_latest_idx",
                condition=Q(current_stage="done", rolled_back_at__isnull=True),
            ),
            # A task's free places take the next due items of its runs (leases.take_next_due):
            #   WHERE run_id = ? AND current_stage <> 'done' AND next_retry_at <= now
            #     AND (lease_until IS NULL OR lease_until < now) ORDER BY next_retry_at, position
            # a walk past the items in flight, not a sort of every unfinished item of the run.
            models.Index(
                fields=["run", "next_retry_at", "position"],
                name="item_run_due_idx",
                condition=~Q(current_stage="done"),
            ),
            # The worker sweep (batch_import.leases.claimable_items):
            #   WHERE current_stage <> 'done' AND next_retry_at <= now
            #     AND (lease_until IS NULL OR lease_until < now)
            # Only unfinished items are indexed, so the index stays small.
            models.Index(
                fields=["current_stage", "next_retry_at", "lease_until"],
                name="item_claimable_idx",
                condition=~Q(current_stage="done"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} ({self.provider_id})"

    @property
    def is_done(self) -> bool:
        return self.current_stage == self.Stage.DONE

    @property
    def last_error_text(self) -> str:
        """The last error in the active language."""
        return render(self.last_error, self.last_error_i18n)


class ImportRunItemEvent(models.Model):
    class EventType(models.TextChoices):
        CREATED = "created", _("created")
        STAGE_STARTED = "stage_started", _("stage started")
        STAGE_COMPLETED = "stage_completed", _("stage completed")
        RETRY_SCHEDULED = "retry_scheduled", _("retry scheduled")
        ADVISORY = "advisory", _("advisory")
        ERROR = "error", _("error")
        REUSED = "reused", _("reused")
        REACTIVATED = "reactivated", _("reactivated")
        REPLACED = "replaced", _("replaced")
        PATCHED = "patched", _("patched")
        DUPLICATE = "duplicate", _("duplicate")
        RESOURCE_CREATED = "resource_created", _("resource created")
        ROLLED_BACK = "rolled_back", _("rolled back")
        CONFIRMED = "confirmed", _("confirmed")
        VALIDATED = "validated", _("validated")
        CANCELLED = "cancelled", _("cancelled")
        RETRIED = "retried", _("retried")
        PREVIEWED = "previewed", _("previewed")
        ACCESS_GRANTED = "access_granted", _("access granted")

    event_id = models.CharField(
        primary_key=True,
        max_length=40,
        default=new_event_id,
        editable=False,
        verbose_name=_("event ID"),
    )
    # No index of its own either: event_run_created_idx starts with run_id and serves every
    # lookup by run; a second index was one more page to write per event (about ten per item).
    run = models.ForeignKey(
        ImportRun,
        on_delete=models.CASCADE,
        related_name="events",
        db_column="run_id",
        db_index=False,
        verbose_name=_("run"),
    )
    # No index of its own: event_item_timeline_idx starts with item_id and serves every lookup
    # by item in timeline order (a plain item_id index tempted the planner into a sort).
    item = models.ForeignKey(
        ImportRunItem,
        on_delete=models.CASCADE,
        related_name="events",
        db_column="item_id",
        db_index=False,
        verbose_name=_("item"),
    )
    event_type = models.CharField(
        max_length=30, choices=EventType.choices, verbose_name=_("event type")
    )
    stage = models.CharField(
        max_length=10, choices=ImportRunItem.Stage.choices, verbose_name=_("stage")
    )
    attempt = models.PositiveIntegerField(default=1, verbose_name=_("attempt"))
    message = models.TextField(blank=True, verbose_name=_("message"))
    # The same message as a translatable message (relay_project.messages); null on older rows.
    message_i18n = models.JSONField(null=True, blank=True, verbose_name=_("message (message id)"))
    payload = models.JSONField(default=dict, blank=True, verbose_name=_("payload"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("item event")
        verbose_name_plural = _("item events")
        db_table = "import_run_item_events"
        ordering = ["created_at", "event_id"]
        indexes = [
            # An item's timeline, oldest first, read in index order.
            models.Index(fields=["item", "created_at", "event_id"], name="event_item_timeline_idx"),
            models.Index(fields=["run", "created_at"], name="event_run_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.item_id}"

    @property
    def message_text(self) -> str:
        """The message in the active language."""
        return render(self.message, self.message_i18n)


class RunRollback(models.Model):
    """The rollback of one run (ARCH §9): what was deleted, what was kept and why, and what
    remains after a failure, retried with backoff until it is gone or a person resumes it."""

    class Status(models.TextChoices):
        RUNNING = "rollback_running", _("rollback running")
        PARTIAL = "rollback_partial", _("rollback partial")
        ROLLED_BACK = "rolled_back", _("rolled back")

    run = models.OneToOneField(
        ImportRun,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="rollback",
        db_column="run_id",
        verbose_name=_("run"),
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.RUNNING, verbose_name=_("status")
    )
    deleted = models.JSONField(default=list, blank=True, verbose_name=_("deleted"))
    kept = models.JSONField(default=list, blank=True, verbose_name=_("kept"))
    remaining = models.JSONField(default=list, blank=True, verbose_name=_("remaining"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    lease_until = models.DateTimeField(null=True, blank=True, verbose_name=_("lease until"))
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    requested_by = models.CharField(max_length=150, blank=True, verbose_name=_("requested by"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("run rollback")
        verbose_name_plural = _("run rollbacks")
        db_table = "run_rollbacks"
        indexes = [
            # The sweep (batch_import.rollback.due_rollbacks):
            #   WHERE status = 'rollback_partial' AND next_attempt_at <= now
            models.Index(
                fields=["next_attempt_at"],
                name="rollback_due_idx",
                condition=Q(status="rollback_partial"),
            )
        ]

    def __str__(self) -> str:
        return f"rollback of {self.run_id} ({self.status})"
