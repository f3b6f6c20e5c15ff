from __future__ import annotations

from django.urls import path

from batch_import import views

app_name = "batch_import"

urlpatterns = [
    path("runs", views.run_list, name="run_list"),
    path("runs/new", views.run_new, name="run_new"),
    path("runs/<str:run_id>", views.run_detail, name="run_detail"),
    path("runs/<str:run_id>/cancel", views.run_cancel_view, name="run_cancel"),
    path("runs/<str:run_id>/retry", views.items_retry_view, name="items_retry"),
    path("runs/<str:run_id>/rollback", views.run_rollback_view, name="run_rollback"),
    path("runs/<str:run_id>/promote", views.run_promote_view, name="run_promote"),
    path("runs/<str:run_id>/items/<str:item_id>", views.item_detail, name="item_detail"),
    path("runs/<str:run_id>/items/<str:item_id>/retry", views.item_retry_view, name="item_retry"),
    path(
        "runs/<str:run_id>/items/<str:item_id>/replace",
        views.item_replace_view,
        name="item_replace",
    ),
]
