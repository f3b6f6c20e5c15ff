"""``manage.py setup_schedules``: own every django-q2 schedule, idempotently."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django_q.models import Schedule

SWEEP_NAME = "batch_import.sweep"


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules relay-manager needs (idempotent)."

    def handle(self, *args, **options) -> None:
        schedule, created = Schedule.objects.update_or_create(
            name=SWEEP_NAME,
            defaults={
                "func": "batch_import.tasks.sweep",
                "schedule_type": Schedule.MINUTES,
                "minutes": settings.RELAY_SWEEP_INTERVAL_MINUTES,
                "repeats": -1,
            },
        )
        Schedule.objects.filter(func="batch_import.tasks.sweep").exclude(pk=schedule.pk).delete()
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} schedule {SWEEP_NAME} (every {schedule.minutes} min)")
