"""The TLS context every outbound client shares.

Building a verified context parses the whole CA bundle (about 20 ms of CPU); a fresh
``httpx.Client`` builds one each time, which made it half of an item's CPU. One context is safe
to share between threads and clients. ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` still apply (a host
behind a private CA).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
