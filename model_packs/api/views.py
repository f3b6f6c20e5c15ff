"""Pack endpoints: install (zip upload or a folder under RELAY_PACKS_DIR), list, read."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from hosts.models import Host
from model_packs import services
from model_packs.api.serializers import (
    PackDetailOutputSerializer,
    PackFolderInputSerializer,
    PackInstallOutputSerializer,
    PackListOutputSerializer,
    PackProviderListOutputSerializer,
    PackUploadInputSerializer,
)
from model_packs.archive import MAX_ARCHIVE_BYTES
from model_packs.models import Pack
from model_packs.validation import PackRejected
from relay_project.api.errors import InvalidInput, error_responses
from relay_project.api.parsers import SafeJSONParser

PACK_ID = OpenApiParameter("pack_id", str, OpenApiParameter.PATH, description="A pack id.")


class PackViewSet(viewsets.GenericViewSet):
    lookup_url_kwarg = "pack_id"
    lookup_value_regex = "[a-z0-9][a-z0-9._-]{0,63}"
    queryset = Pack.objects.none()

    def _current(self, pack_id: str) -> Pack:
        pack = (
            Pack.objects.filter(pack_id=pack_id, is_current=True)
            .prefetch_related("providers")
            .first()
        )
        if pack is None:
            raise NotFound(_("pack %(pack_id)s is not installed") % {"pack_id": pack_id})
        return pack

    @extend_schema(
        operation_id="packs_list",
        tags=["packs"],
        summary="List installed packs (current versions)",
        responses={200: PackListOutputSerializer, **error_responses()},
    )
    def list(self, request: Request) -> Response:
        packs = Pack.objects.filter(is_current=True).prefetch_related("providers")
        return Response(PackListOutputSerializer({"packs": packs}).data)

    @extend_schema(
        operation_id="packs_retrieve",
        tags=["packs"],
        summary="Read a pack's current version",
        parameters=[PACK_ID],
        responses={200: PackDetailOutputSerializer, **error_responses(404)},
    )
    def retrieve(self, request: Request, pack_id: str) -> Response:
        pack = self._current(pack_id)
        pack.versions = list(
            Pack.objects.filter(pack_id=pack_id)
            .order_by("installed_at", "id")
            .values_list("version", flat=True)
        )
        return Response(PackDetailOutputSerializer(pack).data)

    @extend_schema(
        operation_id="packs_providers",
        tags=["packs"],
        summary="The providers of a pack's current version",
        parameters=[PACK_ID],
        responses={200: PackProviderListOutputSerializer, **error_responses(404)},
    )
    @action(detail=True, methods=["get"])
    def providers(self, request: Request, pack_id: str) -> Response:
        pack = self._current(pack_id)
        body = {"pack_id": pack.pack_id, "version": pack.version, "providers": pack.providers.all()}
        return Response(PackProviderListOutputSerializer(body).data)

    @extend_schema(
        operation_id="packs_install",
        tags=["packs"],
        summary="Install a model pack",
        description=(
            "Validates the pack (seed 002 §5.2: pack.json, providers/*.json, checksums.txt, "
            "https base_url, default and smoke models, host version range) and stores it. "
            f"A zip is at most {MAX_ARCHIVE_BYTES} bytes; names leaving the pack are refused. "
            "Installing the same pack again answers 200 with `created: false`; changed content "
            "under an installed version is a 409: it needs a new version."
        ),
        request={
            "multipart/form-data": PackUploadInputSerializer,
            "application/json": PackFolderInputSerializer,
        },
        responses={
            200: PackInstallOutputSerializer,
            201: PackInstallOutputSerializer,
            **error_responses(400, 404, 409, 422),
        },
    )
    @action(detail=False, methods=["post"], parser_classes=[MultiPartParser, SafeJSONParser])
    def install(self, request: Request) -> Response:
        # The media type says which: a zip is uploaded (multipart), a folder is named (JSON).
        uploaded = request.content_type.startswith("multipart/")
        if uploaded and "file" not in request.FILES:
            # Django drops a file part without content: an empty archive, not a missing field.
            raise PackRejected({"file": _("the archive is empty")})
        input_serializer = PackUploadInputSerializer if uploaded else PackFolderInputSerializer
        serializer = input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        host = None
        if "host_id" in data:
            host = Host.objects.filter(pk=data["host_id"]).first()
            if host is None:  # well formed, but no such host: 404 like an unknown id in a path
                unknown = InvalidInput(
                    {"host_id": _("host %(host_id)s does not exist") % {"host_id": data["host_id"]}}
                )
                unknown.status_code = 404
                raise unknown
        # PackRejected (422, naming the file or field), PackNotFound (404) and PackConflict
        # (409) are domain errors: the exception handler answers them.
        if "file" in data:
            upload = data["file"]
            if not upload.size:
                raise PackRejected({"file": _("the archive is empty")})
            if upload.size > MAX_ARCHIVE_BYTES:
                raise PackRejected(
                    {"file": f"the archive is larger than {MAX_ARCHIVE_BYTES} bytes"}
                )
            files = services.pack_files(zip_bytes=upload.read())
        else:
            files = services.pack_files(folder=services.resolve_pack_folder(data["folder"]))
        pack, created = services.install_pack(
            files=files, host=host, installed_by=request.user.get_username()
        )
        body = PackInstallOutputSerializer({"created": created, "pack": pack}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
