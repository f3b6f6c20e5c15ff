"""``manage.py topology``: the production topology on one machine, checked end to end.

Run by ``scripts/topology.sh`` (``make topology``), which prepares a fresh PostgreSQL database,
a Redis broker and secret files, then starts this command with ``DEBUG=0`` and the real
settings. It starts two gunicorn web processes and two worker clusters (``run_workers``) on
loopback beside the demo's simulators, registers the host, pre-imports like the demo, submits
the demo's sample batch through the REST API of one web process, follows it through the other,
and checks: every item's outcome, ``/healthz`` and ``/readyz`` on both, the hashed static files,
that no log line holds any key the run used, and that SIGTERM stops every process in time.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from batch_import.management.commands import demo
from batch_import.models import ImportRun
from hosts.models import Host, ManagedResource
from hosts.services import register_host

WEB_PROCESSES = 2
WORKER_CLUSTERS = 2
RUN_DEADLINE_SECONDS = 240


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(demo.Command):
    help = "Check the production topology (2 web, 2 clusters, PostgreSQL, Redis) end to end."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--keep-logs", action="store_true", help="print where the logs are")

    def handle(self, *args, keep_logs: bool = False, **options) -> None:
        if (
            settings.DEBUG
            or not settings.REDIS_URL
            or "postgresql" not in settings.DATABASES["default"]["ENGINE"]
        ):
            raise CommandError(
                "run through scripts/topology.sh: DEBUG=0, PostgreSQL and REDIS_URL are required"
            )
        self.children = []
        self.simulators = []
        self.problems: list[str] = []
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            self.check_topology()
        finally:
            self.stop_everything()
        if self.problems:
            raise CommandError("topology check failed:\n  " + "\n  ".join(self.problems))
        self.say("topology check passed")

    # --- the check ------------------------------------------------------------------------------
    def check_topology(self) -> None:
        self.ensure_demo_user()
        call_command("setup_schedules", stdout=io.StringIO())
        token = io.StringIO()
        call_command("create_api_token", demo.DEMO_USERNAME, stdout=token, stderr=io.StringIO())
        self.token = token.getvalue().strip()
        host_sim = self.start_simulators()
        self.webs = []
        for number in range(1, WEB_PROCESSES + 1):
            address = f"127.0.0.1:{_free_port()}"
            self.webs.append(f"http://{address}")
            self.start_child(
                f"web{number}",
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "python:relay_project.gunicorn_conf",
                    "relay_project.wsgi",
                ],
                RELAY_WEB_BIND=address,
                RELAY_WEB_WORKERS="2",
                RELAY_WEB_THREADS="4",
            )
        for number in range(1, WORKER_CLUSTERS + 1):
            self.start_child(
                f"workers{number}",
                [sys.executable, "manage.py", "run_workers", "--grace", "30"],
                RELAY_CONCURRENCY="2",
            )
        for web in self.webs:
            self.wait_until_ready(web)
        host = register_host(
            name="topology-host",
            base_url=host_sim.url,
            auth_type=Host.AuthType.ADMIN_API_KEY,
            admin_credential=host_sim.admin_key,
        )
        self.preimport(host, host_sim)
        run = self.sample_batch_over_http(host)
        if not self.report(run):
            self.problems.append(f"run {run.run_id}: some items did not end as expected")
        self.check_static_files()
        self.used_keys = self.keys_used(host_sim)

    def wait_until_ready(self, web: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.get_json(f"{web}/readyz")["status"] == "ok":
                    health = self.get_json(f"{web}/healthz")
                    self.say(f"{web}: healthz {health['status']}, readyz ok")
                    return
            except OSError:
                time.sleep(0.3)
        raise CommandError(f"{web} did not become ready (see var/topology-web*.log)")

    def sample_batch_over_http(self, host: Host) -> ImportRun:
        """Submit through the first web process, follow through the second."""
        self.add_existing_customer(host)
        entries = []
        for name in demo.SCENARIO:
            base_url, api_key, *models = self.entry_line(name).split(",")
            entry = {"base_url": base_url, "api_key": api_key}
            if models:
                entry["requested_models"] = models[0].split("|")
            entries.append(entry)
        body = {
            "host_id": host.pk,
            "mode": "partial",
            "access_mode": "subscription",
            "subscription_users": list(demo.SAMPLE_USERS),
            "subscription_days": 30,
            "entries": entries,
        }
        created = self.post_json(f"{self.webs[0]}/api/batch-import/runs", body)
        run_id = created.get("run", created)["run_id"]
        self.say(f"run {run_id} submitted to {self.webs[0]}; following it on {self.webs[-1]}")
        deadline = time.monotonic() + RUN_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            document = self.get_json(f"{self.webs[-1]}/api/batch-import/runs/{run_id}")
            state = document.get("run", document)["state"]
            if state in ImportRun.TERMINAL_STATES:
                break
            time.sleep(1)
        else:
            self.problems.append(f"run {run_id} did not finish in {RUN_DEADLINE_SECONDS}s")
        return ImportRun.objects.with_counts().get(pk=run_id)

    def check_static_files(self) -> None:
        page = urlopen(f"{self.webs[0]}/accounts/login/", timeout=10).read().decode()  # noqa: S310
        hashed = re.findall(r'/static/[^"]+\.[0-9a-f]{12}\.css', page)
        if not hashed:
            self.problems.append("the login page links no hashed stylesheet (collectstatic?)")
            return
        with urlopen(f"{self.webs[1]}{hashed[0]}", timeout=10) as answer:  # noqa: S310
            cache = answer.headers.get("Cache-Control", "")
        if "max-age" not in cache:
            self.problems.append(f"{hashed[0]} is served without a long cache ({cache!r})")
        self.say(f"static: {hashed[0]} served with {cache!r}")

    def keys_used(self, host_sim) -> set[str]:
        keys = {self.token, host_sim.admin_key}
        keys |= {upstream.api_key for upstream in self.upstreams.values() if upstream.api_key}
        keys |= {override for _config, _models, override, _expected in demo.SCENARIO.values()}
        keys |= {
            resource.secret.reveal()
            for resource in ManagedResource.objects.exclude(secret=None)
            if resource.secret
        }
        return {key for key in keys if key}

    # --- processes ----------------------------------------------------------------------------
    def start_child(self, name: str, argv: list[str], **extra_env: str) -> None:
        log = open(Path(settings.VAR_DIR) / f"topology-{name}.log", "w")  # noqa: SIM115
        child = subprocess.Popen(  # noqa: S603 - our own entry points
            argv,
            cwd=settings.BASE_DIR,
            env={**os.environ, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.name = name
        self.children.append(child)
        self.say(f"started {name} (pid {child.pid}, log var/topology-{name}.log)")

    def stop_everything(self) -> None:
        """SIGTERM to each whole process group, as a service manager does; all must exit."""
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                code = child.wait(timeout=45)
                self.say(f"{child.name} stopped on SIGTERM (exit {code})")
            except subprocess.TimeoutExpired:
                self.problems.append(f"{child.name} did not stop within 45 s of SIGTERM")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        for simulator in self.simulators:
            simulator.stop()
        self.check_logs_hold_no_key()

    def check_logs_hold_no_key(self) -> None:
        keys = getattr(self, "used_keys", set())
        logs = sorted(Path(settings.VAR_DIR).glob("topology-*.log"))
        lines = sum(len(path.read_text(errors="replace").splitlines()) for path in logs)
        for path in logs:
            text = path.read_text(errors="replace")
            leaked = [key[:6] + "…" for key in keys if key in text]
            if leaked:
                self.problems.append(f"{path.name} holds {len(leaked)} keys: {leaked}")
        self.say(f"logs: {len(keys)} keys searched in {lines} lines of {len(logs)} files")

    # --- HTTP -----------------------------------------------------------------------------------
    def get_json(self, url: str) -> dict:
        request = Request(url, headers={"Authorization": f"Token {self.token}"})  # noqa: S310
        try:
            with urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
                return json.loads(answer.read())
        except HTTPError as error:
            return json.loads(error.read() or b"{}") | {"status": error.code}

    def post_json(self, url: str, body: dict) -> dict:
        request = Request(  # noqa: S310 - loopback
            url,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urlopen(request, timeout=30) as answer:  # noqa: S310
                return json.loads(answer.read())
        except HTTPError as error:
            raise CommandError(f"POST {url}: {error.code} {error.read()[:300]!r}") from None
