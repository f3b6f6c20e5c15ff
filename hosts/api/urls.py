from __future__ import annotations

from rest_framework.routers import SimpleRouter

from hosts.api.views import HostViewSet

router = SimpleRouter(trailing_slash=False)
router.register("hosts", HostViewSet, basename="api-host")

urlpatterns = router.urls
