"""gunicorn settings for the web process, read from the environment like everything else.

    gunicorn -c python:relay_project.gunicorn_conf relay_project.wsgi

Threads serve the pages and the API (mostly waiting on the database); processes give crash
isolation and use the cores. SIGTERM lets requests in flight finish within the graceful timeout.
"""

from __future__ import annotations

from relay_project.env import env_bool, env_int, env_str

bind = [env_str("RELAY_WEB_BIND", "0.0.0.0:8000")]
workers = env_int("RELAY_WEB_WORKERS", 2, minimum=1)
threads = env_int("RELAY_WEB_THREADS", 4, minimum=1)
worker_class = "gthread"
timeout = env_int("RELAY_WEB_TIMEOUT", 60, minimum=5)
graceful_timeout = env_int("RELAY_WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = 5
# Recycle workers now and then so a slow leak can never grow without bound (0 = never).
max_requests = env_int("RELAY_WEB_MAX_REQUESTS", 2000, minimum=0)
max_requests_jitter = max_requests // 10
# The reverse proxy's addresses, trusted for X-Forwarded-* (comma-separated, or *).
forwarded_allow_ips = env_str("RELAY_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-" if env_bool("RELAY_WEB_ACCESS_LOG", True) else None
errorlog = "-"
# Headers stay small (the API takes keys in bodies, never in URLs); bodies are bounded by
# RELAY_MAX_REQUEST_BYTES in Django.
limit_request_line = 8190
limit_request_fields = 100
