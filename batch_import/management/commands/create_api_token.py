"""``manage.py create_api_token USERNAME [--create-user]``: the API token of a user.

Prints only the key on stdout, so ``TOKEN=$(manage.py create_api_token ops)`` works; whether
it was created or already existed goes to stderr.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.translation import gettext as _

from relay_project.cli_language import OperatorLanguageMixin
from relay_project.models import ApiToken


class Command(OperatorLanguageMixin, BaseCommand):
    help = (
        "Issue the REST API token of a user and print it: the only time it is shown (it is "
        "stored hashed). --rotate replaces an existing one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="Create the user when it does not exist: staff (the API requires it) but with "
            "no password, so it cannot log in to the pages.",
        )
        parser.add_argument(
            "--rotate",
            action="store_true",
            help="Replace the user's existing token (the old one stops working at once).",
        )

    def handle(
        self, *args: object, username: str, create_user: bool, rotate: bool, **options: object
    ) -> None:
        user_model = get_user_model()
        with transaction.atomic():
            user = user_model.objects.filter(**{user_model.USERNAME_FIELD: username}).first()
            if user is None:
                if not create_user:
                    raise CommandError(
                        _("user %(name)s does not exist (pass --create-user to create it)")
                        % {"name": repr(username)}
                    )
                # No password: create_user stores an unusable one, so the token is the only way in.
                user = user_model.objects.create_user(
                    **{user_model.USERNAME_FIELD: username}, is_staff=True
                )
                self.stderr.write(_("created user %(name)s") % {"name": repr(username)})
            elif not user.is_active:
                raise CommandError(
                    _("user %(name)s is inactive; its token would not work")
                    % {"name": repr(username)}
                )
            elif not user.is_staff:
                raise CommandError(
                    _(
                        "user %(name)s is not staff; the API refuses non-staff tokens "
                        "(make it staff in the admin first)"
                    )
                    % {"name": repr(username)}
                )
            existing = ApiToken.objects.filter(user=user).first()
            if existing is not None and not rotate:
                raise CommandError(
                    _(
                        "user %(name)s already has a token (%(prefix)s…); it is stored hashed "
                        "and cannot be shown again: pass --rotate to issue a new one"
                    )
                    % {"name": repr(username), "prefix": existing.prefix}
                )
            key = ApiToken.issue(user)
        done = _("rotated token for %(name)s") if existing else _("created token for %(name)s")
        self.stderr.write(done % {"name": repr(username)})
        self.stdout.write(key)
