"""Commands write their human output in the operator's language (#20): --language, else the
locale (LC_ALL, LC_MESSAGES, LANG), else settings.LANGUAGE_CODE; --json does not change."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from relay_project.cli_language import command_language, language_of_locale
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def finished_run():
    run = ImportRunFactory(
        state="completed_with_warnings", total_items=1, completed_items=1, degraded_items=1
    )
    ImportRunItemFactory(
        run=run,
        current_stage="done",
        confirmation_status="confirmed",
        access_status="degraded",
        resolved_smoke_model="kimi-k2.6",
        account_resolution="reused",
        provision_reused=True,
    )
    return run


def run_status(run, *args) -> str:
    out = io.StringIO()
    with pytest.raises(SystemExit):  # exit code 1: warnings
        call_command("run_status", run.run_id, *args, stdout=out)
    return out.getvalue()


EN_LINES = [
    "state: completed with warnings",
    "1/1 done · active 0 · degraded 1 · broken 0",
    "confirmation=confirmed access=degraded reused=yes resolution=reused",
]
ZH_LINES = [
    "状态:已完成(有告警)",
    "已完成 1/1 · 可用 0 · 降级 1 · 不可用 0",
    "确认状态=已确认 可用性=降级 复用=是 账号处理=复用",
]


def test_language_option_picks_chinese_or_english():
    run = finished_run()
    chinese = run_status(run, "--language", "zh-hans")
    for line in ZH_LINES:
        assert line in chinese, chinese
    english = run_status(run, "--language", "en")
    for line in EN_LINES:
        assert line in english, english
    assert "状态" not in english


@pytest.mark.parametrize(
    ("variables", "chinese"),
    [
        ({"LANG": "zh_CN.UTF-8"}, True),
        ({"LC_ALL": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, True),  # LC_ALL wins
        ({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}, False),
        ({"LANG": "C.UTF-8"}, False),  # no language: settings.LANGUAGE_CODE (en)
        ({}, False),
    ],
)
def test_the_locale_picks_the_language_without_the_option(monkeypatch, variables, chinese):
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    output = run_status(finished_run())
    assert (ZH_LINES[0] in output) is chinese and (EN_LINES[0] in output) is not chinese


def test_the_option_wins_over_the_locale(monkeypatch):
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    assert EN_LINES[0] in run_status(finished_run(), "--language", "en")


def test_json_output_keeps_its_machine_values_in_both_languages():
    run = finished_run()
    documents = [
        json.loads(run_status(run, "--json", "--language", code)) for code in ("en", "zh-hans")
    ]
    # machine values (states, codes, items) do not change; warnings are texts for people
    for key in ("run", "items", "result_page"):
        assert documents[0][key] == documents[1][key], key


def test_command_errors_in_chinese():
    with pytest.raises(CommandError) as refused:
        call_command("run_status", "run_nope", "--language", "zh-hans")
    assert str(refused.value) == "run_id:没有批次 'run_nope'"
    with pytest.raises(CommandError) as refused:
        call_command("batch_import", "--language", "zh-hans", "--entry", "x")
    assert "--entry[0]" in str(refused.value)
    with pytest.raises(CommandError) as refused:
        call_command("batch_import", "--language", "zh-hans")
    assert str(refused.value) == "--host-id:必填(除非使用 --promote)"


def test_reconcile_speaks_chinese(monkeypatch):
    out = io.StringIO()
    call_command("reconcile", "--language", "zh-hans", stdout=out)
    assert out.getvalue().strip() == "无需对账:范围内没有已启用的上游"
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    out = io.StringIO()
    call_command("reconcile", stdout=out)
    assert out.getvalue().strip() == "nothing to reconcile: no enabled provider in scope"


@pytest.mark.parametrize(
    ("locale_name", "language"),
    [
        ("zh_CN.UTF-8", "zh-hans"),
        ("zh_SG", "zh-hans"),
        ("zh_Hans", "zh-hans"),
        ("en_GB.UTF-8", "en"),
        ("C", None),
        ("POSIX", None),
        ("fr_FR.UTF-8", None),
        ("", None),
    ],
)
def test_locale_names_map_to_the_catalog_languages(locale_name, language):
    assert language_of_locale(locale_name) == language


def test_unknown_locale_falls_back_to_the_default(settings):
    assert command_language(None, {"LANG": "fr_FR.UTF-8"}) == settings.LANGUAGE_CODE
    assert command_language("zh-hans", {"LANG": "en_US"}) == "zh-hans"


def test_maintenance_commands_speak_chinese():
    out = io.StringIO()
    call_command("setup_schedules", "--language", "zh-hans", stdout=out)
    assert "已创建计划任务 batch_import.sweep(每 " in out.getvalue()
    out = io.StringIO()
    call_command("rotate_secrets", "--language", "zh-hans", stdout=out)
    assert "已用主密钥重新加密 0 行" in out.getvalue()
