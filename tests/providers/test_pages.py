"""The inventory and provider pages: server-rendered content and a real browser (issue #18)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from providers import services
from providers.models import Provider, ReconcileRun
from providers.reconcile import ReconcileContext, reconcile_run
from tests.fixtures_browser import SHOTS, switch_language
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.integration]


def drifted_provider(host_simulator, upstream_factory) -> Provider:
    host = register(host_simulator)
    upstream = upstream_factory(models=("glm-4.5", "kimi-k2.6"))
    run = drive(start(host, [entry(upstream), entry(upstream_factory(), key="sk-revoked")]))
    providers = services.provider_absorb_run(run_id=run.run_id)
    provider = next(p for p in providers if p.state == "active")
    for _ in range(2):
        started = services.reconcile_start(host=host, provider_pks=[provider.pk], enqueue=False)
        reconcile_run(started.run_id, ReconcileContext(worker_id="t"))
    with host_simulator.state.lock:
        (channel,) = host_simulator.state.channels.values()
        channel.model_mapping = {"openai": {"by-hand": "glm-4.5"}}
    started = services.reconcile_start(host=host, provider_pks=[provider.pk], enqueue=False)
    reconcile_run(started.run_id, ReconcileContext(worker_id="t"))
    provider.refresh_from_db()
    assert provider.state == "drifted"
    return provider


@pytest.fixture
def staff_client(client, db):
    user = get_user_model().objects.create_user(username="ops", password="pw", is_staff=True)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_inventory_lists_filters_and_runs_bulk_actions(
    staff_client, host_simulator, upstream_factory
):
    provider = drifted_provider(host_simulator, upstream_factory)
    html = staff_client.get("/providers/").content.decode()
    assert provider.provider_id in html and 'data-value="drifted"' in html
    assert 'data-value="failed"' in html  # the revoked key's provider
    only = staff_client.get("/providers/?state=drifted").content.decode()
    assert 'data-value="failed"' not in only
    assert provider.provider_id in staff_client.get("/providers/?q=kimi-k2.6").content.decode()
    answer = staff_client.post(
        "/providers/bulk", {"ids": [provider.pk], "action": "test"}, follow=True
    )
    assert "Testing started for 1 providers." in answer.content.decode()
    assert ReconcileRun.objects.filter(state="running").count() == 1
    assert 'data-refresh="3000"' in staff_client.get("/providers/").content.decode()
    assert "0 of 1 provider checked" in staff_client.get("/providers/?fragment=1").content.decode()
    refused = staff_client.post("/providers/bulk", {"action": "test"}, follow=True)
    assert "Select at least one provider" in refused.content.decode()


@pytest.mark.django_db
def test_provider_page_shows_drift_chart_accounts_and_history(
    staff_client, host_simulator, upstream_factory
):
    provider = drifted_provider(host_simulator, upstream_factory)
    with CaptureQueriesContext(connection) as queries:
        html = staff_client.get(f"/providers/{provider.pk}").content.decode()
    assert len(queries) < 40
    assert "changed on the host" in html and "by-hand" in html and "model_mapping" in html
    assert html.count("<circle") == provider.checks.count()
    assert "Accept drift" in html and "Not reconciled yet." not in html
    staff_client.post(f"/providers/{provider.pk}/accept-drift")
    provider.refresh_from_db()
    assert provider.open_drift == []
    account = provider.accounts.get()
    staff_client.post(f"/providers/{provider.pk}/accounts/{account.pk}/disable")
    account.refresh_from_db()
    assert account.status == "disabled_by_operator"
    assert "Enable account" in staff_client.get(f"/providers/{provider.pk}").content.decode()
    staff_client.post(f"/providers/{provider.pk}/disable")
    provider.refresh_from_db()
    assert provider.state == "disabled"
    assert staff_client.get("/providers/999999").status_code == 404
    assert staff_client.post(f"/providers/{provider.pk}/explode").status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("language", "width"), [("en", 1440), ("zh-hans", 390)])
def test_inventory_and_provider_pages_in_a_browser(
    page,
    live_server,
    host_simulator,
    upstream_factory,
    language,
    width,
):
    provider = drifted_provider(host_simulator, upstream_factory)
    page.set_viewport_size({"width": width, "height": 900})
    switch_language(page, language)
    page.goto(f"{live_server.url}/providers/")
    state = page.locator(f'tr[data-provider="{provider.pk}"] [data-kind="provider_state"]')
    expected = {"en": "drifted", "zh-hans": "已漂移"}[language]
    assert state.inner_text() == expected
    color = state.evaluate("e => getComputedStyle(e).color")
    assert color == "rgb(14, 116, 144)"  # --cyan
    page.screenshot(path=str(SHOTS / f"providers-{language}-{width}.png"), full_page=True)
    page.click(f"text={provider.provider_id}")
    page.wait_for_url(f"{live_server.url}/providers/{provider.pk}")  # loaded, not just committed
    assert page.locator("figure.chart circle").count() == provider.checks.count()
    assert page.locator(".drift li").count() == 1
    page.screenshot(path=str(SHOTS / f"provider-{language}-{width}.png"), full_page=True)
    test_now = {"en": "Test now", "zh-hans": "立即测试"}[language]
    with page.expect_navigation():
        page.click(f"button:has-text('{test_now}')")
    assert page.locator(".message-success").is_visible()


def test_every_provider_badge_and_choice_has_a_chinese_label():
    from django.utils import translation

    from providers.models import Provider, ProviderAccount, ReconcileResult
    from providers.projection import BADGES

    labels = [label for table in BADGES.values() for _color, label in table.values()]
    for choices in (Provider.State, Provider.AccessClosure, ProviderAccount.Status):
        labels += [label for _value, label in choices.choices]
    labels += [label for _value, label in ReconcileResult.Kind.choices]
    for label in labels:
        with translation.override("en"):
            english = str(label)
        with translation.override("zh-hans"):
            assert str(label) != english, english
