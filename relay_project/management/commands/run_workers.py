"""``manage.py run_workers``: the django-q2 cluster, stopped cleanly by SIGTERM or SIGINT.

A signal to a cluster's whole process group (systemd's default, the demo, ``kill -- -PGID``)
would end its workers mid-task. This command runs ``qcluster`` in a process group of its own
under ``relay_project.supervise``, which forwards one SIGTERM to the cluster's first process
(the sentinel stops the workers in order) and kills the group after ``--grace`` seconds. It
execs into the supervisor: the process that waits for the cluster carries no Django.
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Run the django-q2 cluster; SIGTERM/SIGINT stop it gracefully."
    requires_system_checks = []  # the web process and migrate run them; qcluster needs none

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--grace",
            type=float,
            default=settings.RELAY_TASK_TIMEOUT + 15,
            help="seconds the cluster gets to finish its tasks before it is killed",
        )

    def handle(self, *args, grace: float, **options) -> None:
        message = _("the cluster did not stop within %(grace)ss: killed") % {"grace": f"{grace:g}"}
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(  # noqa: S606 - our own interpreter and modules
            sys.executable,
            [
                sys.executable,
                "-P",  # its folder's modules (logging.py…) must not shadow the standard library
                str(settings.BASE_DIR / "relay_project" / "supervise.py"),
                "--grace",
                str(grace),
                "--timeout-message",
                message,
                "--",
                sys.executable,
                str(settings.BASE_DIR / "manage.py"),
                "qcluster",
            ],
        )
