"""Runs, items and events: the single source of truth for API, pages, admin and CLI.

Field names and enum values follow the canonical contract of seed 001 §2 and §6.1.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from hosts.models import Host
from relay_project.crypto import EncryptedTextField
from relay_project.ids import new_event_id, new_item_id, new_run_id


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

    run_id = models.CharField(primary_key=True, max_length=40, default=new_run_id, editable=False)
    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="runs")
    mode = models.CharField(max_length=10, choices=Mode.choices)
    access_mode = models.CharField(max_length=20, choices=AccessMode.choices)
    state = models.CharField(max_length=30, choices=State.choices, default=State.RUNNING)
    subscription_users = models.JSONField(default=list, blank=True)
    subscription_days = models.PositiveIntegerField(null=True, blank=True)
    probe_api_key = EncryptedTextField(null=True, blank=True)
    confirm_wait_timeout_sec = models.PositiveIntegerField(default=0)
    total_items = models.PositiveIntegerField(default=0)
    completed_items = models.PositiveIntegerField(default=0)
    active_items = models.PositiveIntegerField(default=0)
    degraded_items = models.PositiveIntegerField(default=0)
    broken_items = models.PositiveIntegerField(default=0)
    warning_items = models.PositiveIntegerField(default=0)
    duplicate_entries = models.PositiveIntegerField(default=0)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_digest = models.CharField(max_length=64, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    # A preview (dry run) probes for real but writes nothing to the host; promoting it starts
    # the real run from its probe results (seed 002 §5.3).
    is_preview = models.BooleanField(default=False)
    preview_of = models.CharField(max_length=40, blank=True, help_text="The preview promoted.")
    promoted_to = models.CharField(max_length=40, blank=True, help_text="The run it became.")
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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


class LegacyImportBatch(models.Model):
    """V1 ``import_batches`` row kept for linkage only; V2 state lives on runs and items."""

    class Status(models.TextChoices):
        # Seed 002 §4.2; a rollback that leaves resources behind marks the batch failed (§5.5).
        RUNNING = "running", "running"
        COMPLETED = "completed", "completed"
        FAILED = "failed", "failed"
        ROLLBACK_RUNNING = "rollback_running", "rollback_running"
        ROLLED_BACK = "rolled_back", "rolled_back"

    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="legacy_batches")
    run_id = models.CharField(max_length=40, unique=True)
    mode = models.CharField(max_length=10)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    provider_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "import_batches"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"batch {self.pk} (run {self.run_id})"


class ImportRunItem(models.Model):
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

    item_id = models.CharField(primary_key=True, max_length=40, default=new_item_id, editable=False)
    run = models.ForeignKey(
        ImportRun, on_delete=models.CASCADE, related_name="items", db_column="run_id"
    )
    position = models.PositiveIntegerField(default=0)
    base_url = models.CharField(max_length=500)
    provider_id = models.CharField(max_length=255)
    api_key = EncryptedTextField()
    api_key_fingerprint = models.CharField(max_length=20)
    api_key_digest = models.CharField(max_length=64)
    current_stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.PROBE)
    confirmation_status = models.CharField(
        max_length=10, choices=ConfirmationStatus.choices, default=ConfirmationStatus.PENDING
    )
    access_status = models.CharField(
        max_length=10, choices=AccessStatus.choices, default=AccessStatus.UNKNOWN
    )
    matched_account_state = models.CharField(
        max_length=12, choices=MatchedAccountState.choices, null=True, blank=True
    )
    account_resolution = models.CharField(
        max_length=12, choices=AccountResolution.choices, null=True, blank=True
    )
    requested_models = models.JSONField(default=list, blank=True)
    raw_models = models.JSONField(default=list, blank=True)
    normalized_models = models.JSONField(default=list, blank=True)
    canonical_model_families = models.JSONField(default=list, blank=True)
    resolved_smoke_model = models.CharField(max_length=255, null=True, blank=True)
    recommended_models = models.JSONField(default=list, blank=True)
    capability_profile = models.JSONField(null=True, blank=True)
    group_id = models.BigIntegerField(null=True, blank=True)
    channel_id = models.BigIntegerField(null=True, blank=True)
    account_id = models.BigIntegerField(null=True, blank=True)
    attempt = models.PositiveIntegerField(default=1)
    retry_count = models.PositiveIntegerField(default=0)
    confirmation_attempts = models.PositiveIntegerField(default=0)
    last_retry_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    advisory_messages = models.JSONField(default=list, blank=True)
    has_warning = models.BooleanField(default=False)
    last_error_stage = models.CharField(max_length=10, null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    failure_class = models.CharField(
        max_length=32, choices=FailureClass.choices, blank=True, default=""
    )
    # The last gateway validation's proof (seed 003): status, model, latency, short preview.
    validation_evidence = models.JSONField(null=True, blank=True)
    legacy_batch = models.ForeignKey(
        LegacyImportBatch,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="items",
        db_column="legacy_batch_id",
    )
    legacy_provider_id = models.CharField(max_length=255, null=True, blank=True)
    provision_reused = models.BooleanField(default=False)
    reused_from_provider_id = models.CharField(max_length=255, null=True, blank=True)
    reused_from_account_id = models.BigIntegerField(null=True, blank=True)
    preview_plan = models.JSONField(
        null=True, blank=True, help_text="A preview's plan: decision and host resources."
    )
    rolled_back_at = models.DateTimeField(
        null=True, blank=True, help_text="When the run's rollback removed what this item made."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "import_run_items"
        ordering = ["run", "position"]
        indexes = [
            models.Index(fields=["run", "position"], name="item_run_position_idx"),
            models.Index(fields=["run", "current_stage"], name="item_run_stage_idx"),
            models.Index(fields=["run", "access_status"], name="item_run_access_idx"),
            models.Index(fields=["provider_id", "api_key_digest"], name="item_provider_key_idx"),
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


class ImportRunItemEvent(models.Model):
    class EventType(models.TextChoices):
        CREATED = "created", "created"
        STAGE_STARTED = "stage_started", "stage_started"
        STAGE_COMPLETED = "stage_completed", "stage_completed"
        RETRY_SCHEDULED = "retry_scheduled", "retry_scheduled"
        ADVISORY = "advisory", "advisory"
        ERROR = "error", "error"
        REUSED = "reused", "reused"
        REACTIVATED = "reactivated", "reactivated"
        REPLACED = "replaced", "replaced"
        PATCHED = "patched", "patched"
        DUPLICATE = "duplicate", "duplicate"
        RESOURCE_CREATED = "resource_created", "resource_created"
        ROLLED_BACK = "rolled_back", "rolled_back"
        CONFIRMED = "confirmed", "confirmed"
        VALIDATED = "validated", "validated"
        CANCELLED = "cancelled", "cancelled"
        RETRIED = "retried", "retried"
        PREVIEWED = "previewed", "previewed"

    event_id = models.CharField(
        primary_key=True, max_length=40, default=new_event_id, editable=False
    )
    run = models.ForeignKey(
        ImportRun, on_delete=models.CASCADE, related_name="events", db_column="run_id"
    )
    item = models.ForeignKey(
        ImportRunItem, on_delete=models.CASCADE, related_name="events", db_column="item_id"
    )
    event_type = models.CharField(max_length=30, choices=EventType.choices)
    stage = models.CharField(max_length=10, choices=ImportRunItem.Stage.choices)
    attempt = models.PositiveIntegerField(default=1)
    message = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "import_run_item_events"
        ordering = ["created_at", "event_id"]
        indexes = [
            models.Index(fields=["item", "created_at"], name="event_item_created_idx"),
            models.Index(fields=["run", "created_at"], name="event_run_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.item_id}"


class RunRollback(models.Model):
    """The rollback of one run (ARCH §9): what was deleted, what was kept and why, and what
    remains after a failure, retried with backoff until it is gone or a person resumes it."""

    class Status(models.TextChoices):
        RUNNING = "rollback_running", "rollback_running"
        PARTIAL = "rollback_partial", "rollback_partial"
        ROLLED_BACK = "rolled_back", "rolled_back"

    run = models.OneToOneField(
        ImportRun,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="rollback",
        db_column="run_id",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    deleted = models.JSONField(default=list, blank=True)
    kept = models.JSONField(default=list, blank=True)
    remaining = models.JSONField(default=list, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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
