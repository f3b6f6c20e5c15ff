"""``manage.py reconcile [--host ID] [--provider ID]``: reconcile now and print what was found."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from batch_import.leases import new_worker_id
from hosts.models import Host
from providers import services
from providers.models import Provider, ReconcileRun
from providers.reconcile import ReconcileContext, reconcile_run
from relay_project.cli_language import OperatorLanguageMixin


class Command(OperatorLanguageMixin, BaseCommand):
    help = (
        "Compare what relay-manager made with each host, re-test accounts, re-validate access "
        "and sync upstream models; prints every finding. Runs here unless --enqueue."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", type=int, action="append", help="Host id (repeatable).")
        parser.add_argument(
            "--provider", type=int, action="append", help="Provider id (repeatable)."
        )
        parser.add_argument("--no-tests", action="store_true", help="Compare resources only.")
        parser.add_argument("--no-model-sync", action="store_true", help="Skip /v1/models.")
        parser.add_argument(
            "--enqueue", action="store_true", help="Hand the runs to the workers and return."
        )

    def handle(self, *args, **options) -> None:
        providers = Provider.objects.exclude(state=Provider.State.DISABLED)
        if options["provider"]:
            found = set(providers.filter(pk__in=options["provider"]).values_list("pk", flat=True))
            missing = sorted(set(options["provider"]) - found)
            if missing:
                raise CommandError(
                    _("--provider: no enabled provider with id %(id)s") % {"id": missing[0]}
                )
            providers = providers.filter(pk__in=found)
        if options["host"]:
            hosts = Host.objects.filter(pk__in=options["host"])
            if hosts.count() != len(set(options["host"])):
                raise CommandError(_("--host: no such host"))
            providers = providers.filter(host__in=hosts)
        by_host: dict[int, list[int]] = {}
        for host_id, pk in providers.values_list("host_id", "pk"):
            by_host.setdefault(host_id, []).append(pk)
        if not by_host:
            self.stdout.write(_("nothing to reconcile: no enabled provider in scope"))
            return
        for host_id, pks in sorted(by_host.items()):
            run = services.reconcile_start(
                host=Host.objects.get(pk=host_id),
                provider_pks=pks,
                requested_by="manage.py reconcile",
                test_accounts=not options["no_tests"],
                sync_models=not options["no_model_sync"],
                enqueue=options["enqueue"],
            )
            if options["enqueue"]:
                self.stdout.write(
                    _("%(run_id)s: host %(host)s, %(n)d providers, queued")
                    % {"run_id": run.run_id, "host": host_id, "n": len(pks)}
                )
                continue
            reconcile_run(run.run_id, ReconcileContext(worker_id=new_worker_id()))
            self._report(ReconcileRun.objects.get(pk=run.run_id))

    def _report(self, run: ReconcileRun) -> None:
        self.stdout.write(
            _(
                "%(run_id)s: host %(host)s, %(n)d providers, %(state)s, %(drifted)d drifted, "
                "%(failed)d failed checks"
            )
            % {
                "run_id": run.run_id,
                "host": run.host_id,
                "n": len(run.provider_ids),
                "state": run.get_state_display(),
                "drifted": run.drifted_providers,
                "failed": run.failed_checks,
            }
        )
        for result in run.results.select_related("provider").order_by("provider_id", "id"):
            if result.kind == "present":
                continue
            self.stdout.write(
                f"  {result.provider.provider_id}: {result.kind} {result.message_text}"
            )
        for provider in Provider.objects.filter(pk__in=run.provider_ids).order_by("provider_id"):
            self.stdout.write(
                _("  %(provider)s: %(state)s, access %(access)s")
                % {
                    "provider": provider.provider_id,
                    "state": provider.get_state_display(),
                    "access": provider.get_access_status_display(),
                }
            )
