"""``manage.py rotate_secrets``: re-encrypt every stored secret with the primary Fernet key.

Run it after putting a new key first in ``RELAY_ENCRYPTION_KEY=new,old``; when it reports zero
rows left on old keys, the old key can be dropped. It finds the secrets by field type, so a model
that gains an ``EncryptedTextField`` is rotated without touching this command.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from relay_project.cli_language import OperatorLanguageMixin
from relay_project.crypto import EncryptedTextField, encryption_keys

CHUNK = 500


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Re-encrypt every stored secret with the first key of RELAY_ENCRYPTION_KEY."

    def handle(self, *args, **options) -> None:
        keys = encryption_keys(settings.RELAY_ENCRYPTION_KEY)
        if len(keys) > 1 and not settings.RELAY_FINGERPRINT_KEY:
            raise CommandError(
                _(
                    "RELAY_FINGERPRINT_KEY: set it to the key you are retiring before rotating, "
                    "or every stored key fingerprint stops matching (docs/deployment.md)"
                )
            )
        total = 0
        for model in apps.get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            count = self.rotate(model, [field.attname for field in fields])
            total += count
            self.stdout.write(
                _("%(model)s: %(count)d rows re-encrypted")
                % {"model": model._meta.label, "count": count}
            )
        self.stdout.write(
            self.style.SUCCESS(
                _("%(total)d rows re-encrypted with the primary key") % {"total": total}
            )
        )

    def rotate(self, model, names: list[str]) -> int:
        """Read (any key decrypts) and write back (the primary key encrypts), chunk by chunk."""
        manager = model._base_manager
        pks = list(manager.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), CHUNK):
            with transaction.atomic():
                for row in manager.filter(pk__in=pks[start : start + CHUNK]).only("pk", *names):
                    manager.filter(pk=row.pk).update(**{name: getattr(row, name) for name in names})
        return len(pks)
