"""Providers after the import (seed 002 §4.1, §4.3, §5.6; ARCHITECTURE §9).

A provider is (host, provider_id): what the import runs made of one upstream on one host, kept
true afterwards by reconcile runs. Its ``state`` moves only through ``providers.transitions``
(one ``ProviderEvent`` per change); ``access_status`` is derived from the latest real gateway
checks (``ProviderCheck``), never from resource existence.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from hosts.models import Host, ManagedResource
from relay_project.ids import new_reconcile_id
from relay_project.messages import render


class AccessMode(models.TextChoices):
    SUBSCRIPTION = "subscription", _("subscription")
    SELF_SERVICE = "self_service", _("self-service")


class Provider(models.Model):
    class State(models.TextChoices):
        DISCOVERED = "discovered", _("discovered")
        VALIDATED = "validated", _("validated")
        INSTALLED = "installed", _("installed")
        ACTIVE = "active", _("active")
        DEGRADED = "degraded", _("degraded")
        DRIFTED = "drifted", _("drifted")
        FAILED = "failed", _("failed")
        DISABLED = "disabled", _("disabled")

    class AccessClosure(models.TextChoices):
        NOT_CONFIGURED = "not_configured", _("not configured")
        SUBSCRIPTION_READY = "subscription_ready", _("subscription ready")
        SELF_SERVICE_READY = "self_service_ready", _("self-service ready")
        FULLY_READY = "fully_ready", _("fully ready")
        BROKEN = "broken", _("broken")

    # No index of its own: provider_host_pid_uniq starts with the host and serves lookups by
    # host alone (a lone host index was the narrowest, so the planner took it for one
    # provider of a host whose providers its statistics had not seen yet, reading them all).
    host = models.ForeignKey(
        Host,
        on_delete=models.CASCADE,
        db_index=False,
        related_name="providers",
        verbose_name=_("host"),
    )
    provider_id = models.CharField(max_length=255, verbose_name=_("provider ID"))
    base_url = models.CharField(max_length=500, verbose_name=_("base URL"))
    families = models.JSONField(default=list, blank=True, verbose_name=_("families"))
    upstream_models = models.JSONField(default=list, blank=True, verbose_name=_("upstream models"))
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.DISCOVERED, verbose_name=_("state")
    )
    state_reason = models.TextField(blank=True, verbose_name=_("state reason"))
    # The same reason as a translatable message (relay_project.messages); null on older rows.
    state_reason_i18n = models.JSONField(
        null=True, blank=True, verbose_name=_("state reason (message id)")
    )
    open_drift = models.JSONField(
        default=list,
        blank=True,
        help_text=_("What the latest reconcile found changed or gone."),
        verbose_name=_("open drift"),
    )
    access_status = models.CharField(
        max_length=20,
        choices=AccessClosure.choices,
        default=AccessClosure.NOT_CONFIGURED,
        verbose_name=_("access status"),
    )
    last_import_run_id = models.CharField(
        max_length=40, blank=True, verbose_name=_("last import run ID")
    )
    last_reconciled_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("last reconciled at")
    )
    models_synced_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("models synced at")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        db_table = "providers"
        ordering = ["host", "provider_id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "provider_id"], name="provider_host_pid_uniq")
        ]
        indexes = [
            # The inventory's state and access filters.
            models.Index(fields=["state"], name="provider_state_idx"),
            models.Index(fields=["access_status"], name="provider_access_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} @ host {self.host_id}"

    @property
    def is_disabled(self) -> bool:
        return self.state == self.State.DISABLED

    @property
    def state_reason_text(self) -> str:
        """The state reason in the active language."""
        return render(self.state_reason, self.state_reason_i18n)


class ProviderAccount(models.Model):
    """One host account of a provider (per upstream key fingerprint) and its health."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        FAILING = "failing", _("failing")
        DISABLED_BY_POLICY = "disabled_by_policy", _("disabled by health policy")
        DISABLED_BY_OPERATOR = "disabled_by_operator", _("disabled by an operator")
        DISABLED_ON_HOST = "disabled_on_host", _("disabled on the host")
        MISSING = "missing", _("missing on the host")
        REMOVED = "removed", _("removed")

    # No index of its own: provaccount_provider_acc_uniq starts with the provider (a lone
    # provider index tempted the planner into reading every account of the provider).
    provider = models.ForeignKey(
        Provider,
        on_delete=models.CASCADE,
        db_index=False,
        related_name="accounts",
        verbose_name=_("provider"),
    )
    host_account_id = models.BigIntegerField(verbose_name=_("host account ID"))
    key_fingerprint = models.CharField(max_length=20, blank=True, verbose_name=_("key fingerprint"))
    api_key_digest = models.CharField(max_length=64, blank=True, verbose_name=_("API key digest"))
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.ACTIVE, verbose_name=_("status")
    )
    consecutive_failures = models.PositiveIntegerField(
        default=0, verbose_name=_("consecutive failures")
    )
    last_test_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last test at"))
    last_test_ok = models.BooleanField(null=True, blank=True, verbose_name=_("last test ok"))
    last_latency_ms = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("last latency (ms)")
    )
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    last_failure_transient = models.BooleanField(
        default=False, verbose_name=_("last failure transient")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("provider account")
        verbose_name_plural = _("provider accounts")
        db_table = "provider_accounts"
        ordering = ["provider", "host_account_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "host_account_id"], name="provaccount_provider_acc_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"account {self.host_account_id} ({self.key_fingerprint})"


class ProviderEvent(models.Model):
    class EventType(models.TextChoices):
        STATE_CHANGED = "state_changed", _("state changed")
        ACCESS_CHANGED = "access_changed", _("access changed")
        DRIFT_FOUND = "drift_found", _("drift found")
        ACCOUNT_DISABLED = "account_disabled", _("account disabled")
        ACCOUNT_ENABLED = "account_enabled", _("account enabled")
        ACCOUNT_DISABLED_ON_HOST = "account_disabled_on_host", _("account disabled on the host")
        MODELS_ADDED = "models_added", _("models added")
        MODELS_REMOVED = "models_removed", _("models removed upstream")
        RECONCILED = "reconciled", _("reconciled")

    provider = models.ForeignKey(
        Provider, on_delete=models.CASCADE, related_name="events", verbose_name=_("provider")
    )
    event_type = models.CharField(
        max_length=30, choices=EventType.choices, verbose_name=_("event type")
    )
    from_state = models.CharField(max_length=20, blank=True, verbose_name=_("from state"))
    to_state = models.CharField(max_length=20, blank=True, verbose_name=_("to state"))
    message = models.TextField(verbose_name=_("message"))
    # The same message as a translatable message (relay_project.messages); null on older rows.
    message_i18n = models.JSONField(null=True, blank=True, verbose_name=_("message (message id)"))
    payload = models.JSONField(default=dict, blank=True, verbose_name=_("payload"))
    actor = models.CharField(max_length=150, blank=True, verbose_name=_("actor"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("provider event")
        verbose_name_plural = _("provider events")
        db_table = "provider_events"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["provider", "-created_at"], name="provevent_provider_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type}: {self.message}"

    @property
    def message_text(self) -> str:
        """The message in the active language."""
        return render(self.message, self.message_i18n)


class ReconcileRun(models.Model):
    """One reconcile of a host (or one provider): recorded, leased, resumable."""

    class State(models.TextChoices):
        RUNNING = "running", _("running")
        COMPLETED = "completed", _("completed")
        FAILED = "failed", _("failed")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("on demand")
        SCHEDULED = "scheduled", _("scheduled")
        AFTER_IMPORT = "after_import", _("after an import")

    run_id = models.CharField(
        primary_key=True,
        max_length=40,
        default=new_reconcile_id,
        editable=False,
        verbose_name=_("run ID"),
    )
    host = models.ForeignKey(
        Host, on_delete=models.CASCADE, related_name="reconcile_runs", verbose_name=_("host")
    )
    trigger = models.CharField(
        max_length=20, choices=Trigger.choices, default=Trigger.MANUAL, verbose_name=_("trigger")
    )
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.RUNNING, verbose_name=_("state")
    )
    requested_by = models.CharField(max_length=150, blank=True, verbose_name=_("requested by"))
    test_accounts = models.BooleanField(default=True, verbose_name=_("test accounts"))
    sync_models = models.BooleanField(default=True, verbose_name=_("sync models"))
    provider_ids = models.JSONField(
        default=list, help_text=_("Providers in scope (row ids)."), verbose_name=_("provider IDs")
    )
    pending_provider_ids = models.JSONField(
        default=list, blank=True, verbose_name=_("pending provider IDs")
    )
    drifted_providers = models.PositiveIntegerField(default=0, verbose_name=_("drifted providers"))
    failed_checks = models.PositiveIntegerField(default=0, verbose_name=_("failed checks"))
    lease_owner = models.CharField(
        max_length=100, null=True, blank=True, verbose_name=_("lease owner")
    )
    lease_until = models.DateTimeField(null=True, blank=True, verbose_name=_("lease until"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    started_at = models.DateTimeField(auto_now_add=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("reconcile run")
        verbose_name_plural = _("reconcile runs")
        db_table = "reconcile_runs"
        ordering = ["-started_at"]
        indexes = [
            # The sweep: running reconciles whose lease lapsed (a killed worker).
            models.Index(
                fields=["lease_until"],
                name="reconcile_resumable_idx",
                condition=Q(state="running"),
            ),
        ]

    def __str__(self) -> str:
        return self.run_id

    @property
    def done_count(self) -> int:
        return len(self.provider_ids) - len(self.pending_provider_ids)


class ReconcileResult(models.Model):
    """One finding of a reconcile run about one resource (or the provider as a whole)."""

    class Kind(models.TextChoices):
        PRESENT = "present", _("present, unchanged")
        BASELINE = "baseline", _("baseline recorded")
        MISSING = "missing", _("missing on the host")
        CHANGED = "changed", _("changed on the host")
        TEST_PASSED = "test_passed", _("account test passed")
        TEST_FAILED = "test_failed", _("account test failed")
        DISABLED_ON_HOST = "disabled_on_host", _("disabled on the host (left alone)")
        DISABLED_BY_POLICY = "disabled_by_policy", _("disabled by the health policy")
        RE_ENABLED = "re_enabled", _("re-enabled after passing again")
        ACCESS_OK = "access_ok", _("gateway access works")
        ACCESS_FAILED = "access_failed", _("gateway access failed")
        MODELS_ADDED = "models_added", _("new upstream models added")
        MODELS_REMOVED = "models_removed", _("models gone upstream (kept)")
        ERROR = "error", _("could not check")

    reconcile_run = models.ForeignKey(
        ReconcileRun,
        on_delete=models.CASCADE,
        related_name="results",
        verbose_name=_("reconcile run"),
    )
    provider = models.ForeignKey(
        Provider,
        on_delete=models.CASCADE,
        related_name="reconcile_results",
        verbose_name=_("provider"),
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, verbose_name=_("kind"))
    resource_type = models.CharField(max_length=20, blank=True, verbose_name=_("resource type"))
    host_resource_id = models.CharField(
        max_length=64, blank=True, verbose_name=_("host resource ID")
    )
    message = models.TextField(blank=True, verbose_name=_("message"))
    message_i18n = models.JSONField(null=True, blank=True, verbose_name=_("message (message id)"))
    diff = models.JSONField(default=dict, blank=True, verbose_name=_("diff"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("reconcile finding")
        verbose_name_plural = _("reconcile findings")
        db_table = "reconcile_results"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.resource_type}#{self.host_resource_id}"

    @property
    def message_text(self) -> str:
        """The message in the active language."""
        return render(self.message, self.message_i18n)


class ProviderCheck(models.Model):
    """One real check: a host account test or a chat completion through the gateway. The
    access closure status and the latency/success chart are read from these."""

    class Kind(models.TextChoices):
        ACCOUNT_TEST = "account_test", _("account test")
        GATEWAY = "gateway", _("gateway completion")

    provider = models.ForeignKey(
        Provider, on_delete=models.CASCADE, related_name="checks", verbose_name=_("provider")
    )
    account = models.ForeignKey(
        ProviderAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="checks",
        verbose_name=_("account"),
    )
    kind = models.CharField(max_length=20, choices=Kind.choices, verbose_name=_("kind"))
    access_mode = models.CharField(
        max_length=20, choices=AccessMode.choices, blank=True, verbose_name=_("access mode")
    )
    ok = models.BooleanField(verbose_name=_("OK"))
    transient = models.BooleanField(default=False, verbose_name=_("transient"))
    latency_ms = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("latency (ms)"))
    message = models.TextField(blank=True, verbose_name=_("message"))
    import_item_id = models.CharField(
        max_length=40, null=True, blank=True, unique=True, verbose_name=_("import item ID")
    )
    reconcile_run = models.ForeignKey(
        ReconcileRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="checks",
        verbose_name=_("reconcile run"),
    )
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("provider check")
        verbose_name_plural = _("provider checks")
        db_table = "provider_checks"
        ordering = ["-created_at", "-id"]
        indexes = [
            # Access closure: the latest gateway check per mode of a provider.
            models.Index(fields=["provider", "kind", "-created_at"], name="provcheck_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {'ok' if self.ok else 'failed'}"


class ResourceBaseline(models.Model):
    """What a managed host resource looked like when relay-manager last made or accepted it;
    a reconcile compares the host's answer with this to name what changed by hand."""

    resource = models.OneToOneField(
        ManagedResource,
        on_delete=models.CASCADE,
        related_name="baseline",
        verbose_name=_("resource"),
    )
    snapshot = models.JSONField(default=dict, verbose_name=_("snapshot"))
    recorded_at = models.DateTimeField(auto_now=True, verbose_name=_("recorded at"))

    class Meta:
        verbose_name = _("resource baseline")
        verbose_name_plural = _("resource baselines")
        db_table = "resource_baselines"

    def __str__(self) -> str:
        return f"baseline of {self.resource_id}"
