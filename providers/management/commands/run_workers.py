"""``manage.py run_workers``: the django-q2 cluster (``providers.cluster``), stopped cleanly by
SIGTERM or SIGINT, even when the whole process group gets it, and killed when it has not
stopped ``--grace`` seconds later."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from providers.cluster import run_cluster
from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Run the django-q2 cluster; SIGTERM/SIGINT stop it gracefully."
    requires_system_checks = []  # the web process and migrate run them; the cluster needs none

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--grace",
            type=float,
            default=settings.RELAY_TASK_TIMEOUT + 15,
            help="seconds the cluster gets to finish its tasks before it is killed",
        )

    def handle(self, *args, grace: float, **options) -> None:
        message = _("the cluster did not stop within %(grace)ss: killed") % {"grace": f"{grace:g}"}
        run_cluster(grace=grace, timeout_message=message)
