"""Pages an operator can live in (issue #20), in headless Chromium: both languages, desktop
and phone widths; texts, badge styles and layout width asserted, screenshots kept."""

from __future__ import annotations

import pytest

from tests.factories import ImportRunFactory, ImportRunItemFactory
from tests.fixtures_browser import SHOTS, switch_language

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WIDTHS = {"desktop": 1440, "phone": 390}
TEXTS = {
    "en": {"progress": "4 of 4 done (100%)", "why": "Why items did not end active"},
    "zh-hans": {"progress": "已完成 4 / 4(100%)", "why": "未能可用的原因"},
}


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_run_pages_read_at_a_glance(page, live_server, rich_run, language, width):
    page.set_viewport_size({"width": WIDTHS[width], "height": 900})
    switch_language(page, language)
    page.goto(f"{live_server.url}/batch-import/runs/{rich_run.run_id}")
    texts = TEXTS[language]
    assert texts["progress"] in page.locator("[data-progress]").inner_text()
    assert texts["why"] in page.content()
    reason = page.locator("[data-reason]").first
    reason_class = reason.get_attribute("data-reason")
    reason_text = reason.inner_text().split(":")[-1].split(":")[-1].strip()
    warnings = page.locator(".warnings li").all_inner_texts()
    assert not any(reason_text in w for w in warnings), warnings  # said once, as the link
    for badge in page.locator(".items .badge").all():
        assert badge.evaluate("e => getComputedStyle(e).whiteSpace") == "nowrap"
        assert badge.evaluate("e => e.getClientRects().length") == 1  # one line, never wrapped
    assert fits(page), "the page is wider than the screen"
    assert page.locator("button.danger").count() == 0  # a finished run has no Cancel
    page.screenshot(path=str(SHOTS / f"run-{language}-{width}.png"), full_page=True)
    reason.click()
    page.wait_for_url(f"**failure_class={reason_class}")
    shown = page.locator(".items tbody tr").count()
    assert shown == rich_run.items.filter(failure_class=reason_class).count()

    page.goto(f"{live_server.url}/batch-import/runs")
    assert fits(page)
    page.screenshot(path=str(SHOTS / f"runs-{language}-{width}.png"), full_page=True)


def test_running_pages_refresh_themselves(page, live_server):
    run = ImportRunFactory(state="running", total_items=1)
    item = ImportRunItemFactory(run=run, current_stage="confirm")
    page.clock.install()  # the pages' refresh timers (3 s) run on a clock the test moves on
    page.goto(f"{live_server.url}/batch-import/runs")
    assert page.locator("#live[data-refresh]").count() == 1
    page.goto(f"{live_server.url}/batch-import/runs/{run.run_id}/items/{item.item_id}")
    assert page.locator("#live[data-refresh]").count() == 1
    # The item finishes: the page shows it without a reload, then stops polling.
    type(item).objects.filter(pk=item.pk).update(current_stage="done", access_status="active")
    page.clock.run_for(3000)
    page.wait_for_selector('#live [data-kind="stage"][data-value="done"]', timeout=10_000)


@pytest.mark.parametrize(
    ("path", "operation", "shot"),
    [
        ("/api/docs/", ".swagger-ui .opblock", "swagger.png"),
        ("/api/redoc/", "[data-section-id^='operation/']", "redoc.png"),
    ],
)
def test_the_api_docs_work_offline(page, live_server, path, operation, shot):
    """Swagger UI and ReDoc load nothing from another origin (sidecar assets, no fonts)."""
    outside: list[str] = []

    def only_this_server(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    page.goto(f"{live_server.url}{path}")
    page.wait_for_selector(operation, timeout=20_000)
    assert page.locator(operation).count() > 20
    assert outside == []
    page.screenshot(path=str(SHOTS / shot))
