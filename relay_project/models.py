"""Project-wide records that belong to no app: the REST API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    """A REST API token, stored only as its SHA-256 digest: the key is shown once, when issued
    (a random 160-bit key needs no slow hash; a database dump yields no usable token)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_token",
        verbose_name=_("user"),
    )
    digest = models.CharField(max_length=64, unique=True, verbose_name=_("digest"))
    prefix = models.CharField(
        max_length=8,
        help_text=_("The key's first characters, to tell keys apart."),
        verbose_name=_("prefix"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        db_table = "api_tokens"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @staticmethod
    def digest_of(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user) -> str:
        """A new key for ``user`` (the previous one stops working); returns the key."""
        key = secrets.token_hex(20)
        cls.objects.update_or_create(
            user=user, defaults={"digest": cls.digest_of(key), "prefix": key[:8]}
        )
        return key
