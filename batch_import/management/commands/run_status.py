"""``manage.py run_status RUN_ID``: the report batch_import prints at its end."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from batch_import import cli
from batch_import.models import ImportRun
from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, cli.UsageErrorsExit64, BaseCommand):
    help = "Show a run's state and items. Exit codes as for batch_import."

    def add_arguments(self, parser) -> None:
        parser.add_argument("run_id")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, run_id: str, **opts) -> None:
        try:
            run = ImportRun.objects.with_counts().get(pk=run_id)
        except ImportRun.DoesNotExist:
            raise CommandError(
                _("run_id: no run %(run_id)s") % {"run_id": repr(run_id)}, returncode=3
            ) from None
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
