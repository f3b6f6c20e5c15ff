"""Liveness and readiness probes for orchestrators and load balancers (no login, no session).

``/healthz`` answers as long as the process serves requests. ``/readyz`` also checks that the
database answers, that every migration on disk is applied (a new release is not sent traffic
before ``migrate`` ran), and that the broker answers (Redis when ``REDIS_URL`` is set, otherwise
the database serves as the ORM broker).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check_database(),
        "migrations": _check_migrations(),
        "broker": _check_broker(),
    }
    ready = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        logger.warning("readiness: database does not answer: %s", exc)
        return "unavailable"
    return "ok"


def _check_migrations() -> str:
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        logger.warning("readiness: cannot read the migration state: %s", exc)
        return "unavailable"
    return "pending" if pending else "ok"


def _check_broker() -> str:
    if not settings.REDIS_URL:
        return "ok"  # the ORM broker is the database, checked above
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:
        logger.warning("readiness: Redis broker does not answer: %s", type(exc).__name__)
        return "unavailable"
    return "ok"
