from __future__ import annotations

from django.urls import path

from providers import views

app_name = "providers"

urlpatterns = [
    path("", views.provider_list, name="provider_list"),
    path("bulk", views.provider_bulk, name="provider_bulk"),
    path("<int:pk>", views.provider_detail, name="provider_detail"),
    path("<int:pk>/<slug:action>", views.provider_action, name="provider_action"),
    path(
        "<int:pk>/accounts/<int:account_pk>/<slug:switch>",
        views.account_switch,
        name="account_switch",
    ),
]
