"""``manage.py setup_schedules``: own every django-q2 schedule, idempotently."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django_q.models import Schedule

from relay_project.cli_language import OperatorLanguageMixin

SWEEP_NAME = "batch_import.sweep"


def schedules() -> dict[str, tuple[str, int]]:
    """Schedule name → (task, every N minutes). Tasks are named, not imported: the inventory
    app sits above this one."""
    return {
        SWEEP_NAME: ("batch_import.tasks.sweep", settings.RELAY_SWEEP_INTERVAL_MINUTES),
        "providers.sweep": ("providers.tasks.sweep", settings.RELAY_SWEEP_INTERVAL_MINUTES),
        "providers.reconcile": (
            "providers.tasks.scheduled_reconcile",
            settings.RELAY_RECONCILE_INTERVAL_MINUTES,
        ),
    }


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Create or update the django-q2 schedules relay-manager needs (idempotent)."

    def handle(self, *args, **options) -> None:
        for name, (func, minutes) in schedules().items():
            schedule, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
            Schedule.objects.filter(func=func).exclude(pk=schedule.pk).delete()
            text = (
                _("created schedule %(name)s (every %(minutes)s min)")
                if created
                else _("updated schedule %(name)s (every %(minutes)s min)")
            )
            self.stdout.write(text % {"name": name, "minutes": schedule.minutes})
