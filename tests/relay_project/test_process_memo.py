"""``ProcessMemo``: a process's bounded memory, shared by its threads, empty after a fork."""

from __future__ import annotations

import os

import pytest

from relay_project.process_memo import ProcessMemo


def test_it_keeps_the_newest_entries_up_to_its_size() -> None:
    memo: ProcessMemo[str, int] = ProcessMemo(size=3)
    for n, key in enumerate("abcd"):
        memo.put(key, n)
    assert (memo.get("a"), memo.get("b"), memo.get("d"), len(memo)) == (None, 1, 3, 3)
    memo.put("b", 10)  # put again: the newest
    memo.put("e", 4)
    assert (memo.get("c"), memo.get("b"), memo.get("e")) == (None, 10, 4)
    memo.clear()
    assert len(memo) == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_starts_empty() -> None:
    memo: ProcessMemo[str, int] = ProcessMemo(size=2)
    memo.put("seen", 1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: says what it finds, then leaves at once
        os.write(write, b"empty" if memo.get("seen") is None else b"kept")
        os._exit(0)
    os.close(write)
    found = os.read(read, 16)
    os.waitpid(pid, 0)
    assert found == b"empty"
    assert memo.get("seen") == 1  # the parent's own stays
