"""What the pipeline writes for an operator reads in the reader's language (#20, #14): event
messages, an item's last error, the run's warning lines and a provider's state reason and
events come back in zh-hans or en (``Accept-Language``, default settings.LANGUAGE_CODE) on
the API and the pages; the upstream's own answer stays verbatim inside the sentence."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import translation

from batch_import.models import ImportRunItemEvent
from providers import services as provider_services
from tests.api.conftest import api, token, user  # noqa: F401
from tests.factories import ImportRunItemEventFactory
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
RUNS = "/api/batch-import/runs"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def typical_run(host_simulator, upstream_factory):
    """One key that works and one the upstream refuses (401): completed_with_warnings."""
    good = upstream_factory(models=("Kimi-K2.6",))
    revoked = upstream_factory(models=("glm-4.5",), api_key="sk-the-real-key")
    host = register(host_simulator)
    run = drive(start(host, [entry(good, models=["kimi 2.6"]), entry(revoked, key="sk-revoked")]))
    assert run.state == "completed_with_warnings"
    return run


def broken_item(run):
    return run.items.get(access_status="broken")


def get(api, path, language):  # noqa: F811
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    response = api.get(path, **headers)
    assert response.status_code == 200, response.content
    return response.json()


def test_last_error_reads_in_the_callers_language_with_the_upstream_text_verbatim(
    api,  # noqa: F811
    typical_run,
):
    item = broken_item(typical_run)
    path = f"{RUNS}/{typical_run.run_id}/items/{item.item_id}"
    english, chinese = get(api, path, "en"), get(api, path, "zh-hans")
    assert english["last_error"] == item.last_error
    assert english["last_error"].startswith("the upstream refused the key: ")
    assert chinese["last_error"].startswith("上游拒绝了该 Key:")
    upstream_text = english["last_error"].removeprefix("the upstream refused the key: ")
    assert "401" in upstream_text and chinese["last_error"].endswith(upstream_text)
    assert get(api, path, None)["last_error"] == english["last_error"]  # settings default


def test_events_read_in_the_callers_language(api, typical_run):  # noqa: F811
    item = typical_run.items.get(access_status="active")
    path = f"{RUNS}/{typical_run.run_id}/items/{item.item_id}"
    english = {e["event_id"]: e["message"] for e in get(api, path, "en")["events"]}
    chinese = {e["event_id"]: e["message"] for e in get(api, path, "zh-hans")["events"]}
    stored = dict(item.events.values_list("event_id", "message"))
    assert english == stored and len(stored) >= 6
    for event_id, text in chinese.items():
        assert CJK.search(text) and text != english[event_id], (text, english[event_id])
    served = item.events.get(event_type="validated")
    assert chinese[served.event_id] == "网关成功提供 kimi-k2.6"
    assert english[served.event_id] == "gateway served kimi-k2.6"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "1 item is broken; its last error says why."),
        ("zh-hans", "1 条条目不可用,原因见最近错误。"),
        (None, "1 item is broken; its last error says why."),
    ],
)
def test_a_run_with_warnings_says_why_in_the_callers_language(
    api,  # noqa: F811
    typical_run,
    language,
    expected,
):
    """#14: every completed_with_warnings run has a recent_warnings line that says why."""
    body = get(api, f"{RUNS}/{typical_run.run_id}", language)
    assert body["run"]["state"] == "completed_with_warnings"
    assert expected in body["recent_warnings"]
    if language == "zh-hans":
        assert all(CJK.search(line) for line in body["recent_warnings"])


def test_events_stored_before_messages_were_translatable_still_render(api, typical_run):  # noqa: F811
    item = typical_run.items.get(access_status="active")
    old = ImportRunItemEventFactory(item=item, message="an event from an older release")
    assert old.message_i18n is None
    path = f"{RUNS}/{typical_run.run_id}/items/{item.item_id}"
    events = {e["event_id"]: e["message"] for e in get(api, path, "zh-hans")["events"]}
    assert events[old.event_id] == "an event from an older release"
    item.last_error, item.last_error_i18n = "an error from an older release", None
    item.save(update_fields=["last_error", "last_error_i18n"])
    assert get(api, path, "zh-hans")["last_error"] == "an error from an older release"


@pytest.fixture
def staff_client(client, db):
    operator = get_user_model().objects.create_user(
        username="pages-ops", password="pw", is_staff=True, is_superuser=True
    )
    client.force_login(operator)
    return client


def test_item_and_run_pages_in_chinese_show_no_english_event_message(staff_client, typical_run):
    for item in typical_run.items.all():
        html = staff_client.get(
            f"/batch-import/runs/{typical_run.run_id}/items/{item.item_id}",
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        ).content.decode()
        events = list(ImportRunItemEvent.objects.filter(item=item))
        assert events and all(e.message_i18n for e in events)
        for event in events:
            assert event.message not in html, event.message
            assert event.message_text in html or "&" in event.message_text
        if item.last_error:
            assert item.last_error not in html and item.last_error_text.split(":")[0] in html
    run_html = staff_client.get(
        f"/batch-import/runs/{typical_run.run_id}", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert broken_item(typical_run).last_error not in run_html
    assert "上游拒绝了该 Key" in run_html


def test_provider_state_reason_and_events_in_the_callers_language(
    api,  # noqa: F811
    staff_client,
    typical_run,
):
    providers = provider_services.provider_absorb_run(run_id=typical_run.run_id)
    active = next(p for p in providers if p.state == "active")
    path = f"/api/providers/{active.pk}"
    assert get(api, path, "en")["state_reason"] == "every account passes"
    assert get(api, path, "zh-hans")["state_reason"] == "所有账号均通过"
    provider_services.provider_disable(provider_pk=active.pk, actor="ops")
    assert get(api, path, "zh-hans")["state_reason"] == "被操作员停用"
    html = staff_client.get(
        f"/providers/{active.pk}", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    assert "被操作员停用" in html and "disabled by an operator" not in html
    assert "访问状态" in html and "access not configured" not in html


def test_a_smoke_model_fallback_reads_in_chinese(host_simulator, upstream_factory):
    from probe.simulator.config import Fault

    upstream = upstream_factory(
        models=("glm-4.5", "kimi-k2.6"),
        faults=[Fault(path="/v1/chat/completions", model="glm-4.5", status=400, times=10_000)],
    )
    run = drive(start(register(host_simulator), [entry(upstream, models=("glm-4.5",))]))
    event = run.items.get().events.get(message__contains="failed the upstream smoke chat")
    assert event.message == (
        "2 models discovered; smoke model kimi-k2.6 "
        "(glm-4.5 failed the upstream smoke chat; kimi-k2.6 passed it)"
    )
    with translation.override("zh-hans"):
        assert event.message_text == (
            "发现 2 个模型;冒烟模型 kimi-k2.6(glm-4.5 未通过上游冒烟对话;kimi-k2.6 已通过)"
        )
