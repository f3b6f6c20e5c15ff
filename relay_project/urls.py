from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views import defaults
from django.views.generic import RedirectView

from relay_project import health
from relay_project.api.views import (
    RedocView,
    SchemaView,
    SwaggerView,
    api_not_found,
    api_server_error,
)

api_patterns = [
    path("", include("batch_import.api.urls")),
    path("", include("hosts.api.urls")),
    path("", include("model_packs.api.urls")),
    path("", include("providers.api.urls")),
    path("schema/", SchemaView.as_view(), name="api-schema"),
    path("docs/", SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", RedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Last: any other /api/ path answers the JSON 404 envelope, whatever the method. (An empty
    # pattern matches every rest, new lines and all, which ".*" would not.)
    re_path(r"", api_not_found),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", RedirectView.as_view(url="/batch-import/runs", permanent=False)),
    path("batch-import/", include("batch_import.urls")),
    path("providers/", include("providers.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include(api_patterns)),
]


def server_error(request: HttpRequest) -> HttpResponse:
    """API clients get the envelope even from Django's last-resort 500."""
    if request.path.startswith("/api/"):
        return api_server_error(request)
    return defaults.server_error(request)


handler500 = server_error
