"""``python -m hosts.simulator --port 0 --admin-key admin-… [--old] [--probe-403] [--warmup 5]``

Starts the host simulator, prints its URL (first line, for scripts) and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import threading

from hosts.simulator.gateway import NO_ACCOUNT_STYLES
from hosts.simulator.server import HostSimulator
from hosts.simulator.state import Quirks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hosts.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--admin-key", default=None, help="default: a random admin-<64 hex>")
    parser.add_argument("--admin-email", default="admin@sub2api.local")
    parser.add_argument("--admin-password", default="admin-password")
    parser.add_argument("--old", action="store_true", help="behave like the [OLD] 0.1.1 build")
    parser.add_argument(
        "--probe-403", action="store_true", help="first test of each account fails with 403"
    )
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="gateway 503 for N s after an account appears"
    )
    parser.add_argument(
        "--no-responses-probe", action="store_true", help="skip the [NEW] /v1/responses probe"
    )
    parser.add_argument(
        "--no-account",
        choices=NO_ACCOUNT_STYLES,
        default="generic",
        help="the gateway's answer when no account can serve (build-dependent, §13)",
    )
    parser.add_argument(
        "--bearer-exact",
        action="store_true",
        help='accept only exactly "Bearer <key>" at the gateway (builds before the current one)',
    )
    parser.add_argument("--version", dest="version_string", default="", help="reported version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quirks = Quirks(
        old=args.old,
        probe_403=args.probe_403,
        warmup_seconds=args.warmup,
        responses_probe=not args.no_responses_probe,
        no_account=args.no_account,
        bearer_exact=args.bearer_exact,
        version=args.version_string,
    )
    sim = HostSimulator(
        host=args.host,
        port=args.port,
        admin_key=args.admin_key,
        admin_email=args.admin_email,
        admin_password=args.admin_password,
        quirks=quirks,
    ).start()
    print(sim.url, flush=True)
    print(f"admin key: {sim.admin_key}", file=sys.stderr)
    print(f"admin login: {sim.admin_email} / {sim.admin_password}", file=sys.stderr)
    print(f"version: {quirks.effective_version}", file=sys.stderr, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
