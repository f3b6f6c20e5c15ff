"""``manage.py qcluster``: django-q2's cluster as relay-manager runs it (``providers.cluster``):
this process is the sentinel, the task modules are loaded and frozen before the fork.

It runs no system checks (the web process and ``migrate`` run them): they import the URL
configuration, so every view, DRF, drf-spectacular and what run creation uses (tldextract,
requests), ≈15 MiB a cluster's processes carried and never used.
"""

from __future__ import annotations

import os

from django_q.management.commands.qcluster import Command as QclusterCommand

from providers.cluster import run_cluster


class Command(QclusterCommand):
    requires_system_checks = []

    def handle(self, *args, **options):
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        run_cluster(run_once=options.get("run_once", False))
