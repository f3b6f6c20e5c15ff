"""``manage.py run_workers``: the django-q2 cluster, stopped cleanly by SIGTERM or SIGINT.

``qcluster`` alone hangs when a signal reaches its whole process group (systemd's default, the
demo, ``kill -- -PGID``): its sentinel dies on the signal while holding the lock of the stop
event, and the parent then waits on that lock forever. This command runs ``qcluster`` in a
process group of its own and forwards one SIGTERM to its parent only, which stops the sentinel
and the workers in order; after ``--grace`` seconds the group is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, BaseCommand):
    help = "Run the django-q2 cluster; SIGTERM/SIGINT stop it gracefully."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--grace",
            type=float,
            default=settings.RELAY_TASK_TIMEOUT + 15,
            help="seconds the cluster gets to finish its tasks before it is killed",
        )

    def handle(self, *args, grace: float, **options) -> None:
        cluster = subprocess.Popen(  # noqa: S603 - our own manage.py
            [sys.executable, str(settings.BASE_DIR / "manage.py"), "qcluster"],
            start_new_session=True,
        )
        deadline: list[float] = []

        def stop(signum, frame) -> None:
            if not deadline and cluster.poll() is None:
                deadline.append(time.monotonic() + grace)
                cluster.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while True:
            try:
                code = cluster.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if deadline and time.monotonic() > deadline[0]:
                    self.stderr.write(
                        _("the cluster did not stop within %(grace)ss: killed")
                        % {"grace": f"{grace:g}"}
                    )
                    os.killpg(cluster.pid, signal.SIGKILL)
        # Workers left behind by a crashed parent share its group: never leave them running.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cluster.pid, signal.SIGKILL)
        if code not in (0, -signal.SIGTERM):
            sys.exit(code if code > 0 else 1)
