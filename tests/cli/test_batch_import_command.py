from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from batch_import import cli
from batch_import.models import ImportRun, LegacyImportBatch
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def run_cli(*args, stdin=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = 0
    try:
        call_command("batch_import", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def base_args(host):
    return [
        "--host-id",
        str(host.pk),
        "--subscription-users",
        "ops@example.com",
        "--subscription-days",
        "30",
        "--confirm-wait-timeout",
        "0",
    ]


def test_entries_start_a_run_and_print_run_id_and_result_page():
    host = HostFactory()
    code, out, _ = run_cli(*base_args(host), "--entry", "https://a.example/v1,sk-a,kimi-k2.6")
    run = ImportRun.objects.with_counts().get()
    assert code == cli.ExitCode.STILL_RUNNING
    assert f"run_id: {run.run_id}" in out
    assert f"/batch-import/runs/{run.run_id}" in out
    assert run.items.get().requested_models == ["kimi-k2.6"]
    assert "sk-a" not in out


def test_batch_file_from_stdin_keeps_keys_off_the_command_line(monkeypatch):
    host = HostFactory()
    text = (
        "\ufeff# list\r\nhttps://a.example,sk-a\r\n\r\n"
        "https://a.example,sk-a\r\nhttps://b.example,sk-b\r\n"
    )
    _, _, err = run_cli(*base_args(host), "--batch-file", "-", stdin=text, monkeypatch=monkeypatch)
    assert ImportRun.objects.with_counts().get().total_items == 2
    assert "duplicate lines skipped: 4" in err


def test_batch_file_path(tmp_path):
    host = HostFactory()
    path = tmp_path / "entries.txt"
    path.write_bytes("https://a.example,sk-a,m1|m2\r\n".encode("utf-8-sig"))
    run_cli(*base_args(host), "--batch-file", str(path))
    assert ImportRun.objects.with_counts().get().items.get().requested_models == ["m1", "m2"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--entry", "https://a.example"], "--entry[0]"),
        (["--entry", "ftp://a,sk"], "entries[0].base_url"),
        (["--entry", "https://a.example,sk", "--mode", "fast"], "mode"),
        (
            ["--entry", "https://a.example,sk", "--confirm-wait-timeout", "soon"],
            "--confirm-wait-timeout",
        ),
        (["--batch-file", "/nonexistent/file"], "--batch-file"),
        (["--entry", "https://a.example,sk", "--access-mode", "self_service"], "probe_api_key"),
    ],
)
def test_bad_input_is_a_command_error_naming_the_field_and_creates_nothing(extra, field):
    host = HostFactory()
    with pytest.raises(CommandError) as caught:
        call_command("batch_import", *base_args(host), *extra, stdout=io.StringIO())
    assert field in str(caught.value)
    assert caught.value.returncode == cli.ExitCode.INVALID_INPUT
    assert not ImportRun.objects.exists()


def test_json_document_equals_the_api_projection():
    host = HostFactory()
    _, out, _ = run_cli(*base_args(host), "--json", "--entry", "https://a.example,sk-a")
    document = json.loads(out)
    run = ImportRun.objects.with_counts().get()
    assert document == cli.run_document(run)
    assert document["run"]["run_id"] == run.run_id
    assert "sk-a" not in out


@pytest.mark.parametrize(
    ("state", "broken", "code"),
    [
        ("running", 0, 4),
        ("completed", 0, 0),
        ("completed_with_warnings", 0, 1),
        ("completed_with_warnings", 1, 2),
        ("failed", 2, 2),
        ("cancelled", 0, 2),
    ],
)
def test_exit_codes(state, broken, code):
    assert cli.exit_code_for(ImportRunFactory(state=state, broken_items=broken)) == code


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("2m", 120), ("1h", 3600), ("90", 90), ("500ms", 0.5)]
)
def test_parse_duration(text, seconds):
    assert cli.parse_duration(text) == seconds


def test_run_status_prints_the_same_report():
    item = ImportRunItemFactory(resolved_smoke_model="kimi-k2.6", current_stage="done")
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("run_status", item.run_id, stdout=out)
    assert out.getvalue().splitlines() == cli.report_lines(
        ImportRun.objects.with_counts().get(pk=item.run_id)
    )
    assert "smoke=kimi-k2.6" in out.getvalue()


def test_run_status_unknown_run_is_a_command_error():
    with pytest.raises(CommandError, match="run_id"):
        call_command("run_status", "run_nope")


