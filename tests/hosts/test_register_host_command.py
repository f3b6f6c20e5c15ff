"""``manage.py register_host`` against the host simulator."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from hosts.models import Host

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_http(settings):
    settings.RELAY_HTTP_TIMEOUT = 2
    settings.RELAY_HTTP_RETRIES = 0


def run(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("register_host", *args, stdout=out)
    return out.getvalue()


def test_register_host_command_reads_key_from_env(host_simulator, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", host_simulator.admin_key)
    output = run(
        "--name", "sim", "--base-url", host_simulator.url, "--admin-key-env", "TEST_ADMIN_KEY"
    )
    host = Host.objects.get(name="sim")
    assert f"host {host.id} sim: supported" in output
    assert host_simulator.admin_key not in output


def test_register_host_command_reads_password_from_stdin(host_simulator, monkeypatch):
    output = run(
        "--name",
        "sim",
        "--base-url",
        host_simulator.url,
        "--auth-type",
        "password",
        "--admin-email",
        host_simulator.admin_email,
        "--admin-password-stdin",
        stdin=host_simulator.admin_password + "\n",
        monkeypatch=monkeypatch,
    )
    assert "supported" in output
    assert Host.objects.get(name="sim").auth_type == "password"


def test_register_host_command_prints_missing_capabilities(old_host_simulator, monkeypatch):
    output = run(
        "--name",
        "old",
        "--base-url",
        old_host_simulator.url,
        "--admin-key-stdin",
        stdin=old_host_simulator.admin_key,
        monkeypatch=monkeypatch,
    )
    assert "unsupported" in output
    assert "missing capabilities: channels" in output


def test_register_host_command_names_the_bad_option(monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", "admin-" + "4" * 64)
    with pytest.raises(CommandError, match=r"--base-url \(base_url\)"):
        run("--name", "x", "--base-url", "ftp://nowhere", "--admin-key-env", "TEST_ADMIN_KEY")
    assert not Host.objects.exists()


def test_register_host_command_requires_one_key_source():
    with pytest.raises(CommandError, match="--admin-key-env or --admin-key-stdin"):
        run("--name", "x", "--base-url", "http://127.0.0.1:1")


def test_register_host_command_rejects_unset_env_var(monkeypatch):
    monkeypatch.delenv("TEST_ADMIN_KEY", raising=False)
    with pytest.raises(CommandError, match="TEST_ADMIN_KEY is empty or unset"):
        run("--name", "x", "--base-url", "http://127.0.0.1:1", "--admin-key-env", "TEST_ADMIN_KEY")


def test_register_host_command_rejected_key_points_at_key_option(host_simulator, monkeypatch):
    monkeypatch.setenv("TEST_ADMIN_KEY", "admin-" + "5" * 64)
    with pytest.raises(CommandError, match=r"--admin-key-env / --admin-key-stdin"):
        run("--name", "x", "--base-url", host_simulator.url, "--admin-key-env", "TEST_ADMIN_KEY")
