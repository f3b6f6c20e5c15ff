"""``manage.py demo``: set up the embedded demo (SQLite, ORM broker) and serve it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Migrate, create the demo staff user and serve the control plane."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="Set up, print, and exit.")
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, once: bool, addr: str, **options) -> None:
        call_command("migrate", verbosity=0, interactive=False)
        self.ensure_demo_user()
        self.stdout.write(f"demo staff user: {DEMO_USERNAME} / {DEMO_PASSWORD}")
        self.stdout.write(f"admin: http://{addr}/admin/")
        if once:
            return
        call_command("runserver", addr, use_reloader=False)

    def ensure_demo_user(self) -> None:
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
