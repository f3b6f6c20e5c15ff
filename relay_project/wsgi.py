from __future__ import annotations

import os
import sys

from django.core.wsgi import get_wsgi_application

from relay_project.env import ConfigError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "relay_project.settings")
try:
    application = get_wsgi_application()
except ConfigError as exc:  # one clear line instead of a traceback
    sys.stderr.write(f"configuration error: {exc}\n")
    raise SystemExit(2) from None
