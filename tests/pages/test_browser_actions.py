"""Issue #20 in headless Chromium, both languages and both widths: badge colours and labels,
Cancel only while running (and a friendly answer when the run finished meanwhile), the start
form after an error, and ReDoc offline."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRun
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory
from tests.fixtures_browser import SHOTS, switch_language
from tests.pages.test_browser_layout import WIDTHS, fits

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
COLOURS = {  # relay.css: each badge colour's text colour, as getComputedStyle reports it
    "badge-blue": "rgb(29, 78, 216)",
    "badge-green": "rgb(21, 128, 61)",
    "badge-yellow": "rgb(161, 98, 7)",
    "badge-red": "rgb(185, 28, 28)",
    "badge-gray": "rgb(75, 85, 99)",
    "badge-cyan": "rgb(14, 116, 144)",
}
ADVISORY = {"en": "advisory", "zh-hans": "提示"}
CANCELLED_LATE = {
    "en": "This run has already finished; there is nothing to cancel.",
    "zh-hans": "该批次已经结束,无需取消。",
}
LINE_2 = {
    "en": "line 2: URL: must start with http:// or https://",
    "zh-hans": "第 2 行: 地址: 必须以 http:// 或 https:// 开头",
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_badges_have_labels_colours_and_one_line(page, live_server, rich_run, language, width):
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    switch_language(page, language)
    page.goto(f"{live_server.url}/batch-import/runs/{rich_run.run_id}")
    badges = page.locator(".items .badge").all()
    assert len(badges) >= 16
    for badge in badges:
        css = badge.evaluate(
            "e => ({cls: e.className, color: getComputedStyle(e).color,"
            " ws: getComputedStyle(e).whiteSpace, lines: e.getClientRects().length,"
            " h: e.getBoundingClientRect().height})"
        )
        colour = next(c for c in css["cls"].split() if c in COLOURS)
        assert css["color"] == COLOURS[colour], css
        assert css["ws"] == "nowrap" and css["lines"] == 1 and css["h"] < 30, css
    advisory = page.locator('.items [data-kind="confirmation"][data-value="advisory"]')
    assert advisory.first.inner_text() == ADVISORY[language]  # never "advisory 提示"
    # Every badge column has a heading; the header's links each stay on one line.
    headings = page.locator(".items thead th").all_inner_texts()
    assert all(h.strip() for h in headings[1:]), headings
    for heading in page.locator(".items thead th").all()[1:]:  # never one character a line
        assert heading.evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap"
    for link in page.locator("header.top nav a").all():
        assert link.evaluate("e => e.getClientRects().length") == 1
    assert fits(page)
    page.screenshot(path=str(SHOTS / f"badges-{language}-{width}.png"), full_page=True)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_cancel_only_while_running_and_friendly_when_too_late(page, live_server, language):
    page.set_viewport_size({"width": 390, "height": 900})
    switch_language(page, language)
    run = ImportRunFactory(state="running", total_items=1)
    ImportRunItemFactory(run=run, current_stage="confirm")
    page.goto(f"{live_server.url}/batch-import/runs/{run.run_id}")
    cancel = page.locator("#live button.danger")
    assert cancel.count() == 1
    # The run finishes while the page is open, then the operator presses Cancel.
    ImportRun.objects.filter(pk=run.pk).update(state="completed_with_warnings")
    cancel.click()
    page.wait_for_url(f"{live_server.url}/batch-import/runs/{run.run_id}")
    message = page.locator(".messages li").first.inner_text()
    assert message == CANCELLED_LATE[language]
    assert "completed_with_warnings" not in page.locator("main").inner_text()
    assert page.locator("#live button.danger").count() == 0
    assert fits(page)
    page.screenshot(path=str(SHOTS / f"cancel-late-{language}.png"), full_page=True)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_start_form_keeps_the_lines_and_names_the_bad_one(
    page, live_server, settings, language, width
):
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = True
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    switch_language(page, language)
    host = HostFactory(name="only-host")
    page.goto(f"{live_server.url}/batch-import/runs/new")
    assert page.input_value("#id_host_id") == str(host.pk)  # the only host, preselected
    typed = "https://a.example,sk-secret-a\nnot-a-url,sk-secret-b\nhttps://c.example,sk-secret-c"
    page.fill("#id_subscription_users", "ops@example.com")
    page.fill("#id_entries", typed)
    with page.expect_navigation():
        page.locator("form.stack button[type=submit]").first.click()
    errors = page.locator(".errorlist li").all_inner_texts()
    assert LINE_2[language] in errors, errors
    assert not any("entries[" in e for e in errors), errors
    assert page.input_value("#id_entries") == typed  # valid lines not masked
    assert page.input_value("#id_host_id") == str(host.pk)
    assert not ImportRun.objects.exists()
    assert fits(page)
    page.screenshot(path=str(SHOTS / f"form-error-{language}-{width}.png"), full_page=True)


PROGRESS = {
    "en": ("1 of 3 done (33%)", "s left", ["Active 1", "Degraded 0", "Broken 0", "Warnings 0"]),
    "zh-hans": ("已完成 1 / 3(33%)", "约剩", ["可用 1", "降级 0", "不可用 0", "告警 0"]),
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_running_run_shows_its_progress(page, live_server, language, width):
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    switch_language(page, language)
    run = ImportRunFactory(state="running", total_items=3, completed_items=1, active_items=1)
    ImportRunItemFactory(run=run, current_stage="done", access_status="active")
    ImportRunItemFactory(run=run, current_stage="confirm")
    ImportRunItemFactory(run=run, current_stage="probe")
    page.goto(f"{live_server.url}/batch-import/runs/{run.run_id}")
    done, eta, outcomes = PROGRESS[language]
    line = page.locator("[data-progress]").inner_text()
    assert done in line and eta in line, line
    assert page.locator("[data-progress] progress").get_attribute("value") == "1"
    assert page.locator(".stage-counts li").count() == 3  # done, confirm, probe: one each
    for stage in page.locator(".stage-counts .badge").all():
        assert stage.evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap"
    assert page.locator(".outcomes li").all_inner_texts() == outcomes
    broken = page.locator('[data-outcome="broken"] .badge')
    assert broken.evaluate("e => getComputedStyle(e).color") == COLOURS["badge-red"]
    assert page.locator("#live button.danger").count() == 1  # Cancel while running
    assert fits(page)
    page.screenshot(path=str(SHOTS / f"run-running-{language}-{width}.png"), full_page=True)


ESTIMATING = {"en": "estimating…", "zh-hans": "正在估算…"}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_run_with_nothing_done_yet_shows_an_estimate_or_says_it_is_estimating(
    page, live_server, language
):
    page.set_viewport_size({"width": WIDTHS["phone"], "height": 900})
    switch_language(page, language)
    run = ImportRunFactory(state="running", total_items=2)
    ImportRunItemFactory(run=run, current_stage="probe")
    ImportRunItemFactory(run=run, current_stage="probe")
    page.goto(f"{live_server.url}/batch-import/runs/{run.run_id}")
    eta = page.locator("[data-progress] [data-eta]")
    assert eta.inner_text() == ESTIMATING[language]
    assert eta.evaluate("e => e.getBoundingClientRect().width") > 0  # shown, not blank
    assert fits(page)


ERROR_STAGE = {"en": "(validate)", "zh-hans": "(验证)"}
ITEM_LABELS = {
    "en": ["Stage", "Confirmation", "Access", "Account state", "Resolution"],
    "zh-hans": ["阶段", "确认状态", "可用性", "账号状态", "账号处理"],
}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_item_page_labels_its_badges_and_fits(page, live_server, rich_run, language, width):
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    switch_language(page, language)
    broken = rich_run.items.get(access_status="broken")
    healthy = rich_run.items.filter(access_status="active").first()
    page.goto(f"{live_server.url}/batch-import/runs/{rich_run.run_id}/items/{broken.item_id}")
    labels = page.locator(".badges .label").all_inner_texts()
    assert labels == ITEM_LABELS[language], labels
    for label in page.locator(".badges .label").all():  # a label never breaks inside
        assert label.evaluate("e => e.getClientRects().length") == 1
    for badge in page.locator(".badges .badge").all():
        css = badge.evaluate(
            "e => ({cls: e.className, color: getComputedStyle(e).color,"
            " lines: e.getClientRects().length})"
        )
        colour = next(c for c in css["cls"].split() if c in COLOURS)
        assert css["color"] == COLOURS[colour] and css["lines"] == 1, css
    assert page.locator("form.actions button").count() == 1  # Retry: the item did not end active
    error = page.locator("p.error").inner_text()
    assert ERROR_STAGE[language] in error and "[validate]" not in error, error
    assert fits(page)
    page.screenshot(path=str(SHOTS / f"item-{language}-{width}.png"), full_page=True)
    page.goto(f"{live_server.url}/batch-import/runs/{rich_run.run_id}/items/{healthy.item_id}")
    assert page.locator("form.actions button").count() == 0  # nothing to retry on a healthy one
    assert fits(page)
