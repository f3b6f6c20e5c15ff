from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay_project.env import ConfigError, env_bool, env_database, env_int

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "value", "reader"),
    [
        ("RELAY_CONCURRENCY", "abc", lambda: env_int("RELAY_CONCURRENCY", 4)),
        ("RELAY_CONCURRENCY", "0", lambda: env_int("RELAY_CONCURRENCY", 4, minimum=1)),
        ("DEBUG", "maybe", lambda: env_bool("DEBUG")),
        ("DATABASE_URL", "mysql//nope", lambda: env_database("DATABASE_URL", "sqlite:///x")),
        ("DATABASE_URL", "postgres://u@h:5432/", lambda: env_database("DATABASE_URL", "")),
    ],
)
def test_readers_reject_bad_values_naming_the_variable(monkeypatch, name, value, reader):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        reader()


def test_readers_accept_good_values(monkeypatch):
    monkeypatch.setenv("RELAY_CONCURRENCY", " 8 ")
    monkeypatch.setenv("DEBUG", "yes")
    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/relay")
    assert env_int("RELAY_CONCURRENCY", 4) == 8
    assert env_bool("DEBUG") is True
    assert env_database("DATABASE_URL", "")["NAME"] == "relay"


def _clean_environment() -> dict[str, str]:
    """The process environment minus what this suite or an earlier test set for itself."""
    dropped = ("PYTEST_CURRENT_TEST", "DJANGO_ALLOW_ASYNC_UNSAFE")
    return {
        k: v
        for k, v in os.environ.items()
        # COV_CORE_*: pytest-cov would load pytest into the child, which then thinks it is a test
        if not k.startswith(("RELAY_", "DATABASE", "COV_CORE_")) and k not in dropped
    }


def _manage_check(**env: str) -> subprocess.CompletedProcess:
    clean = _clean_environment()
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"RELAY_CONCURRENCY": "abc"}, "RELAY_CONCURRENCY"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"RELAY_TASK_TIMEOUT": "300", "RELAY_LEASE_TTL": "60"}, "RELAY_TASK_TIMEOUT"),
        # An inline retry wait must end before the task timeout kills the worker holding it.
        ({"RELAY_INLINE_RETRY_MAX_DELAY": "90"}, "RELAY_INLINE_RETRY_MAX_DELAY"),
        ({"DEBUG": "0", "SECRET_KEY": ""}, "SECRET_KEY"),
    ],
)
def test_start_up_stops_with_one_line_naming_the_variable(env, variable):
    result = _manage_check(**env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


def test_production_settings_pass_django_deploy_checks(tmp_path):
    """DEBUG off behind HTTPS: secure cookies, HSTS, SSL redirect, no deploy warning left."""
    from cryptography.fernet import Fernet

    (tmp_path / "secret_key").write_text("x" * 20 + Fernet.generate_key().decode())
    clean = _clean_environment()
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **clean,
            "DEBUG": "0",
            "SECRET_KEY_FILE": str(tmp_path / "secret_key"),
            "RELAY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "RELAY_HTTPS": "1",
            "ALLOWED_HOSTS": "relay.example.com",
            "RELAY_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
