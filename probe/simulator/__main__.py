"""Command line: ``python -m probe.simulator`` runs one or more simulated upstreams.

One upstream from flags::

    python -m probe.simulator --port 0 --models kimi-k2.6,deepseek-chat --key sk-x \
        --responses 404 --no-tools deepseek-chat

Several upstreams in one process from a JSON file (an object, a list of objects, or
``{"upstreams": [...]}``; each object takes the ``UpstreamConfig`` keys plus ``host``/``port``)::

    python -m probe.simulator --config upstreams.json

Each started upstream prints one line ``<name> <base_url>`` (or one JSON array with
``--json``), then the process serves until interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probe.simulator.config import SimModel, UpstreamConfig
from probe.simulator.server import UpstreamSimulator


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m probe.simulator", description="Simulated OpenAI-compatible upstreams."
    )
    parser.add_argument("--config", type=Path, help="JSON file describing one or more upstreams")
    parser.add_argument("--name", default="upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--models", type=_names, default=["sim-model"], help="comma-separated")
    parser.add_argument("--key", default="sk-sim-upstream-key", help="required bearer key")
    parser.add_argument("--no-auth", action="store_true", help="accept any caller")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")
    parser.add_argument(
        "--responses",
        choices=["supported", "403", "404", "405"],
        default="supported",
        help="/v1/responses behaviour",
    )
    parser.add_argument("--anthropic", action="store_true", help="serve /v1/messages")
    parser.add_argument("--no-stream", type=_names, default=[], help="models without streaming")
    parser.add_argument("--no-tools", type=_names, default=[], help="models without tools")
    parser.add_argument("--reasoning", type=_names, default=[], help="models with reasoning")
    parser.add_argument("--json", action="store_true", help="print the upstreams as JSON")
    return parser


def configs_from_args(args: argparse.Namespace) -> list[tuple[UpstreamConfig, str, int]]:
    """(config, host, port) for every upstream the arguments describe."""
    if args.config:
        data: Any = json.loads(args.config.read_text())
        entries = data.get("upstreams", [data]) if isinstance(data, dict) else data
        return [
            (
                UpstreamConfig.from_dict(entry),
                str(entry.get("host", args.host)),
                int(entry.get("port", 0)),
            )
            for entry in entries
        ]
    models = [
        SimModel(
            id=name,
            stream=name not in args.no_stream,
            tools=name not in args.no_tools,
            reasoning=name in args.reasoning,
        )
        for name in args.models
    ]
    config = UpstreamConfig(
        name=args.name,
        models=models,
        api_key=None if args.no_auth else args.key,
        latency=args.latency,
        responses_status=None if args.responses == "supported" else int(args.responses),
        anthropic_messages=args.anthropic,
    )
    return [(config, args.host, args.port)]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        specs = configs_from_args(args)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        print(f"simulator: bad configuration: {exc}", file=sys.stderr)
        return 2
    simulators = [UpstreamSimulator(config, host=host, port=port) for config, host, port in specs]
    for simulator in simulators:
        simulator.start()
    if args.json:
        rows = [
            {"name": s.config.name, "url": s.url, "base_url": s.base_url, "port": s.port}
            for s in simulators
        ]
        print(json.dumps(rows), flush=True)
    else:
        for simulator in simulators:
            print(f"{simulator.config.name} {simulator.base_url}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    for simulator in simulators:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