def test_dry_run_starts_a_preview():
    host = HostFactory()
    _, out, _ = run_cli(*base_args(host), "--entry", "https://a.example.com/v1,sk-a", "--dry-run")
    run = ImportRun.objects.with_counts().get()
    assert run.is_preview and "run_id: " in out
    assert not LegacyImportBatch.objects.exists()


def test_preview_lines_show_each_plan():
    run = ImportRunFactory(is_preview=True)
    plan = {
        "decision": {"action": "create"},
        "group": {"action": "create"},
        "channel": {"action": "create", "mapping_added": {"a": "b"}},
        "account": {"action": "create"},
        "access": [],
        "conflicts": ["user x: exists"],
    }
    item = ImportRunItemFactory(run=run, preview_plan=plan)
    lines = cli.preview_lines(run)
    assert lines[0].startswith("preview: nothing was written")
    assert lines[1] == (
        f"  {item.provider_id}: account create, group create, channel create (+1 mappings); "
        "conflicts: user x: exists"
    )
    assert cli.preview_lines(ImportRunFactory()) == []


def test_a_batch_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    host = HostFactory()
    batch = tmp_path / "entries.txt"
    batch.write_bytes(b"https://a.example,sk-a\nhttps://b.example,sk-\xff\xfe\n")
    with pytest.raises(CommandError) as refused:
        run_cli(*base_args(host), "--batch-file", str(batch))
    assert refused.value.returncode == cli.ExitCode.INVALID_INPUT
    assert "line 2: not UTF-8 text (byte 0xff)" in str(refused.value)
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("https://a.example,sk-ab\x00cd", "api_key: contains an invisible control character"),
        ("https://a.example,sk-abcé", "api_key: contains a non-ASCII character (U+00E9)"),
        ("https://a.example,sk-ab\u200bcd", "api_key: contains an invisible control character"),
        ("https://a.example:99999,sk-a", "base_url: port must be a number between 1 and 65535"),
        ("https://" + "a" * 600 + ".example,sk-a", "base_url: is longer than 500 characters"),
        ("https://u:sk-x@a.example,sk-a", "base_url: must not contain user:password@"),
    ],
)
def test_hostile_entries_are_refused_before_anything_is_written(tmp_path, line, problem):
    host = HostFactory()
    batch = tmp_path / "entries.txt"
    batch.write_text(f"https://ok.example,sk-ok\n{line}\n", encoding="utf-8")
    with pytest.raises(CommandError) as refused:
        run_cli(*base_args(host), "--batch-file", str(batch))
    assert refused.value.returncode == cli.ExitCode.INVALID_INPUT
    assert f"entries[1].{problem}" in str(refused.value)
    assert "sk-ab" not in str(refused.value)
    assert not ImportRun.objects.exists()


def test_a_usage_error_has_its_own_exit_code():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "batch_import", "--entry", "https://a.example,sk-a"],
        cwd=root,
        env={**os.environ, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == cli.ExitCode.USAGE == 64
    assert "--host-id: required" in result.stderr


def test_promote_turns_a_finished_preview_into_the_run():
    preview = ImportRunFactory(is_preview=True, state="completed")
    ImportRunItemFactory(run=preview, raw_models=["glm-4.5"], current_stage="done")
    code, out, _ = run_cli("--promote", preview.run_id, "--confirm-wait-timeout", "0")
    preview.refresh_from_db()
    run = ImportRun.objects.with_counts().get(pk=preview.promoted_to)
    assert f"run_id: {run.run_id} (promoted from preview {preview.run_id})" in out
    assert run.preview_of == preview.run_id and code == 4  # still running when the wait ended
    assert run.items.get().current_stage == "provision"  # the probe results were reused
    with pytest.raises(CommandError, match="already promoted") as again:
        run_cli("--promote", preview.run_id)
    assert again.value.returncode == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--host-id", "1"], "--promote: --host-id cannot be combined"),
        (["--entry", "https://a.example.com,sk-a"], "--promote: --entry/--batch-file cannot"),
    ],
)
def test_promote_takes_nothing_else(extra, message):
    preview = ImportRunFactory(is_preview=True, state="completed")
    with pytest.raises(CommandError, match=message) as refused:
        run_cli("--promote", preview.run_id, *extra)
    assert refused.value.returncode == 64
    with pytest.raises(CommandError, match="does not exist"):
        run_cli("--promote", "run_nope")


def test_host_id_is_required_without_promote():
    with pytest.raises(CommandError, match="--host-id: required") as refused:
        run_cli("--entry", "https://a.example.com,sk-a")
    assert refused.value.returncode == 64
