"""Project-level API views: the JSON 404 for unknown /api/ paths and the schema pages."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from relay_project.api.errors import ErrorCode, envelope


@csrf_exempt
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Any method on any /api/ path no route claims: the envelope, not Django's HTML page."""
    return JsonResponse(
        envelope(ErrorCode.NOT_FOUND, _("no API route matches %(path)s") % {"path": request.path}),
        status=404,
    )


def api_server_error(request: HttpRequest) -> JsonResponse:
    """Django's last-resort 500 for /api/ paths (an error outside any DRF view)."""
    return JsonResponse(
        envelope(ErrorCode.INTERNAL_ERROR, _("internal error; it has been logged")), status=500
    )


@extend_schema(exclude=True)
class SchemaView(SpectacularAPIView):
    """The OpenAPI document itself, readable without credentials (it holds no data)."""


@extend_schema(exclude=True)
class SwaggerView(SpectacularSwaggerView):
    pass


@extend_schema(exclude=True)
class RedocView(SpectacularRedocView):
    pass
