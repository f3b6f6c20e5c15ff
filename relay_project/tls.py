"""The TLS context every outbound client shares.

Building a verified context parses the whole CA bundle (about 20 ms of CPU); a fresh
``httpx.Client`` builds one each time, which made it half of an item's CPU. One context is safe
to share between threads and clients. ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` still apply (a host
behind a private CA).

It is built under a lock: a worker's item threads all ask for it at once when its first task
starts, and an unlocked cache let each of the 32 build its own (a second of CPU per process).
"""

from __future__ import annotations

import ssl
import threading

import httpx

_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def client_tls_context() -> ssl.SSLContext:
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = httpx.create_ssl_context()
    return _context
