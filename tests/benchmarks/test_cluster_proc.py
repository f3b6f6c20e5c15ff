"""What the cluster bench reads from /proc about the worker side: the process tree below the
clusters and its memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from benchmarks.cluster import descendants, memory_mib


def test_descendants_are_the_root_its_children_and_grandchildren():
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30'])"]
    )
    try:
        for _ in range(100):  # until the grandchild exists
            found = descendants([os.getpid()])
            if len(found) >= 3:
                break
            time.sleep(0.05)
        assert found[0] == os.getpid()
        assert parent.pid in found
        assert len(found) == 3 and len(set(found)) == 3
        assert descendants([parent.pid])[0] == parent.pid
    finally:
        for pid in descendants([parent.pid])[1:]:
            os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.wait()


def test_memory_of_a_live_process_is_counted_and_a_gone_one_skipped():
    rss = memory_mib([os.getpid()], "Rss")
    assert rss > 5
    assert memory_mib([os.getpid(), 2**22 + 1], "Rss") == rss
    assert 0 < memory_mib([os.getpid()], "Pss") <= rss * 1.5
