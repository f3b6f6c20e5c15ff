from __future__ import annotations

from rest_framework.routers import SimpleRouter

from batch_import.api.views import ItemViewSet, LegacyBatchViewSet, RunViewSet

router = SimpleRouter(trailing_slash=False)
router.register("batch-import/runs", RunViewSet, basename="api-run")
router.register(
    r"batch-import/runs/(?P<run_id>[A-Za-z0-9_-]{1,64})/items", ItemViewSet, basename="api-item"
)
router.register("import-batches", LegacyBatchViewSet, basename="api-legacy-batch")

urlpatterns = router.urls
