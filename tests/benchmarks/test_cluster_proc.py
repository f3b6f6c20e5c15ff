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


def test_cpu_by_process_tells_a_busy_many_threaded_process_from_an_idle_one():
    from benchmarks.cluster import CpuByProcess
    from benchmarks.run import cpu_by_process

    busy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import threading, time\n"
            "for _ in range(9): threading.Thread(target=time.sleep, args=(30,)).start()\n"
            "end = time.process_time() + 0.6\n"
            "while time.process_time() < end: pass\n"
            "time.sleep(30)\n",
        ]
    )
    idle = subprocess.Popen(["sleep", "30"])
    try:
        tracked = CpuByProcess()
        tracked.poll([busy.pid, idle.pid])
        time.sleep(1.5)
        tracked.poll([busy.pid, idle.pid])
        rows = tracked.per_item_ms(10)  # 10 items: ms per item = CPU s x 100
        assert [row["pid"] for row in rows] == [busy.pid, idle.pid]
        assert rows[0]["threads"] == 10 and rows[1]["threads"] == 1
        assert 30 <= rows[0]["cpu_ms_per_item"] <= 150
        assert rows[1]["cpu_ms_per_item"] == 0
        assert cpu_by_process({"worker_cpu_by_process": rows}).startswith(
            f"item workers {rows[0]['cpu_ms_per_item']:.1f} ("
        )
    finally:
        for process in (busy, idle):
            process.kill()
            process.wait()


def test_the_cpu_of_a_process_named_like_a_service_is_counted_under_its_name():
    from benchmarks.cluster import services_cpu_seconds

    renamed = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import ctypes, sys, time\n"
            "ctypes.CDLL(None).prctl(15, b'redis-server')\n"  # PR_SET_NAME: its comm
            "print('named', flush=True); sys.stdin.readline()\n"
            "end = time.process_time() + 0.6\n"
            "while time.process_time() < end: pass\n"
            "print('burnt', flush=True); time.sleep(30)\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert renamed.stdout.readline() == "named\n"
        before = services_cpu_seconds()
        renamed.stdin.write("go\n")
        renamed.stdin.flush()
        assert renamed.stdout.readline() == "burnt\n"
        after = services_cpu_seconds()
    finally:
        renamed.kill()
        renamed.wait()
    assert set(after) == {"PostgreSQL", "Redis"}
    assert after["Redis"] - before["Redis"] >= 0.5
