"""Every setting can come from a file (``NAME_FILE``), the Docker/Kubernetes secrets convention."""

from __future__ import annotations

import pytest

from relay_project.env import ConfigError, env_bool, env_database, env_int, env_str


def test_value_is_read_from_the_file_named_by_name_file(tmp_path, monkeypatch):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file\n")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(secret))
    assert env_str("SECRET_KEY") == "from-a-file"


def test_typed_readers_read_files_too(tmp_path, monkeypatch):
    (tmp_path / "n").write_text("12")
    (tmp_path / "b").write_text("yes")
    (tmp_path / "db").write_text("postgres://relay@db:5432/relay")
    monkeypatch.setenv("RELAY_CONCURRENCY_FILE", str(tmp_path / "n"))
    monkeypatch.setenv("DEBUG_FILE", str(tmp_path / "b"))
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "db"))
    for name in ("RELAY_CONCURRENCY", "DEBUG", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert env_int("RELAY_CONCURRENCY", 4) == 12
    assert env_bool("DEBUG") is True
    assert env_database("DATABASE_URL", "sqlite:///x")["HOST"] == "db"


def test_setting_both_the_value_and_its_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "k").write_text("a")
    monkeypatch.setenv("SECRET_KEY", "b")
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "k"))
    with pytest.raises(ConfigError, match="either SECRET_KEY or SECRET_KEY_FILE"):
        env_str("SECRET_KEY")


def test_missing_file_names_the_variable_and_the_path(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("SECRET_KEY_FILE", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match=r"SECRET_KEY_FILE: cannot read .*absent"):
        env_str("SECRET_KEY")
