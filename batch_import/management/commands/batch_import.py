"""``manage.py batch_import``: start a run from entries and report how it ended."""

from __future__ import annotations

import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from batch_import import cli
from batch_import.errors import Conflict, InvalidRequest
from batch_import.models import ImportRun
from batch_import.run_requests import parse_entry_line, validate_run_request
from batch_import.services import run_promote, run_start
from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, cli.UsageErrorsExit64, BaseCommand):
    help = (
        "Import upstream base_url + api_key entries into a sub2api host. Exit codes: "
        "0 all active, 1 warnings, 2 some broken or failed, 3 invalid input, "
        "4 still running when the wait ended, 64 usage error (bad command line)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host-id", help="the host to import into (not with --promote)")
        parser.add_argument(
            "--entry", action="append", default=[], help='"url,key[,model|model]" (repeatable)'
        )
        parser.add_argument("--batch-file", help="one entry per line; '-' reads standard input")
        parser.add_argument("--mode", default="partial", help="strict | partial")
        parser.add_argument(
            "--access-mode", default="subscription", help="subscription | self_service"
        )
        parser.add_argument("--subscription-users", default="", help="comma-separated emails")
        parser.add_argument("--subscription-days", default=None)
        parser.add_argument("--probe-api-key", default=None)
        parser.add_argument(
            "--confirm-wait-timeout", default="2m", help="how long to wait: 15s, 2m, 0 = no wait"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="preview: probe and plan, write nothing to the host (promote it later)",
        )
        parser.add_argument(
            "--promote",
            metavar="RUN_ID",
            help="turn a finished preview into the real run, reusing its probe results",
        )

    def handle(self, *args, **opts) -> None:
        entries = self.collect_entries(opts)
        try:
            wait = cli.parse_duration(opts["confirm_wait_timeout"])
        except ValueError as exc:
            raise CommandError(f"--confirm-wait-timeout: {exc}", returncode=3) from None
        if opts["promote"]:
            self.promote(opts, entries, wait)
            return
        if not opts["host_id"]:
            raise CommandError(_("--host-id: required (unless --promote)"), returncode=64)
        data = {
            "host_id": opts["host_id"],
            "mode": opts["mode"],
            "access_mode": opts["access_mode"],
            "subscription_users": [
                u.strip() for u in opts["subscription_users"].split(",") if u.strip()
            ],
            "subscription_days": opts["subscription_days"],
            "probe_api_key": opts["probe_api_key"],
            "confirm_wait_timeout_sec": min(int(wait), 600),
            "entries": entries,
            "dry_run": opts["dry_run"],
        }
        try:
            request = validate_run_request(data)
        except InvalidRequest as exc:
            raise CommandError(
                _("invalid request: %(problems)s") % {"problems": exc}, returncode=3
            ) from None
        run = run_start(request=request, created_by="cli").run
        if not opts["json"]:
            self.stdout.write(_("run_id: %(run_id)s") % {"run_id": run.run_id})
            self.stdout.write(_("result page: %(url)s") % {"url": cli.result_page_url(run)})
        run = self.wait(run, wait, quiet=opts["json"])
        self.finish(run, as_json=opts["json"])

    def promote(self, opts, entries: list[dict], wait: float) -> None:
        """The preview's request is the run's: nothing else may be given with --promote."""
        given = [flag for flag in ("host_id", "dry_run") if opts[flag]]
        if entries or given:
            extra = "--entry/--batch-file" if entries else "--" + given[0].replace("_", "-")
            raise CommandError(
                _("--promote: %(option)s cannot be combined with it") % {"option": extra},
                returncode=64,
            )
        try:
            run = run_promote(run_id=opts["promote"], actor="cli")
        except ImportRun.DoesNotExist:
            message = _("--promote: run %(run_id)s does not exist") % {"run_id": opts["promote"]}
            raise CommandError(message, returncode=3) from None
        except Conflict as exc:
            raise CommandError(f"--promote: {exc}", returncode=3) from None
        if not opts["json"]:
            self.stdout.write(
                _("run_id: %(run_id)s (promoted from preview %(preview)s)")
                % {"run_id": run.run_id, "preview": opts["promote"]}
            )
            self.stdout.write(_("result page: %(url)s") % {"url": cli.result_page_url(run)})
        run = self.wait(run, wait, quiet=opts["json"])
        self.finish(run, as_json=opts["json"])

    def collect_entries(self, opts) -> list[dict]:
        entries: list[dict] = []
        for index, line in enumerate(opts["entry"]):
            try:
                entries.append(parse_entry_line(line))
            except ValueError as exc:
                raise CommandError(f"--entry[{index}]: {exc}", returncode=3) from None
        if opts["batch_file"]:
            try:
                parsed = cli.read_batch_file(opts["batch_file"], sys.stdin)
            except OSError as exc:
                raise CommandError(f"--batch-file: {exc.strerror}", returncode=3) from None
            except ValueError as exc:
                raise CommandError(f"--batch-file: {exc}", returncode=3) from None
            if parsed.errors:
                detail = "; ".join(f"{where}: {msg}" for where, msg in parsed.errors.items())
                raise CommandError(f"--batch-file: {detail}", returncode=3)
            if parsed.duplicate_lines:
                lines = ", ".join(str(n) for n in parsed.duplicate_lines)
                self.stderr.write(
                    _("--batch-file: duplicate lines skipped: %(lines)s") % {"lines": lines}
                )
            entries.extend(parsed.entries)
        return entries

    def wait(self, run: ImportRun, seconds: float, *, quiet: bool) -> ImportRun:
        deadline = time.monotonic() + seconds
        live = not quiet and self.stdout.isatty()
        last = ""
        while not run.is_terminal and time.monotonic() < deadline:
            line = cli.progress_line(run)
            if not quiet and line != last:
                if live:
                    self.stdout.write(f"\r{line}", ending="")
                else:
                    self.stdout.write(line)
                last = line
            time.sleep(0.5)
            run.refresh_from_db()
        if live and last:
            self.stdout.write("")
        return run

    def finish(self, run: ImportRun, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(cli.run_document(run), ensure_ascii=False, indent=2))
        else:
            for line in cli.report_lines(run):
                self.stdout.write(line)
            for line in cli.preview_lines(run):
                self.stdout.write(line)
        code = cli.exit_code_for(run)
        if code:
            raise SystemExit(int(code))
