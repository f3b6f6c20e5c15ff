"""django-q2 entry points of the provider inventory."""

from __future__ import annotations

import logging

from batch_import.leases import new_worker_id
from providers import reconcile, services
from providers.models import ReconcileRun
from relay_project.logging import log_context

logger = logging.getLogger(__name__)


def after_import_run(run_id: str) -> str | None:
    """A finished import run: fold it into the inventory, then record a baseline of what it
    made (compare only: the run itself just tested and validated everything)."""
    providers = services.provider_absorb_run(run_id=run_id)
    if not providers:
        return None
    host = providers[0].host
    started = services.reconcile_start(
        host=host,
        provider_pks=[p.pk for p in providers],
        trigger=ReconcileRun.Trigger.AFTER_IMPORT,
        requested_by=f"import run {run_id}",
        test_accounts=False,
        sync_models=False,
    )
    return started.run_id


def run_reconcile(run_id: str) -> str:
    """Perform (or resume) one reconcile run under its lease."""
    with log_context(run_id=run_id):
        return reconcile.reconcile_run(
            run_id, reconcile.ReconcileContext(worker_id=new_worker_id())
        )


def scheduled_reconcile() -> int:
    """Scheduled: take in finished import runs nobody absorbed, resume reconciles whose worker
    died, and start one reconcile per host. Returns how many were started."""
    services.absorb_finished_runs()
    for run_id in reconcile.resumable_runs():
        services.enqueue_reconcile(run_id)
    return len(services.reconcile_all_hosts())


def sweep() -> int:
    """Every minute (from the pipeline's sweep schedule): resume orphaned reconciles."""
    resumable = reconcile.resumable_runs()
    for run_id in resumable:
        services.enqueue_reconcile(run_id)
    if resumable:
        logger.info("resuming %d reconcile runs", len(resumable))
    return len(resumable)
