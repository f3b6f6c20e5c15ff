"""What the ``batch_import`` and ``run_status`` commands share: durations, batch files, the
end-of-run report and the documented exit codes."""

from __future__ import annotations

import enum
import re
import sys
from typing import Any, TextIO

from django.conf import settings
from django.utils.translation import gettext as _

from batch_import import projection, selectors
from batch_import.models import ImportRun, ImportRunItem
from batch_import.projection import recommendation_labels
from batch_import.run_requests import ParsedLines, parse_entry_lines


class ExitCode(enum.IntEnum):
    """Exit codes of ``manage.py batch_import`` and ``manage.py run_status``."""

    ALL_ACTIVE = 0
    WARNINGS = 1
    BROKEN_OR_FAILED = 2
    INVALID_INPUT = 3
    STILL_RUNNING = 4
    USAGE = 64  # sysexits' EX_USAGE: the command line itself is wrong


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


def parse_duration(text: str) -> float:
    """``15s``, ``2m``, ``1h``, ``500ms`` or plain seconds."""
    match = DURATION.match(text or "")
    if not match:
        raise ValueError(
            _("not a duration: %(text)s (use e.g. 15s, 2m, 1h)") % {"text": repr(text)}
        )
    return float(match.group(1)) * UNIT_SECONDS[match.group(2)]


def read_batch_file(path: str, stdin: TextIO | None = None) -> ParsedLines:
    """A batch file (``-`` = standard input, so keys need not be on the command line).

    Raises ``ValueError`` naming the first line that is not UTF-8 text."""
    if path == "-":
        source = stdin or sys.stdin
        data = source.buffer.read() if hasattr(source, "buffer") else source.read().encode()
    else:
        with open(path, "rb") as handle:
            data = handle.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            _("line %(line)d: not UTF-8 text (byte 0x%(byte)02x)")
            % {"line": line, "byte": data[exc.start]}
        ) from None
    return parse_entry_lines(text)


class UsageErrorsExit64:
    """Command mixin: command-line errors exit with ``USAGE`` (64), not argparse's 2, which the
    exit codes reserve for "some items broken"."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if parser.called_from_command_line:

            def usage_error(message: str) -> None:
                parser.print_usage(sys.stderr)
                parser.exit(ExitCode.USAGE, f"{parser.prog}: error: {message}\n")

            parser.error = usage_error
        return parser


def exit_code_for(run: ImportRun) -> ExitCode:
    if not run.is_terminal:
        return ExitCode.STILL_RUNNING
    if run.state in (ImportRun.State.FAILED, ImportRun.State.CANCELLED) or run.broken_items:
        return ExitCode.BROKEN_OR_FAILED
    if run.state == ImportRun.State.COMPLETED_WITH_WARNINGS:
        return ExitCode.WARNINGS
    return ExitCode.ALL_ACTIVE


def result_page_url(run: ImportRun) -> str:
    return f"{settings.RELAY_PUBLIC_URL}{projection.result_page(run.run_id)}"


def run_document(run: ImportRun) -> dict[str, Any]:
    """The --json document: the API's run detail, result page and item projections."""
    items = selectors.items_problems_first(run)
    return {
        "run": projection.run_projection(run),
        "recent_warnings": projection.recent_warnings(run),
        "result_page": projection.result_page(run.run_id),
        "items": [
            {
                **projection.item_projection(item),
                **({"preview_plan": item.preview_plan} if run.is_preview else {}),
                **(
                    {"subscription_access": projection.subscription_access(item)}
                    if item.subscription_access
                    else {}
                ),
            }
            for item in items
        ],
    }


def preview_lines(run: ImportRun) -> list[str]:
    """A preview's plan, one line per entry (nothing of it exists on the host yet)."""
    if not run.is_preview:
        return []
    lines = [
        _(
            "preview: nothing was written to the host; promote it: manage.py batch_import "
            "--promote %(run_id)s (or POST …/runs/%(run_id)s/promote)"
        )
        % {"run_id": run.run_id}
    ]
    for item in run.items.order_by("position"):
        plan = item.preview_plan
        if not plan:
            why = item.last_error or _("no plan")
            lines.append(
                _("  %(provider)s: not planned (%(why)s)")
                % {"provider": item.provider_id, "why": why}
            )
            continue
        channel = plan["channel"]
        added = len(channel.get("mapping_added") or {})
        parts = [
            _("account %(action)s") % {"action": plan["account"]["action"]},
            _("group %(action)s") % {"action": plan["group"]["action"]},
            _("channel %(action)s (+%(added)d mappings)")
            % {"action": channel["action"], "added": added},
        ]
        conflicts = (
            _("; conflicts: %(list)s") % {"list": ", ".join(plan["conflicts"])}
            if plan["conflicts"]
            else ""
        )
        lines.append(f"  {item.provider_id}: " + ", ".join(parts) + conflicts)
    return lines


def progress_line(run: ImportRun) -> str:
    return _(
        "%(done)d/%(total)d done · active %(active)d · degraded %(degraded)d · "
        "broken %(broken)d · %(state)s"
    ) % {
        "done": run.completed_items,
        "total": run.total_items,
        "active": run.active_items,
        "degraded": run.degraded_items,
        "broken": run.broken_items,
        "state": run.get_state_display(),
    }


def report_lines(run: ImportRun) -> list[str]:
    lines = [
        _("run_id: %(run_id)s") % {"run_id": run.run_id},
        _("state: %(state)s") % {"state": run.get_state_display()},
        _("result page: %(url)s") % {"url": result_page_url(run)},
        progress_line(run),
    ]
    lines += [_("warning: %(text)s") % {"text": text} for text in projection.recent_warnings(run)]
    for item in selectors.items_problems_first(run):
        lines.append(_item_line(item))
    return lines


def _item_line(item: ImportRunItem) -> str:
    recommended = "; ".join(recommendation_labels(item.recommended_models)) or "-"
    parts = [
        f"- {item.provider_id}",
        _("smoke=%(model)s") % {"model": item.resolved_smoke_model or "-"},
        _("recommended=%(models)s") % {"models": recommended},
        _("confirmation=%(status)s") % {"status": item.get_confirmation_status_display()},
        _("access=%(status)s") % {"status": item.get_access_status_display()},
        _("reused=%(answer)s") % {"answer": _("yes") if item.provision_reused else _("no")},
        _("resolution=%(resolution)s")
        % {"resolution": item.get_account_resolution_display() or "-"},
    ]
    users = projection.subscription_access(item)
    if users:
        parts.append(
            "users="
            + "; ".join(
                f"{u['email']}:{u['outcome']}" + (f"({u['reason']})" if u["reason"] else "")
                for u in users
            )
        )
    if item.last_error:
        stages = dict(ImportRunItem.Stage.choices)
        stage = stages.get(item.last_error_stage, item.last_error_stage or "-")
        parts.append(_("error[%(stage)s]=%(error)s") % {"stage": stage, "error": item.last_error})
    return " ".join(parts)
