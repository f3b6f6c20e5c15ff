from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from relay_project.crypto import EncryptedTextField


class Host(models.Model):
    """A sub2api host this control plane manages through its admin API."""

    class AuthType(models.TextChoices):
        ADMIN_API_KEY = "admin_api_key", _("Admin API key (x-api-key)")
        PASSWORD = "password", _("Admin email + password (JWT)")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUPPORTED = "supported", _("supported")
        UNSUPPORTED = "unsupported", _("unsupported")
        UNREACHABLE = "unreachable", _("unreachable")

    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    base_url = models.URLField(max_length=500, verbose_name=_("base URL"))
    auth_type = models.CharField(
        max_length=20, choices=AuthType.choices, verbose_name=_("auth type")
    )
    admin_email = models.CharField(max_length=254, blank=True, verbose_name=_("admin email"))
    admin_credential = EncryptedTextField(
        help_text=_("Admin API key or admin password."), verbose_name=_("admin credential")
    )
    version = models.CharField(max_length=50, blank=True, verbose_name=_("version"))
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    missing_capabilities = models.JSONField(
        default=list, blank=True, verbose_name=_("missing capabilities")
    )
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    last_probed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last probed at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("host")
        verbose_name_plural = _("hosts")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.base_url})"

    @property
    def is_supported(self) -> bool:
        return self.status == self.Status.SUPPORTED


class HostCapabilitySnapshot(models.Model):
    """What one capability probe of a host found (list endpoints only, no side effects)."""

    host = models.ForeignKey(
        Host, on_delete=models.CASCADE, related_name="snapshots", verbose_name=_("host")
    )
    version = models.CharField(max_length=50, blank=True, verbose_name=_("version"))
    capabilities = models.JSONField(default=dict, verbose_name=_("capabilities"))
    missing_capabilities = models.JSONField(default=list, verbose_name=_("missing capabilities"))
    supported = models.BooleanField(default=False, verbose_name=_("supported"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("host capability snapshot")
        verbose_name_plural = _("host capability snapshots")
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
        GROUP = "group", _("group")
        CHANNEL = "channel", _("channel")
        ACCOUNT = "account", _("account")
        USER = "user", _("user")
        SUBSCRIPTION = "subscription", _("subscription")
        API_KEY = "api_key", _("api key")

    class State(models.TextChoices):
        PRESENT = "present", _("present")
        DELETED = "deleted", _("deleted")
        DRIFTED = "drifted", _("drifted")

    # No index of its own, nor one that starts with it (see Meta): lookups name more than it.
    host = models.ForeignKey(
        Host,
        on_delete=models.CASCADE,
        related_name="managed_resources",
        db_index=False,
        verbose_name=_("host"),
    )
    resource_type = models.CharField(
        max_length=20, choices=ResourceType.choices, verbose_name=_("resource type")
    )
    host_resource_id = models.CharField(max_length=64, verbose_name=_("host resource ID"))
    logical_key = models.CharField(max_length=255, verbose_name=_("logical key"))
    provider_id = models.CharField(max_length=255, blank=True, verbose_name=_("provider ID"))
    api_key_digest = models.CharField(max_length=64, blank=True, verbose_name=_("API key digest"))
    secret = EncryptedTextField(
        null=True, blank=True, help_text=_("User key or user password."), verbose_name=_("secret")
    )
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.PRESENT, verbose_name=_("state")
    )
    created_by_run_id = models.CharField(
        max_length=64, blank=True, verbose_name=_("created by run ID")
    )
    created_by_item_id = models.CharField(
        max_length=64, blank=True, verbose_name=_("created by item ID")
    )
    host_group_id = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=_("The host group a subscription or user key serves."),
        verbose_name=_("host group ID"),
    )
    user_record = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_resources",
        help_text=_("The managed user a subscription or user key belongs to."),
        verbose_name=_("user record"),
    )
    families = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Canonical model families an account serves."),
        verbose_name=_("families"),
    )
    deprecated = models.BooleanField(
        default=False,
        help_text=_("A replaced account: kept, no longer scheduled."),
        verbose_name=_("deprecated"),
    )
    adopted = models.BooleanField(
        default=False,
        help_text=_("Found on the host by its deterministic name, not created here."),
        verbose_name=_("adopted"),
    )
    metadata = models.JSONField(default=dict, blank=True, verbose_name=_("metadata"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("managed resource")
        verbose_name_plural = _("managed resources")
        ordering = ["id"]
        # Each lookup's index starts with the lookup's own key (resource id, key digest, email,
        # group), the host after it. A new host's records are newer than the statistics, which
        # then count none for it: an index that starts with the host looked as good as any, the
        # planner took the one that matched fewest columns, and read all of the host's records
        # of a type per lookup, more the more items its first run had (issue #17).
        constraints = [
            models.UniqueConstraint(
                fields=["host_resource_id", "resource_type", "host"],
                name="managedres_resid_type_host_uniq",
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
            # Reuse preflight: "accounts of this provider + key on this host" (the key too:
            # a provider of a thousand keys must not read a thousand records per item).
            models.Index(
                fields=["provider_id", "api_key_digest", "host", "resource_type"],
                name="managedres_provider_key_idx",
            ),
            models.Index(fields=["logical_key", "host"], name="managedres_logical_idx"),
            # Validation: "the user key of this group on this host" (hosts.resources.user_key).
            models.Index(
                fields=["host_group_id", "host"],
                name="managedres_user_key_idx",
                condition=models.Q(resource_type="api_key", state="present"),
            ),
            # A run's records (rollback), and what this run made under a name (a later key of
            # the provider takes its group, users and keys: HostResources.made_by_this_run).
            models.Index(fields=["created_by_run_id", "logical_key"], name="managedres_run_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}#{self.host_resource_id} ({self.logical_key})"

    @property
    def host_id_int(self) -> int | None:
        """The host's numeric id (None for a user whose create has not answered yet)."""
        return int(self.host_resource_id) if self.host_resource_id.isdigit() else None
