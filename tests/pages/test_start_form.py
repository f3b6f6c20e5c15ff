from __future__ import annotations

import pytest

from batch_import.models import ImportRun
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db


def form_data(host, entries, **extra):
    return {
        "host_id": host.pk,
        "mode": "partial",
        "access_mode": "subscription",
        "subscription_users": "ops@example.com",
        "subscription_days": 30,
        "confirm_wait_timeout_sec": 0,
        "entries": entries,
        **extra,
    }


def test_good_lines_start_a_run_and_land_on_its_page(client, staff, settings):
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    host = HostFactory()
    text = "# pasted\nhttps://a.example/v1,sk-a,kimi-k2.6|glm-4.5\n\nhttps://b.example,sk-b\n"
    answer = client.post("/batch-import/runs/new", form_data(host, text))
    run = ImportRun.objects.with_counts().get()
    assert answer.status_code == 302 and answer["Location"] == f"/batch-import/runs/{run.run_id}"
    assert run.total_items == 2 and run.created_by == "ops"


def test_a_bad_line_is_named_by_its_number_nothing_is_created_and_the_lines_are_kept(client, staff):
    host = HostFactory()
    text = (
        "# comment\nhttps://a.example,sk-secret-aaaa\nnot-a-url,sk-secret-bbbb\nhttps://c.example\n"
    )
    answer = client.post("/batch-import/runs/new", form_data(host, text))
    html = answer.content.decode()
    assert "line 3: URL: must start with http:// or https://" in html
    assert "line 4: expected url,key[,model|model]" in html
    # What the operator typed comes back in this answer only (not cached): fix one line, go.
    assert "https://a.example,sk-secret-aaaa" in html and answer["Cache-Control"] == "no-store"
    assert not ImportRun.objects.exists()


def test_conditional_fields_are_required_by_access_mode(client, staff):
    host = HostFactory()
    html = client.post(
        "/batch-import/runs/new",
        form_data(host, "https://a.example,sk-a", access_mode="self_service"),
    ).content.decode()
    assert "<li>is required when access_mode=self_service</li>" in html
    assert "probe_api_key:" not in html  # shown under its field, without the internal name
    html = client.post(
        "/batch-import/runs/new", form_data(host, "https://a.example,sk-a", subscription_users="")
    ).content.decode()
    assert "<li>is required when access_mode=subscription</li>" in html
    assert "subscription_users:" not in html
    assert not ImportRun.objects.exists()


def test_form_errors_read_in_chinese_without_internal_names(client, staff, settings):
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = False  # `make test` allows http: refuse it here
    host = HostFactory()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/batch-import/runs/new"})
    text = "https://a.example,sk-a\nhttp://b.example,sk-b\nhttps://c.example"
    html = client.post(
        "/batch-import/runs/new",
        form_data(host, text, subscription_users="ops@example.com, not-an-email"),
    ).content.decode()
    assert "第 2 行: 地址: 必须使用 https" in html
    assert "第 3 行: 格式应为 url,key[,model|model]" in html
    assert "第 2 个邮箱:不是有效的邮箱地址" in html
    assert "entries[" not in html and "subscription_users[" not in html
    assert "https://a.example,sk-a" in html  # the valid line is kept as typed
    assert not ImportRun.objects.exists()


def test_the_form_carries_a_csrf_token(client, staff):
    HostFactory()
    assert "csrfmiddlewaretoken" in client.get("/batch-import/runs/new").content.decode()
