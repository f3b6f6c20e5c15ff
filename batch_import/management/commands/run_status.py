"""``manage.py run_status RUN_ID``: the report batch_import prints at its end."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from batch_import import cli
from batch_import.models import ImportRun


class Command(cli.UsageErrorsExit64, BaseCommand):
    help = "Show a run's state and items. Exit codes as for batch_import."

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, run_id: str, **opts) -> None:
        try:
            run = ImportRun.objects.get(pk=run_id)
        except ImportRun.DoesNotExist:
            raise CommandError(f"run_id: no run {run_id!r}", returncode=3) from None
        if opts["json"]:
            self.stdout.write(_dumps(cli.run_document(run)))
        else:
            for line in cli.report_lines(run):
                self.stdout.write(line)
        code = cli.exit_code_for(run)
        if code:
            raise SystemExit(int(code))


def _dumps(document) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)
