"""``manage.py register_host``: register a sub2api host (read-only probe, nothing created there).

Secrets never go on the command line, where ``ps`` and shell history would keep them:

    SUB2API_ADMIN_KEY=admin-… manage.py register_host --name prod \\
        --base-url https://sub2api.example.com --admin-key-env SUB2API_ADMIN_KEY
    manage.py register_host --name prod --base-url … --admin-key-stdin < key.txt
    manage.py register_host --name prod --base-url … --auth-type password \\
        --admin-email admin@example.com --admin-password-env SUB2API_ADMIN_PASSWORD
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from hosts.models import Host
from hosts.services import HostRegistrationError, register_host
from relay_project.cli_language import OperatorLanguageMixin

# Service field -> the option that feeds it, so errors point at what to change.
FIELD_OPTIONS = {
    "name": "--name",
    "base_url": "--base-url",
    "auth_type": "--auth-type",
    "admin_email": "--admin-email",
}


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Register a sub2api host: validate, read its version, probe its capabilities."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--base-url", required=True)
        parser.add_argument(
            "--auth-type", choices=Host.AuthType.values, default=Host.AuthType.ADMIN_API_KEY
        )
        parser.add_argument("--admin-key-env", metavar="VAR", help="read the admin key from $VAR")
        parser.add_argument(
            "--admin-key-stdin", action="store_true", help="read the admin key from stdin"
        )
        parser.add_argument("--admin-email", default="")
        parser.add_argument(
            "--admin-password-env", metavar="VAR", help="read the admin password from $VAR"
        )
        parser.add_argument(
            "--admin-password-stdin", action="store_true", help="read the password from stdin"
        )

    def handle(self, *args, **options) -> None:
        auth_type = options["auth_type"]
        if auth_type == Host.AuthType.ADMIN_API_KEY:
            secret_option = "--admin-key-env / --admin-key-stdin"
            credential = self.read_secret(
                options["admin_key_env"], options["admin_key_stdin"], "--admin-key", "admin key"
            )
        else:
            secret_option = "--admin-password-env / --admin-password-stdin"
            credential = self.read_secret(
                options["admin_password_env"],
                options["admin_password_stdin"],
                "--admin-password",
                "admin password",
            )
        try:
            host = register_host(
                name=options["name"],
                base_url=options["base_url"],
                auth_type=auth_type,
                admin_credential=credential,
                admin_email=options["admin_email"],
            )
        except HostRegistrationError as exc:
            problems = [
                f"{FIELD_OPTIONS.get(field, secret_option)} ({field}): {message}"
                for field, message in exc.errors.items()
            ]
            raise CommandError("; ".join(problems)) from None
        self.stdout.write(
            _("host %(id)s %(name)s: %(status)s")
            % {"id": host.id, "name": host.name, "status": host.get_status_display()}
        )
        if host.version:
            self.stdout.write(_("version: %(version)s") % {"version": host.version})
        if host.missing_capabilities:
            self.stdout.write(
                _("missing capabilities: %(list)s") % {"list": ", ".join(host.missing_capabilities)}
            )
        if host.last_error:
            self.stdout.write(_("last error: %(error)s") % {"error": host.last_error})

    def read_secret(self, env_var: str | None, from_stdin: bool, option: str, what: str) -> str:
        if bool(env_var) == from_stdin:
            raise CommandError(
                f"{option}-env or {option}-stdin: give exactly one source of the {what}"
            )
        if env_var:
            value = os.environ.get(env_var, "").strip()
            if not value:
                raise CommandError(
                    f"{option}-env: environment variable {env_var} is empty or unset"
                )
            return value
        value = sys.stdin.readline().strip()
        if not value:
            raise CommandError(f"{option}-stdin: no {what} on standard input")
        return value
