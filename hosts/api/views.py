"""Host endpoints (seed 002 §3.1). Registration and re-probing belong to ``hosts.services``;
these views only parse, call and serialize.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.api.serializers import (
    HostDetailOutputSerializer,
    HostListOutputSerializer,
    HostRegisterInputSerializer,
)
from hosts.models import Host
from hosts.services import register_host, reprobe_host
from relay_project.api.errors import error_responses
from relay_project.api.pagination import Key, Keyset, KeysetPagination
from relay_project.crypto import Secret

HOST_ID = OpenApiParameter("host_id", int, OpenApiParameter.PATH, description="A host id.")

HOST_EXAMPLE = {
    "host_id": 1,
    "name": "prod-sub2api",
    "base_url": "https://sub2api.example.com",
    "auth_type": "admin_api_key",
    "admin_email": "",
    "version": "0.1.126",
    "status": "supported",
    "missing_capabilities": [],
    "last_error": "",
    "last_probed_at": "2026-05-22T12:00:00+08:00",
    "created_at": "2026-05-22T12:00:00+08:00",
    "updated_at": "2026-05-22T12:00:00+08:00",
}
CAPABILITIES_EXAMPLE = {
    "groups": True,
    "channels": True,
    "accounts": True,
    "account_test": True,
    "account_models": True,
    "subscriptions": True,
}
HOST_DETAIL_EXAMPLE = {
    **HOST_EXAMPLE,
    "capabilities": CAPABILITIES_EXAMPLE,
    "latest_snapshot": {
        "snapshot_id": 1,
        "version": "0.1.126",
        "capabilities": CAPABILITIES_EXAMPLE,
        "missing_capabilities": [],
        "supported": True,
        "created_at": "2026-05-22T12:00:00+08:00",
    },
}


class HostPagination(KeysetPagination):
    keyset = Keyset(name="hosts", keys=(Key("name"), Key("id", kind=int)))


def _detail(host: Host) -> dict:
    snapshot = host.snapshots.order_by("-created_at", "-id").first()
    return HostDetailOutputSerializer(host, context={"snapshot": snapshot}).data


class HostViewSet(viewsets.GenericViewSet):
    lookup_field = "pk"
    lookup_url_kwarg = "host_id"
    lookup_value_regex = "[0-9]{1,18}"
    pagination_class = HostPagination

    def get_queryset(self) -> QuerySet[Host]:
        return Host.objects.all()

    def _host(self, host_id: str) -> Host:
        try:
            return Host.objects.get(pk=int(host_id))
        except Host.DoesNotExist:
            raise NotFound(_("host %(host_id)s does not exist") % {"host_id": host_id}) from None

    @extend_schema(
        operation_id="hosts_list",
        tags=["hosts"],
        summary="List registered hosts",
        responses={200: HostListOutputSerializer, **error_responses(400)},
    )
    def list(self, request: Request) -> Response:
        hosts = self.paginate_queryset(self.get_queryset())
        body = {"hosts": hosts, "next_cursor": self.paginator.next_cursor}
        return Response(HostListOutputSerializer(body).data)

    @extend_schema(
        operation_id="hosts_create",
        tags=["hosts"],
        summary="Register a host",
        description=(
            "Checks the address and credentials, reads the version and probes the admin API's "
            "capabilities without side effects, then stores the host with a capability "
            "snapshot. A host that answers but lacks capabilities is stored as `unsupported`."
        ),
        request=HostRegisterInputSerializer,
        examples=[
            OpenApiExample(
                "admin API key",
                request_only=True,
                value={
                    "name": "prod-sub2api",
                    "base_url": "https://sub2api.example.com",
                    "auth_type": "admin_api_key",
                    "admin_credential": "admin-" + "0" * 64,
                },
            )
        ],
        responses={
            201: OpenApiResponse(
                HostDetailOutputSerializer,
                examples=[
                    OpenApiExample(
                        "host", value=HOST_DETAIL_EXAMPLE, response_only=True, status_codes=[201]
                    )
                ],
            ),
            **error_responses(400, 409),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = HostRegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        host = register_host(
            name=data["name"],
            base_url=data["base_url"],
            auth_type=data["auth_type"],
            admin_credential=Secret(data["admin_credential"]),
            admin_email=data.get("admin_email", ""),
        )
        return Response(_detail(host), status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="hosts_retrieve",
        tags=["hosts"],
        summary="Read a host with its latest capability snapshot",
        parameters=[HOST_ID],
        responses={
            200: OpenApiResponse(
                HostDetailOutputSerializer,
                examples=[OpenApiExample("host", value=HOST_DETAIL_EXAMPLE, response_only=True)],
            ),
            **error_responses(404),
        },
    )
    def retrieve(self, request: Request, host_id: str) -> Response:
        return Response(_detail(self._host(host_id)))

    @extend_schema(
        operation_id="hosts_probe",
        tags=["hosts"],
        summary="Probe a host again",
        description="Reads version and capabilities again and stores a new snapshot.",
        parameters=[HOST_ID],
        request=None,
        responses={200: HostDetailOutputSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["post"])
    def probe(self, request: Request, host_id: str) -> Response:
        host = reprobe_host(self._host(host_id))
        return Response(_detail(host))
