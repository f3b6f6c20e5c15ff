"""``manage.py demo``: the whole product on the embedded default, against simulators.

It starts a sub2api host simulator and several upstream simulators (in this process), the
django-q2 cluster and the web server (child processes), registers the host, runs a sample
batch through ``batch_import`` that shows every behaviour, prints the result page and serves
until Ctrl-C. ``--once`` checks every item against its expected outcome and exits 0 only when
all match. Every process it started is stopped when it exits.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.request import urlopen

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from batch_import.models import ImportRun
from batch_import.projection import recommendation_labels
from hosts.services import register_host
from hosts.simulator import HostSimulator, Quirks
from hosts.sub2api import client_for_host
from probe.simulator import SimModel, UpstreamConfig, UpstreamSimulator
from relay_project.crypto import Secret

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_DB_NAME = "demo.sqlite3"
SUBSCRIBER = "demo-user@example.com"
# A customer the operator already had on the host: the sample batch gives it the new models
# through the admin API (no password needed) while relay-manager's own user proves the gateway.
EXISTING_CUSTOMER = "existing-customer@example.com"
SAMPLE_USERS = (SUBSCRIBER, EXISTING_CUSTOMER)


@dataclass(frozen=True)
class Expected:
    """What one demo entry must end as."""

    label: str
    confirmation: str
    access: str
    resolution: str | None
    recommended: bool = False


# name → (upstream config, requested models, key override, expected outcome)
SCENARIO: dict[str, tuple[UpstreamConfig, list[str], str | None, Expected]] = {
    "moonshot": (
        UpstreamConfig(
            name="moonshot",
            models=[SimModel("Kimi-K2.6"), SimModel("kimi-k2")],
            responses_status=404,
        ),
        ["kimi 2.6"],
        None,
        Expected("typo corrected; 403 probe race → advisory", "advisory", "active", "created"),
    ),
    "deepseek": (
        UpstreamConfig(
            name="deepseek",
            models=[SimModel("deepseek-ai/DeepSeek-V4-Pro"), SimModel("deepseek-chat")],
        ),
        ["deepseek-v5-pro"],
        None,
        Expected(
            "unknown model → recommendation; 503 warm-up → retry → active",
            "confirmed",
            "active",
            "created",
            recommended=True,
        ),
    ),
    "glm": (
        UpstreamConfig(name="glm", models=[SimModel("glm-4.5"), SimModel("glm-4.5-air")]),
        [],
        None,
        Expected("already imported and active → reused", "confirmed", "active", "reused"),
    ),
    "qwen": (
        UpstreamConfig(name="qwen", models=[SimModel("Qwen/Qwen3-32B")]),
        [],
        None,
        Expected("disabled on the host → reactivated", "confirmed", "active", "reactivated"),
    ),
    "broken": (
        UpstreamConfig(name="broken", models=[SimModel("minimax-m2")]),
        [],
        "sk-this-key-was-revoked",
        Expected("revoked key → broken", "pending", "broken", None),
    ),
}
PREIMPORTED = ("glm", "qwen")


class Command(BaseCommand):
    help = "Run relay-manager end to end against simulators (embedded SQLite + ORM broker)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="check, print, and exit")
        parser.add_argument("--addr", default=os.environ.get("DEMO_ADDR", "127.0.0.1:8000"))

    def handle(self, *args, once: bool, addr: str, **options) -> None:
        self.children: list[subprocess.Popen] = []
        self.simulators: list = []
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            ok = self.run_demo(addr, once=once)
        except KeyboardInterrupt:
            ok = True
        finally:
            self.stop_everything()
        if once and not ok:
            raise CommandError("the demo did not end as expected")

    # --- set-up ---------------------------------------------------------------------------------
    def run_demo(self, addr: str, *, once: bool) -> bool:
        self.fresh_database()
        call_command("migrate", verbosity=0, interactive=False)
        self.ensure_demo_user()
        call_command("setup_schedules", stdout=io.StringIO())
        host_sim = self.start_simulators()
        self.start_child("qcluster", [sys.executable, "manage.py", "run_workers"])
        self.start_child("web", [sys.executable, "manage.py", "runserver", addr, "--noreload"])
        host = register_host(
            name="demo-host",
            base_url=host_sim.url,
            auth_type="admin_api_key",
            admin_credential=host_sim.admin_key,
        )
        self.say(f"registered host {host.pk} at {host.base_url}: {host.status}")
        self.preimport(host, host_sim)
        run = self.sample_batch(host)
        ok = self.report(run)
        self.wait_for_web(addr)
        self.say(f"result page: http://{addr}/batch-import/runs/{run.run_id}")
        self.say(f"providers (after the import): http://{addr}/providers/")
        self.say(f"admin: http://{addr}/admin/  (login {DEMO_USERNAME} / {DEMO_PASSWORD})")
        if once:
            return ok
        self.say("serving; press Ctrl-C to stop")
        while all(child.poll() is None for child in self.children):
            time.sleep(0.5)
        return ok

    def fresh_database(self) -> None:
        """The demo keeps its own SQLite file and starts it afresh: the simulators' state is
        in memory, so yesterday's runs would point at hosts that no longer exist."""
        name = str(settings.DATABASES["default"]["NAME"])
        if not name.endswith(DEMO_DB_NAME):
            raise CommandError(
                f"the demo runs on its own database (DATABASE_URL=sqlite:///var/{DEMO_DB_NAME})"
            )
        for suffix in ("", "-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)

    def ensure_demo_user(self) -> None:
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        self.say(f"demo staff user: {DEMO_USERNAME} / {DEMO_PASSWORD}")

    def start_simulators(self) -> HostSimulator:
        # Every new account's first test fails with 403 and the gateway warms up for 3 s:
        # the quirks real hosts show (seed 003), absorbed by the confirm and validate stages.
        host_sim = HostSimulator(quirks=Quirks(probe_403=True, warmup_seconds=3)).start()
        self.simulators.append(host_sim)
        self.say(f"host simulator: {host_sim.url}")
        self.upstreams: dict[str, UpstreamSimulator] = {}
        for name, (config, *_rest) in SCENARIO.items():
            upstream = UpstreamSimulator(config).start()
            self.simulators.append(upstream)
            self.upstreams[name] = upstream
            self.say(f"upstream simulator {name}: {upstream.base_url}")
        return host_sim

    def start_child(self, name: str, argv: list[str]) -> None:
        log = open(Path(settings.VAR_DIR) / f"demo-{name}.log", "w")  # noqa: SIM115
        child = subprocess.Popen(  # noqa: S603 - our own manage.py
            argv,
            cwd=settings.BASE_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with all its workers
        )
        self.children.append(child)
        self.say(f"started {name} (pid {child.pid}, log var/demo-{name}.log)")

    # --- the runs -------------------------------------------------------------------------------
    def entry_line(self, name: str) -> str:
        _config, models, key, _expected = SCENARIO[name]
        upstream = self.upstreams[name]
        line = f"{upstream.base_url},{key or upstream.api_key}"
        return f"{line},{'|'.join(models)}" if models else line

    def batch(self, host, names, *, users=(SUBSCRIBER,), wait: str = "3m") -> ImportRun:
        out = io.StringIO()
        args = [
            "--host-id",
            str(host.pk),
            "--access-mode",
            "subscription",
            "--subscription-users",
            ",".join(users),
            "--subscription-days",
            "30",
            "--confirm-wait-timeout",
            wait,
            "--json",
        ]
        for name in names:
            args += ["--entry", self.entry_line(name)]
        # Exit codes report warnings and broken items: the demo checks the items itself.
        with contextlib.suppress(SystemExit):
            call_command("batch_import", *args, stdout=out)
        document = json.loads(out.getvalue())
        return ImportRun.objects.with_counts().get(pk=document["run"]["run_id"])

    def preimport(self, host, host_sim: HostSimulator) -> None:
        """Import two upstreams first, then switch one off on the host, so the sample batch
        can show a reused and a reactivated account."""
        self.say("pre-importing glm and qwen …")
        run = self.batch(host, PREIMPORTED)
        qwen = run.items.get(base_url=self.upstreams["qwen"].base_url)
        with client_for_host(host) as client:
            client.accounts.set_schedulable(qwen.account_id, False)
        self.say(f"pre-import {run.run_id}: {run.state}; qwen's account switched off")

    def add_existing_customer(self, host) -> None:
        with client_for_host(host) as client:
            client.users.create(email=EXISTING_CUSTOMER, password=Secret(secrets.token_urlsafe(12)))
        self.say(f"{EXISTING_CUSTOMER} is a customer the host already has")

    def sample_batch(self, host) -> ImportRun:
        self.add_existing_customer(host)
        self.say("running the sample batch through manage.py batch_import …")
        return self.batch(host, list(SCENARIO), users=SAMPLE_USERS)

    # --- the summary ----------------------------------------------------------------------------
    def report(self, run: ImportRun) -> bool:
        self.say(f"\nrun {run.run_id}: {run.state}")
        ok = run.is_terminal
        for name, (_config, _models, _key, expected) in SCENARIO.items():
            item = run.items.get(base_url=self.upstreams[name].base_url)
            got = (item.confirmation_status, item.access_status, item.account_resolution)
            want = (expected.confirmation, expected.access, expected.resolution)
            matched = got == want and (bool(item.recommended_models) or not expected.recommended)
            customer = next(
                (u for u in item.subscription_access or [] if u["email"] == EXISTING_CUSTOMER),
                None,
            )
            if expected.access == "active":  # the existing customer got the subscription
                matched = matched and bool(
                    customer and customer["outcome"] == "existing" and customer["subscription_id"]
                )
            ok = ok and matched
            self.say(
                f"  [{'ok' if matched else 'UNEXPECTED'}] {name:9} {expected.label}: "
                f"smoke={item.resolved_smoke_model or '-'} "
                f"recommended={'; '.join(recommendation_labels(item.recommended_models)) or '-'} "
                f"confirmation={got[0]} access={got[1]} resolution={got[2] or '-'} "
                f"{EXISTING_CUSTOMER.split('@')[0]}={customer['outcome'] if customer else '-'}"
                + (
                    f" failure={item.failure_class} error={item.last_error}"
                    if item.access_status != "active"
                    else ""
                )
            )
        self.say("every item ended as expected" if ok else "some items did not end as expected")
        return ok

    def wait_for_web(self, addr: str) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urlopen(f"http://{addr}/admin/login/", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise CommandError(f"the web server did not answer on {addr} (see var/demo-web.log)")

    # --- tear-down ------------------------------------------------------------------------------
    def stop_everything(self) -> None:
        for child in self.children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        for simulator in self.simulators:
            simulator.stop()
        if self.children or self.simulators:
            self.say("stopped every process the demo started")

    def say(self, line: str) -> None:
        self.stdout.write(line)
