from __future__ import annotations

from django.db import models

from relay_project.crypto import EncryptedTextField


class Host(models.Model):
    """A sub2api host this control plane manages through its admin API."""

    class AuthType(models.TextChoices):
        ADMIN_API_KEY = "admin_api_key", "Admin API key (x-api-key)"
        PASSWORD = "password", "Admin email + password (JWT)"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SUPPORTED = "supported", "supported"
        UNSUPPORTED = "unsupported", "unsupported"
        UNREACHABLE = "unreachable", "unreachable"

    name = models.CharField(max_length=100, unique=True)
    base_url = models.URLField(max_length=500)
    auth_type = models.CharField(max_length=20, choices=AuthType.choices)
    admin_email = models.CharField(max_length=254, blank=True)
    admin_credential = EncryptedTextField(help_text="Admin API key or admin password.")
    version = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    missing_capabilities = models.JSONField(default=list, blank=True)
    last_error = models.TextField(blank=True)
    last_probed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url})"

    @property
    def is_supported(self) -> bool:
        return self.status == self.Status.SUPPORTED


class HostCapabilitySnapshot(models.Model):
    """What one capability probe of a host found (list endpoints only, no side effects)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="snapshots")
    version = models.CharField(max_length=50, blank=True)
    capabilities = models.JSONField(default=dict)
    missing_capabilities = models.JSONField(default=list)
    supported = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["host", "-created_at"], name="hostsnap_host_created_idx")]

    def __str__(self) -> str:
        return f"{self.host_id} @ {self.created_at:%Y-%m-%d %H:%M}"


class ManagedResource(models.Model):
    """A host resource this control plane created; rollback and reconcile touch nothing else.

    The creating run and item are plain ids, not foreign keys: `hosts` must not import
    `batch_import`, and the record must outlive a deleted run.
    """

    class ResourceType(models.TextChoices):
        GROUP = "group", "group"
        CHANNEL = "channel", "channel"
        ACCOUNT = "account", "account"
        USER = "user", "user"
        SUBSCRIPTION = "subscription", "subscription"
        API_KEY = "api_key", "api key"

    class State(models.TextChoices):
        PRESENT = "present", "present"
        DELETED = "deleted", "deleted"
        DRIFTED = "drifted", "drifted"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="managed_resources")
    resource_type = models.CharField(max_length=20, choices=ResourceType.choices)
    host_resource_id = models.CharField(max_length=64)
    logical_key = models.CharField(max_length=255)
    provider_id = models.CharField(max_length=255, blank=True)
    api_key_digest = models.CharField(max_length=64, blank=True)
    secret = EncryptedTextField(null=True, blank=True, help_text="User key or user password.")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PRESENT)
    created_by_run_id = models.CharField(max_length=64, blank=True)
    created_by_item_id = models.CharField(max_length=64, blank=True)
    host_group_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="The host group a subscription or user key serves."
    )
    user_record = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_resources",
        help_text="The managed user a subscription or user key belongs to.",
    )
    families = models.JSONField(
        default=list, blank=True, help_text="Canonical model families an account serves."
    )
    deprecated = models.BooleanField(
        default=False, help_text="A replaced account: kept, no longer scheduled."
    )
    adopted = models.BooleanField(
        default=False, help_text="Found on the host by its deterministic name, not created here."
    )
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["host", "resource_type", "host_resource_id"],
                name="managedres_host_type_resid_uniq",
            ),
            # One live managed user per email and host: the record is claimed (holding the
            # password) before the user is created, so racing workers share one password.
            models.UniqueConstraint(
                fields=["host", "logical_key"],
                condition=models.Q(resource_type="user") & ~models.Q(state="deleted"),
                name="managedres_one_live_user_uniq",
            ),
        ]
        indexes = [
            # Reuse preflight: "accounts of this provider + key on this host".
            models.Index(
                fields=["host", "resource_type", "provider_id"], name="managedres_provider_idx"
            ),
            models.Index(fields=["host", "logical_key"], name="managedres_logical_idx"),
            # Validation: "the user key of this group on this host".
            models.Index(
                fields=["host", "resource_type", "host_group_id"], name="managedres_group_idx"
            ),
            models.Index(fields=["created_by_run_id"], name="managedres_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}#{self.host_resource_id} ({self.logical_key})"

    @property
    def host_id_int(self) -> int | None:
        """The host's numeric id (None for a user whose create has not answered yet)."""
        return int(self.host_resource_id) if self.host_resource_id.isdigit() else None
