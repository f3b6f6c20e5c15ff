"""``manage.py rollback_run RUN_ID [--plan]``: roll a finished run back, or resume a partial
rollback. ``--plan`` only lists what would be deleted and kept."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from batch_import.errors import Conflict
from batch_import.models import ImportRun, RunRollback
from batch_import.rollback import rollback_plan, rollback_run
from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Delete what a run created on the host (reverse dependency order), keeping shared ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id")
        parser.add_argument(
            "--plan", action="store_true", help="only list what would be deleted and kept"
        )

    def handle(self, *args, **options) -> None:
        run = ImportRun.objects.filter(pk=options["run_id"]).first()
        if run is None:
            raise CommandError(
                _("run_id: run %(run_id)s does not exist") % {"run_id": options["run_id"]}
            )
        if options["plan"]:
            for planned in rollback_plan(run):
                reason = f" — {planned.reason}" if planned.reason else ""
                action = _("delete") if planned.action == "delete" else _("keep")
                self.stdout.write(f"{action:6} {planned.label}{reason}")
            return
        try:
            rollback = rollback_run(run_id=run.run_id, requested_by="manage.py")
        except Conflict as exc:
            raise CommandError(str(exc)) from None
        for entry in rollback.deleted:
            self.stdout.write(
                _("deleted %(type)s %(id)s")
                % {"type": entry["resource_type"], "id": entry["host_resource_id"]}
            )
        for entry in rollback.kept:
            self.stdout.write(
                _("kept    %(type)s %(id)s — %(reason)s")
                % {
                    "type": entry["resource_type"],
                    "id": entry["host_resource_id"],
                    "reason": entry["reason"],
                }
            )
        if rollback.status != RunRollback.Status.ROLLED_BACK:
            left = ", ".join(
                f"{r['resource_type']} {r['host_resource_id']}" for r in rollback.remaining
            )
            raise CommandError(
                _(
                    "rollback partial (attempt %(attempt)d); still on the host: %(left)s. "
                    "It is retried automatically; run this command again to resume now."
                )
                % {"attempt": rollback.attempts, "left": left}
            )
        self.stdout.write(
            _("run %(run_id)s: %(status)s")
            % {"run_id": run.run_id, "status": rollback.get_status_display()}
        )
