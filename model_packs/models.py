"""Installed model packs (seed 002 §5.2, §7.1 ``packs``/``providers``).

A pack is immutable once installed: changed content is a new version, so a run can always say
which version fed its defaults and prices.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Pack(models.Model):
    pack_id = models.CharField(max_length=64, verbose_name=_("pack ID"))
    version = models.CharField(max_length=32, verbose_name=_("version"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    notes = models.TextField(blank=True, verbose_name=_("notes"))
    host_versions = models.CharField(
        max_length=100,
        help_text=_("PEP 440 specifier of the host versions it supports."),
        verbose_name=_("host versions"),
    )
    content_digest = models.CharField(
        max_length=64, help_text=_("sha256 over every file."), verbose_name=_("content digest")
    )
    is_current = models.BooleanField(
        default=False,
        help_text=_("The highest installed version of this pack_id; the one used."),
        verbose_name=_("is current"),
    )
    installed_by = models.CharField(max_length=150, blank=True, verbose_name=_("installed by"))
    installed_at = models.DateTimeField(auto_now_add=True, verbose_name=_("installed at"))

    class Meta:
        verbose_name = _("model pack")
        verbose_name_plural = _("model packs")
        db_table = "packs"
        ordering = ["pack_id", "-installed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["pack_id", "version"], name="pack_id_version_uniq"),
            models.UniqueConstraint(
                fields=["pack_id"], condition=Q(is_current=True), name="pack_one_current_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pack_id} {self.version}"


class PackProvider(models.Model):
    """One ``providers/*.json`` of a pack. Prices are as the pack states them: USD per 1M
    tokens; the channel stage converts them to the host's USD per token."""

    pack = models.ForeignKey(
        Pack, on_delete=models.CASCADE, related_name="providers", verbose_name=_("pack")
    )
    provider_id = models.CharField(max_length=64, verbose_name=_("provider ID"))
    display_name = models.CharField(max_length=200, verbose_name=_("display name"))
    base_url = models.CharField(max_length=500, verbose_name=_("base URL"))
    hostname = models.CharField(max_length=255, verbose_name=_("hostname"))
    default_models = models.JSONField(default=list, verbose_name=_("default models"))
    smoke_test_model = models.CharField(max_length=255, verbose_name=_("smoke test model"))
    aliases = models.JSONField(default=dict, blank=True, verbose_name=_("aliases"))
    prices = models.JSONField(default=dict, blank=True, verbose_name=_("prices"))
    prices_as_of = models.CharField(max_length=200, blank=True, verbose_name=_("prices as of"))
    prices_source = models.CharField(max_length=500, blank=True, verbose_name=_("prices source"))
    notes = models.TextField(blank=True, verbose_name=_("notes"))

    class Meta:
        verbose_name = _("pack provider")
        verbose_name_plural = _("pack providers")
        db_table = "pack_providers"
        ordering = ["pack", "provider_id"]
        constraints = [
            # Seed 002 §7.2: providers.provider_id is unique within a pack.
            models.UniqueConstraint(fields=["pack", "provider_id"], name="packprov_pack_id_uniq")
        ]
        indexes = [
            # The pipeline's lookup: "the current pack provider serving this upstream host".
            models.Index(fields=["hostname"], name="packprov_hostname_idx")
        ]

    def __str__(self) -> str:
        return f"{self.provider_id} ({self.pack})"
