"""Real-browser checks: Playwright driving Debian's Chromium against the live server."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRun
from tests.factories import HostFactory
from tests.fixtures_browser import SHOTS, switch_language

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_every_page_shows_its_badges(page, live_server, rich_run):
    page.goto(f"{live_server.url}/batch-import/runs")
    assert page.locator('[data-kind="run_state"]').first.inner_text() == "warning"
    page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)

    with page.expect_navigation():
        page.click(f"text={rich_run.run_id}")
    labels = page.locator(".badge").all_inner_texts()
    for label in ("advisory", "broken", "reused", "deprecated", "reactivated", "replaced"):
        assert label in labels, label
    assert page.locator(".warnings li").first.is_visible()
    page.screenshot(path=str(SHOTS / "run.png"), full_page=True)

    item = rich_run.items.get(account_resolution="reactivated")
    with page.expect_navigation():
        page.click(f"text={item.provider_id}")
    assert page.locator("text=Kimi-K2.6").first.is_visible()
    assert "delay_ms" in page.content()
    page.screenshot(path=str(SHOTS / "item.png"), full_page=True)


def test_chinese_page_shows_the_seed_labels(browser, page, live_server, rich_run):
    switch_language(page, "zh-hans")
    page.goto(f"{live_server.url}/batch-import/runs/{rich_run.run_id}")
    labels = page.locator(".badge").all_inner_texts()
    assert {"已弃用", "已快速启用", "已替换", "复用"} <= set(labels)
    page.screenshot(path=str(SHOTS / "run-zh.png"), full_page=True)


def test_start_form_refuses_a_bad_line_then_starts_a_run(page, live_server, settings):
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    host = HostFactory(name="demo-host")
    page.goto(f"{live_server.url}/batch-import/runs/new")
    page.select_option("#id_host_id", value=str(host.pk))
    page.fill("#id_subscription_users", "ops@example.com")
    page.fill("#id_entries", "https://a.example,sk-secret-a\nnot-a-url,sk-secret-b")
    with page.expect_navigation():
        page.click("text=Start run")
    assert page.locator("text=line 2: URL: must start with http:// or https://").is_visible()
    assert page.input_value("#id_entries").startswith("https://a.example,sk-secret-a")
    assert not ImportRun.objects.exists()
    page.screenshot(path=str(SHOTS / "form-error.png"), full_page=True)

    page.fill("#id_entries", "https://a.example,sk-secret-a,kimi-k2.6\nhttps://b.example,sk-b")
    with page.expect_navigation():
        page.click("text=Start run")
    run = ImportRun.objects.with_counts().get()
    page.wait_for_url(f"{live_server.url}/batch-import/runs/{run.run_id}")
    assert page.locator('[data-kind="run_state"]').first.inner_text() == "running"
    assert page.locator("#live[data-refresh]").count() == 1
    page.screenshot(path=str(SHOTS / "run-started.png"), full_page=True)
