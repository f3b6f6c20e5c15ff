"""``python -P relay_project/supervise.py --grace S --timeout-message TEXT -- COMMAND…``: run
COMMAND in a process group of its own and stop it gracefully (``manage.py run_workers`` execs
into this).

A signal to the supervisor's whole group (systemd's default, the demo, ``kill -- -PGID``)
would reach every process of the cluster at once and end its workers mid-task; the command's
own group gets one SIGTERM instead, to its first process only, which stops the rest in order.
After the grace period the command's group is killed, and whatever the command left behind
always is.

Standard library only, on purpose: this process lives as long as the cluster, and Django
loaded in it (as in the management command that starts it) would hold ≈ 85 MiB for nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time


def supervise(command: list[str], *, grace: float, timeout_message: str) -> int:
    """The exit status for the supervisor: 0 when the command stopped cleanly (SIGTERM
    included), else the command's own code (1 for any other signal)."""
    child = subprocess.Popen(command, start_new_session=True)  # noqa: S603 - our own command
    deadline: list[float] = []

    def stop(signum, frame) -> None:
        if not deadline and child.poll() is None:
            deadline.append(time.monotonic() + grace)
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        try:
            code = child.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if deadline and time.monotonic() > deadline[0]:
                print(timeout_message, file=sys.stderr, flush=True)
                os.killpg(child.pid, signal.SIGKILL)
    # Workers left behind by a crashed cluster share its group: never leave them running.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    if code in (0, -signal.SIGTERM):
        return 0
    return code if code > 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="supervise.py")
    parser.add_argument("--grace", type=float, required=True)
    parser.add_argument("--timeout-message", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    return supervise(command, grace=args.grace, timeout_message=args.timeout_message)


if __name__ == "__main__":
    sys.exit(main())
