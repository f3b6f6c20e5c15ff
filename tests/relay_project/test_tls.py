from __future__ import annotations

import threading
import time

from relay_project import tls


def test_client_tls_context_is_built_once_when_threads_ask_at_once(monkeypatch):
    """A worker's item threads all ask at once when its first task starts: an unlocked cache
    let each of them parse the CA bundle (32 builds, a second of CPU per process)."""
    builds = []

    def slow_build():
        builds.append(1)
        time.sleep(0.05)  # the CA bundle takes a while: every thread arrives meanwhile
        return object()

    monkeypatch.setattr(tls, "_context", None)
    monkeypatch.setattr(tls.httpx, "create_ssl_context", slow_build)
    start = threading.Barrier(8)
    got = []

    def ask():
        start.wait()
        got.append(tls.client_tls_context())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len(got) == 8 and len({id(context) for context in got}) == 1
