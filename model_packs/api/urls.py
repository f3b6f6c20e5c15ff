from __future__ import annotations

from rest_framework.routers import SimpleRouter

from model_packs.api.views import PackViewSet

router = SimpleRouter(trailing_slash=False)
router.register("packs", PackViewSet, basename="api-pack")

urlpatterns = router.urls
