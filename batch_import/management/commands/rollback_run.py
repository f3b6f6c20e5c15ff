"""``manage.py rollback_run RUN_ID [--plan]``: roll a finished run back, or resume a partial
rollback. ``--plan`` only lists what would be deleted and kept."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batch_import.errors import Conflict
from batch_import.models import ImportRun, RunRollback
from batch_import.rollback import rollback_plan, rollback_run


class Command(BaseCommand):
    help = "Delete what a run created on the host (reverse dependency order), keeping shared ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id")
        parser.add_argument(
            "--plan", action="store_true", help="only list what would be deleted and kept"
        )

    def handle(self, *args, **options) -> None:
        run = ImportRun.objects.filter(pk=options["run_id"]).first()
        if run is None:
            raise CommandError(f"run_id: run {options['run_id']} does not exist")
        if options["plan"]:
            for planned in rollback_plan(run):
                reason = f" — {planned.reason}" if planned.reason else ""
                self.stdout.write(f"{planned.action:6} {planned.label}{reason}")
            return
        try:
            rollback = rollback_run(run_id=run.run_id, requested_by="manage.py")
        except Conflict as exc:
            raise CommandError(str(exc)) from None
        for entry in rollback.deleted:
            self.stdout.write(f"deleted {entry['resource_type']} {entry['host_resource_id']}")
        for entry in rollback.kept:
            self.stdout.write(
                f"kept    {entry['resource_type']} {entry['host_resource_id']} — {entry['reason']}"
            )
        if rollback.status != RunRollback.Status.ROLLED_BACK:
            left = ", ".join(
                f"{r['resource_type']} {r['host_resource_id']}" for r in rollback.remaining
            )
            raise CommandError(
                f"rollback partial (attempt {rollback.attempts}); still on the host: {left}. "
                "It is retried automatically; run this command again to resume now."
            )
        self.stdout.write(f"run {run.run_id}: {rollback.status}")
