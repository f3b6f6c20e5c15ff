"""``manage.py create_api_token USERNAME [--create-user]``: the API token of a user.

Prints only the key on stdout, so ``TOKEN=$(manage.py create_api_token ops)`` works; whether
it was created or already existed goes to stderr.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from relay_project.models import ApiToken


class Command(BaseCommand):
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
                        f"user {username!r} does not exist (pass --create-user to create it)"
                    )
                # No password: create_user stores an unusable one, so the token is the only way in.
                user = user_model.objects.create_user(
                    **{user_model.USERNAME_FIELD: username}, is_staff=True
                )
                self.stderr.write(f"created user {username!r}")
            elif not user.is_active:
                raise CommandError(f"user {username!r} is inactive; its token would not work")
            elif not user.is_staff:
                raise CommandError(
                    f"user {username!r} is not staff; the API refuses non-staff tokens "
                    "(make it staff in the admin first)"
                )
            existing = ApiToken.objects.filter(user=user).first()
            if existing is not None and not rotate:
                raise CommandError(
                    f"user {username!r} already has a token ({existing.prefix}…); it is stored "
                    "hashed and cannot be shown again: pass --rotate to issue a new one"
                )
            key = ApiToken.issue(user)
        self.stderr.write(f"{'rotated' if existing else 'created'} token for {username!r}")
        self.stdout.write(key)
