"""The start-a-run form: pasted entry lines → the shared request validation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from batch_import.errors import InvalidRequest
from batch_import.models import ImportRun
from batch_import.run_requests import RunRequest, parse_entry_lines, validate_run_request
from hosts.models import Host


class StartRunForm(forms.Form):
    host_id = forms.ModelChoiceField(queryset=Host.objects.order_by("name"), label=_("Host"))
    mode = forms.ChoiceField(choices=ImportRun.Mode.choices, initial="partial", label=_("Mode"))
    access_mode = forms.ChoiceField(
        choices=ImportRun.AccessMode.choices, initial="subscription", label=_("Access mode")
    )
    subscription_users = forms.CharField(
        required=False, label=_("Subscription users (comma-separated emails)")
    )
    subscription_days = forms.IntegerField(required=False, initial=30, label=_("Days"))
    # Never rendered back: a password input without render_value keeps the key off the page.
    probe_api_key = forms.CharField(
        required=False, widget=forms.PasswordInput, label=_("Probe API key (self_service)")
    )
    confirm_wait_timeout_sec = forms.IntegerField(
        required=False, initial=0, min_value=0, max_value=600, label=_("Wait (seconds)")
    )
    entries = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        label=_("Entries, one per line: url,key[,model|model]"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hosts = list(self.fields["host_id"].queryset[:2])
        if len(hosts) == 1:  # the only registered host is the one the operator means
            self.fields["host_id"].initial = hosts[0].pk

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        parsed = parse_entry_lines(cleaned.get("entries", ""))
        line_errors = dict(parsed.errors)
        # parse_entry_lines drops comments, blank and duplicate lines: map each entry back to
        # the line it came from so an error names the line the operator pasted.
        lines = [
            number
            for number, raw in enumerate(cleaned["entries"].lstrip("\ufeff").splitlines(), 1)
            if raw.strip()
            and not raw.strip().startswith("#")
            and number not in parsed.duplicate_lines
            and f"line {number}" not in parsed.errors
        ]
        data = {
            "host_id": cleaned["host_id"].pk,
            "mode": cleaned["mode"],
            "access_mode": cleaned["access_mode"],
            "subscription_users": [
                u.strip() for u in (cleaned.get("subscription_users") or "").split(",") if u.strip()
            ],
            "subscription_days": cleaned.get("subscription_days"),
            "probe_api_key": cleaned.get("probe_api_key") or None,
            "confirm_wait_timeout_sec": cleaned.get("confirm_wait_timeout_sec") or 0,
            "entries": parsed.entries,
            # The "Preview" button: probe and plan, write nothing to the host.
            "dry_run": bool(self.data.get("preview")),
        }
        try:
            self.run_request: RunRequest = validate_run_request(data)
        except InvalidRequest as exc:
            for field, message in exc.errors.items():
                if field.startswith("entries["):
                    index = int(field[len("entries[") : field.index("]")])
                    where = f"line {lines[index]}" if index < len(lines) else field
                    part = field.split(".", 1)[-1]
                    line_errors[where] = f"{ENTRY_PARTS.get(part, part)}: {message}"
                elif field.startswith("subscription_users["):  # name the email, not the index
                    number = int(field[len("subscription_users[") : field.index("]")]) + 1
                    self.add_error(
                        "subscription_users",
                        _("email %(number)d: %(message)s") % {"number": number, "message": message},
                    )
                elif field in self.fields:  # shown under its own field: no internal name
                    self.add_error(field, message)
                else:
                    self.add_error(None, f"{field}: {message}")
        for where, message in sorted(line_errors.items(), key=lambda kv: _line_number(kv[0])):
            number = _line_number(where)
            label = _("line %(number)d") % {"number": number} if number else where
            self.add_error("entries", f"{label}: {message}")
        return cleaned


# What an operator calls the parts of an entry line (not the API's field names).
ENTRY_PARTS = {"base_url": _("URL"), "api_key": _("key"), "requested_models": _("models")}


def _line_number(where: str) -> int:
    return int(where.split()[-1]) if where.startswith("line ") else 0


class ReplaceEntryForm(forms.Form):
    """Fix a failed item in place: the URL (prefilled) and a new key (never shown back)."""

    base_url = forms.CharField(max_length=500, label=_("Base URL"))
    api_key = forms.CharField(max_length=4096, widget=forms.PasswordInput, label=_("New API key"))
