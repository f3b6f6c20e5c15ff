from __future__ import annotations

from rest_framework.routers import SimpleRouter

from providers.api.views import HostAccessViewSet, ProviderViewSet, ReconcileRunViewSet

router = SimpleRouter(trailing_slash=False)
router.register("providers", ProviderViewSet, basename="api-provider")
router.register("reconcile-runs", ReconcileRunViewSet, basename="api-reconcile-run")
router.register(
    r"hosts/(?P<host_id>[0-9]{1,18})/access/status", HostAccessViewSet, basename="api-host-access"
)

urlpatterns = router.urls
