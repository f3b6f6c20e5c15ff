from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RelayProjectConfig(AppConfig):
    """The project's own records (API tokens), named in the admin like the apps."""

    name = "relay_project"
    verbose_name = _("API access")
