"""Provider endpoints (seed 002 §3.1): read the inventory, reconcile, test, disable, enable.
Views parse, call a service or selector, and serialize."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.models import Host
from providers import selectors, services
from providers.api.serializers import (
    HostAccessOutputSerializer,
    ProviderAccessOutputSerializer,
    ProviderBulkInputSerializer,
    ProviderListOutputSerializer,
    ProviderOutputSerializer,
    ProviderResourcesOutputSerializer,
    ProviderStatusOutputSerializer,
    ReconcileInputSerializer,
    ReconcileRunOutputSerializer,
)
from providers.filters import ProviderFilter
from providers.models import Provider, ReconcileRun
from providers.state import host_access_closure
from relay_project.api.errors import error_responses
from relay_project.api.pagination import MAX_BIGINT, Key, Keyset, KeysetPagination

PROVIDER_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="A provider's id.")
TAGS = ["providers"]


class ProviderPagination(KeysetPagination):
    keyset = Keyset(name="providers", keys=(Key("provider_id"), Key("id", kind=int)))


def _actor(request: Request) -> str:
    return request.user.get_username()


def _provider(pk: str) -> Provider:
    try:
        return selectors.providers_for_inventory().get(pk=int(pk))
    except Provider.DoesNotExist:
        raise NotFound(_("provider %(id)s does not exist") % {"id": pk}) from None


def _reconcile_body(run: ReconcileRun) -> dict:
    run = ReconcileRun.objects.prefetch_related("results").get(pk=run.pk)
    return ReconcileRunOutputSerializer(run).data


class ProviderViewSet(viewsets.GenericViewSet):
    lookup_field = "pk"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9]{1,18}"
    filter_backends = [DjangoFilterBackend]
    filterset_class = ProviderFilter
    pagination_class = ProviderPagination

    def get_queryset(self) -> QuerySet[Provider]:
        return selectors.providers_for_inventory().order_by("provider_id", "id")

    @extend_schema(
        operation_id="providers_list",
        tags=TAGS,
        summary="List providers",
        description="Filter by `host_id`, `state`, `access_status`; `q` searches base URL, "
        "provider_id, upstream models, families and key fingerprints.",
        parameters=[
            OpenApiParameter(
                "host_id",
                {"type": "integer", "minimum": 1, "maximum": MAX_BIGINT},
                OpenApiParameter.QUERY,
                description="Only this host's providers (404 when no such host).",
            )
        ],
        responses={200: ProviderListOutputSerializer, **error_responses(400, 404)},
    )
    def list(self, request: Request) -> Response:
        host_id = request.query_params.get("host_id", "")
        well_formed = host_id.isascii() and host_id.isdigit() and int(host_id) <= MAX_BIGINT
        if well_formed and not Host.objects.filter(pk=int(host_id)).exists():
            # A well-formed id of no registered host: 404, as it would be in a path.
            raise NotFound(_("host %(host_id)s does not exist") % {"host_id": host_id})
        providers = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        body = {"providers": providers, "next_cursor": self.paginator.next_cursor}
        return Response(ProviderListOutputSerializer(body).data)

    @extend_schema(
        operation_id="providers_retrieve",
        tags=TAGS,
        summary="Read a provider",
        parameters=[PROVIDER_ID],
        responses={200: ProviderOutputSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, id: str) -> Response:
        return Response(ProviderOutputSerializer(_provider(id)).data)

    @extend_schema(
        operation_id="providers_status",
        tags=TAGS,
        summary="A provider's state, open drift and latest reconcile",
        parameters=[PROVIDER_ID],
        responses={200: ProviderStatusOutputSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"])
    def status(self, request: Request, id: str) -> Response:
        provider = _provider(id)
        provider.latest_reconcile = selectors.latest_reconcile(provider)
        return Response(ProviderStatusOutputSerializer(provider).data)

    @extend_schema(
        operation_id="providers_resources",
        tags=TAGS,
        summary="The host resources relay-manager made for a provider",
        parameters=[PROVIDER_ID],
        responses={200: ProviderResourcesOutputSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"])
    def resources(self, request: Request, id: str) -> Response:
        provider = _provider(id)
        rows = [
            {
                "resource_type": r.resource_type,
                "host_resource_id": r.host_resource_id,
                "logical_key": r.logical_key,
                "state": r.state,
                "created_by_run_id": r.created_by_run_id,
                "baseline": getattr(getattr(r, "baseline", None), "snapshot", None),
            }
            for r in selectors.provider_resources(provider)
        ]
        body = {"id": provider.pk, "resources": rows}
        return Response(ProviderResourcesOutputSerializer(body).data)

    @extend_schema(
        operation_id="providers_access_status",
        tags=TAGS,
        summary="A provider's access closure status",
        parameters=[PROVIDER_ID],
        responses={200: ProviderAccessOutputSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"], url_path="access/status")
    def access_status(self, request: Request, id: str) -> Response:
        provider = _provider(id)
        body = {
            "id": provider.pk,
            "access_status": provider.access_status,
            "checks": list(selectors.latest_access_checks(provider).values()),
        }
        return Response(ProviderAccessOutputSerializer(body).data)

    @extend_schema(
        operation_id="providers_reconcile",
        tags=TAGS,
        summary="Reconcile a provider",
        description="Starts a recorded reconcile run (202): compare every recorded resource "
        "with the host, re-test the accounts, re-validate access through the gateway and sync "
        "upstream models. Poll `GET /api/reconcile-runs/{run_id}`.",
        parameters=[PROVIDER_ID],
        request=ReconcileInputSerializer,
        responses={202: ReconcileRunOutputSerializer, **error_responses(400, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def reconcile(self, request: Request, id: str) -> Response:
        options = ReconcileInputSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        provider = _provider(id)
        run = services.provider_reconcile(
            provider=provider, actor=_actor(request), **options.validated_data
        )
        return Response(_reconcile_body(run), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="providers_test",
        tags=TAGS,
        summary="Test a provider now",
        description="A reconcile without model sync (202): resources compared, accounts "
        "tested, access re-validated.",
        parameters=[PROVIDER_ID],
        request=None,
        responses={202: ReconcileRunOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, id: str) -> Response:
        run = services.provider_reconcile(
            provider=_provider(id), actor=_actor(request), sync_models=False
        )
        return Response(_reconcile_body(run), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="providers_disable",
        tags=TAGS,
        summary="Disable a provider",
        description="No more reconciles or health actions; host resources stay as they are.",
        parameters=[PROVIDER_ID],
        request=None,
        responses={200: ProviderOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, id: str) -> Response:
        services.provider_disable(provider_pk=_provider(id).pk, actor=_actor(request))
        return Response(ProviderOutputSerializer(_provider(id)).data)

    @extend_schema(
        operation_id="providers_enable",
        tags=TAGS,
        summary="Enable a disabled provider",
        description="It moves to the state its latest evidence supports.",
        parameters=[PROVIDER_ID],
        request=None,
        responses={200: ProviderOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, id: str) -> Response:
        services.provider_enable(provider_pk=_provider(id).pk, actor=_actor(request))
        return Response(ProviderOutputSerializer(_provider(id)).data)

    @extend_schema(
        operation_id="providers_accept_drift",
        tags=TAGS,
        summary="Accept a provider's drift",
        description="The host's current shape becomes the baseline of the next reconcile.",
        parameters=[PROVIDER_ID],
        request=None,
        responses={200: ProviderOutputSerializer, **error_responses(404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="accept-drift")
    def accept_drift(self, request: Request, id: str) -> Response:
        services.provider_accept_drift(provider_pk=_provider(id).pk, actor=_actor(request))
        return Response(ProviderOutputSerializer(_provider(id)).data)

    @extend_schema(
        operation_id="providers_account_switch",
        tags=TAGS,
        summary="Disable or enable one of a provider's accounts on the host",
        description="Sets the account's `schedulable` on the host. An account disabled here is "
        "never re-enabled by the health policy; enabling also takes back one the policy or "
        "someone on the host switched off.",
        parameters=[
            PROVIDER_ID,
            OpenApiParameter("account_id", int, OpenApiParameter.PATH),
            OpenApiParameter("switch", str, OpenApiParameter.PATH, enum=["enable", "disable"]),
        ],
        request=None,
        responses={200: ProviderOutputSerializer, **error_responses(404, 409)},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"accounts/(?P<account_id>[0-9]{1,18})/(?P<switch>enable|disable)",
    )
    def account_switch(self, request: Request, id: str, account_id: str, switch: str) -> Response:
        provider = _provider(id)
        account = provider.accounts.filter(host_account_id=int(account_id)).first()
        if account is None:
            raise NotFound(
                _("provider %(id)s has no account %(account_id)s")
                % {"id": id, "account_id": account_id}
            )
        services.provider_account_switch(
            account_pk=account.pk, enable=switch == "enable", actor=_actor(request)
        )
        return Response(ProviderOutputSerializer(_provider(id)).data)

    @extend_schema(
        operation_id="providers_bulk",
        tags=TAGS,
        summary="Test, reconcile, disable or enable several providers",
        description="`test`/`reconcile` answer the reconcile runs started (one per host); "
        "`disable`/`enable` the providers.",
        request=ProviderBulkInputSerializer,
        responses={
            200: ProviderListOutputSerializer,
            202: ReconcileRunOutputSerializer(many=True),
            **error_responses(400, 409),
        },
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        data = ProviderBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        done = services.providers_bulk(
            provider_pks=data.validated_data["ids"],
            action=data.validated_data["action"],
            actor=_actor(request),
        )
        if data.validated_data["action"] in (
            services.BulkAction.TEST,
            services.BulkAction.RECONCILE,
        ):
            return Response([_reconcile_body(run) for run in done], status=status.HTTP_202_ACCEPTED)
        providers = selectors.providers_for_inventory().filter(pk__in=[p.pk for p in done])
        return Response(
            ProviderListOutputSerializer({"providers": providers, "next_cursor": None}).data
        )


class ReconcileRunViewSet(viewsets.GenericViewSet):
    lookup_field = "pk"
    lookup_url_kwarg = "run_id"
    lookup_value_regex = "[^/]{1,64}"

    def get_queryset(self) -> QuerySet[ReconcileRun]:
        return ReconcileRun.objects.prefetch_related("results")

    @extend_schema(
        operation_id="reconcile_runs_retrieve",
        tags=TAGS,
        summary="Read a reconcile run with its findings",
        parameters=[OpenApiParameter("run_id", str, OpenApiParameter.PATH)],
        responses={200: ReconcileRunOutputSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, run_id: str) -> Response:
        run = self.get_queryset().filter(pk=run_id).first()
        if run is None:
            raise NotFound(_("reconcile run %(run_id)s does not exist") % {"run_id": run_id})
        return Response(ReconcileRunOutputSerializer(run).data)


# A host's access closure, beside the host routes (the hosts app does not know providers).
class HostAccessViewSet(viewsets.GenericViewSet):
    @extend_schema(
        operation_id="hosts_access_status",
        tags=TAGS,
        summary="A host's access closure status",
        parameters=[OpenApiParameter("host_id", int, OpenApiParameter.PATH)],
        responses={200: HostAccessOutputSerializer, **error_responses(404)},
    )
    def list(self, request: Request, host_id: str) -> Response:
        host = Host.objects.filter(pk=int(host_id)).first()
        if host is None:
            raise NotFound(_("host %(host_id)s does not exist") % {"host_id": host_id})
        providers = Provider.objects.filter(host=host).exclude(state=Provider.State.DISABLED)
        latest = [services.latest_gateway_checks(p) for p in providers]
        body = {
            "host_id": host.pk,
            "access_status": host_access_closure(latest),
            "providers": {str(p.pk): p.access_status for p in providers},
        }
        return Response(HostAccessOutputSerializer(body).data)
