from __future__ import annotations

import re

import pytest
from django.urls import reverse

from batch_import.models import ImportRun
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db


def test_pages_need_a_staff_login(client, rich_run):
    item = rich_run.items.first()
    for url in (
        "/batch-import/runs",
        f"/batch-import/runs/{rich_run.run_id}",
        f"/batch-import/runs/{rich_run.run_id}/items/{item.item_id}",
        "/batch-import/runs/new",
    ):
        answer = client.get(url)
        assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")


def test_run_list_shows_state_badges_counters_newest_first(client, staff, rich_run):
    older = ImportRunFactory(state="running")
    older.started_at = rich_run.started_at.replace(year=2020)
    ImportRun.objects.filter(pk=older.pk).update(started_at=older.started_at)
    html = client.get("/batch-import/runs").content.decode()
    assert (
        'class="badge badge-yellow" data-kind="run_state" '
        'data-value="completed_with_warnings">warning<' in html
    )
    assert 'data-value="running">running<' in html
    assert html.index(rich_run.run_id) < html.index(older.run_id)


def test_run_list_filters_by_state_and_search(client, staff, rich_run):
    other = ImportRunFactory(state="failed")
    html = client.get("/batch-import/runs?state=failed").content.decode()
    assert other.run_id in html and rich_run.run_id not in html
    provider = rich_run.items.first().provider_id
    html = client.get(f"/batch-import/runs?q={provider}").content.decode()
    assert rich_run.run_id in html and other.run_id not in html


def test_run_page_shows_every_badge_kind_and_warnings_problems_first(client, staff, rich_run):
    html = client.get(f"/batch-import/runs/{rich_run.run_id}").content.decode()
    for expected in (
        ">advisory<",
        ">confirmed<",
        ">failed<",
        ">active<",
        ">broken<",
        ">reused<",
        ">enabled<",
        ">disabled<",
        ">deprecated<",
        ">created<",
        ">reactivated<",
        ">replaced<",
        "badge-cyan",
    ):
        assert expected in html, expected
    assert "1 item is broken" in html
    broken = rich_run.items.get(access_status="broken")
    assert html.index(broken.provider_id) < html.index(
        rich_run.items.get(account_resolution="reused").provider_id
    )


def test_run_page_filters_items(client, staff, rich_run):
    html = client.get(f"/batch-import/runs/{rich_run.run_id}?access_status=broken").content.decode()
    assert rich_run.items.get(access_status="broken").provider_id in html
    assert rich_run.items.get(account_resolution="reused").provider_id not in html


def test_running_run_refreshes_itself_and_a_finished_one_does_not(client, staff, rich_run):
    assert (
        "data-refresh" not in client.get(f"/batch-import/runs/{rich_run.run_id}").content.decode()
    )
    running = ImportRunItemFactory(current_stage="confirm").run
    html = client.get(f"/batch-import/runs/{running.run_id}").content.decode()
    assert 'data-refresh="3000"' in html and "refresh.js" in html
    fragment = client.get(f"/batch-import/runs/{running.run_id}?fragment=1").content.decode()
    assert "<html" not in fragment and running.run_id in fragment


def test_item_page_shows_models_capabilities_reuse_retry_and_events(client, staff, rich_run):
    item = rich_run.items.get(account_resolution="reactivated")
    html = client.get(f"/batch-import/runs/{rich_run.run_id}/items/{item.item_id}").content.decode()
    for expected in (
        "Kimi-K2.6",
        "kimi-k2.6",
        "POST /v1/responses",
        "responses",
        "delay_ms",
        "initial 503, retry scheduled",
        "treated as advisory",
        item.api_key_fingerprint,
    ):
        assert expected in html, expected
    # A healthy item offers no retry; one that did not end active does.
    assert item.access_status == "active" and "Retry item" not in html
    broken = rich_run.items.get(access_status="broken")
    url = f"/batch-import/runs/{rich_run.run_id}/items/{broken.item_id}"
    assert "Retry item" in client.get(url).content.decode()


def test_cancel_and_retry_buttons_post_to_the_services(client, staff):
    item = ImportRunItemFactory(current_stage="probe")
    answer = client.post(reverse("batch_import:run_cancel", args=[item.run_id]))
    assert answer.status_code == 302
    item.refresh_from_db()
    assert item.run.state == "cancelled" and item.current_stage == "done"
    answer = client.post(reverse("batch_import:item_retry", args=[item.run_id, item.item_id]))
    item.refresh_from_db()
    assert item.attempt == 2 and item.current_stage == "probe"
    again = client.post(
        reverse("batch_import:run_cancel", args=[ImportRunFactory(state="completed").run_id]),
        follow=True,
    )
    assert "already finished; there is nothing to cancel" in again.content.decode()


def test_unknown_run_or_item_is_404(client, staff, rich_run):
    assert client.get("/batch-import/runs/run_nope").status_code == 404
    assert client.get(f"/batch-import/runs/{rich_run.run_id}/items/item_nope").status_code == 404


def test_retry_selected_sends_back_only_items_that_did_not_end_active(client, staff, rich_run):
    broken = rich_run.items.get(access_status="broken")
    active = rich_run.items.filter(access_status="active").first()
    html = client.get(f"/batch-import/runs/{rich_run.run_id}").content.decode()
    assert f'value="{broken.item_id}" form="retry-items"' in html
    assert f'value="{active.item_id}" form="retry-items"' not in html
    answer = client.post(
        f"/batch-import/runs/{rich_run.run_id}/retry",
        {"items": [broken.item_id, active.item_id]},
        follow=True,
    )
    assert "1 item sent back." in answer.content.decode()
    broken.refresh_from_db()
    active.refresh_from_db()
    assert broken.attempt == 2 and broken.current_stage != "done"
    assert active.attempt == 1 and active.current_stage == "done"
    nothing = client.post(f"/batch-import/runs/{rich_run.run_id}/retry", {}, follow=True)
    assert "Select items that did not end active" in nothing.content.decode()


def test_a_failed_item_is_fixed_in_place_with_a_new_key(client, staff, rich_run, settings):
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = False
    broken = rich_run.items.get(access_status="broken")
    page = client.get(f"/batch-import/runs/{rich_run.run_id}/items/{broken.item_id}")
    assert "Fix this entry" in page.content.decode()
    url = f"/batch-import/runs/{rich_run.run_id}/items/{broken.item_id}/replace"
    refused = client.post(url, {"base_url": "http://x.example", "api_key": "sk-new"}, follow=True)
    assert "URL: must use https" in refused.content.decode()
    broken.refresh_from_db()
    assert broken.attempt == 1

    client.post(url, {"base_url": "https://fixed.example/v1", "api_key": "sk-fixed-key-0001"})

    broken.refresh_from_db()
    assert (broken.current_stage, broken.attempt) == ("probe", 2)
    assert broken.base_url == "https://fixed.example/v1"
    assert broken.provider_id.startswith("fixed-example")
    assert broken.api_key.reveal() == "sk-fixed-key-0001"
    event = broken.events.get(event_type="retried")
    assert "entry replaced" in event.message and "sk-fixed" not in event.message
    active = rich_run.items.filter(access_status="active").first()
    again = f"/batch-import/runs/{rich_run.run_id}/items/{active.item_id}/replace"
    answer = client.post(again, {"base_url": "https://a.example", "api_key": "sk-x"}, follow=True)
    assert "Only a finished item that did not end active" in answer.content.decode()


def test_re_run_the_failed_lines_prefills_the_form_without_keys(client, staff, rich_run):
    run_page = client.get(f"/batch-import/runs/{rich_run.run_id}").content.decode()
    assert f"?from={rich_run.run_id}" in run_page
    html = client.get(f"/batch-import/runs/new?from={rich_run.run_id}").content.decode()
    broken = rich_run.items.get(access_status="broken")
    assert f"{broken.base_url},&lt;paste the key again&gt;" in html
    for item in rich_run.items.all():
        assert item.api_key.reveal() not in html  # keys never go back into a page
    active = rich_run.items.filter(access_status="active").first()
    assert f"{active.base_url}," not in html


def test_run_page_pages_along_the_problems_first_order_both_ways(client, staff):
    """Keyset pages: "next" and "previous" links carry cursors, never an offset, and walk the
    same order as the API, forwards and back; a cursor that is not one shows the first page."""
    from batch_import.selectors import items_problems_first
    from batch_import.views import PAGE_SIZE

    run = ImportRunFactory()
    stages = ["done", "probe", "done", "confirm"]
    accesses = ["active", "unknown", "broken", "unknown"]
    for n in range(PAGE_SIZE * 2 + 3):
        ImportRunItemFactory(run=run, current_stage=stages[n % 4], access_status=accesses[n % 4])
    order = [item.provider_id for item in items_problems_first(run)]
    url = f"/batch-import/runs/{run.run_id}"

    def shown(query):
        page = client.get(url, query)
        body = page.content.decode()
        rows = sorted(
            (pid for pid in order if f">{pid}</a>" in body), key=lambda p: body.index(f">{p}</a>")
        )
        links = dict(re.findall(r'href="\?[^"]*?(cursor|before)=([\w-]+)"', body))
        return rows, links

    first, links = shown({})
    assert first == order[:PAGE_SIZE] and set(links) == {"cursor"}
    second, links = shown({"cursor": links["cursor"]})
    assert second == order[PAGE_SIZE : PAGE_SIZE * 2] and set(links) == {"cursor", "before"}
    third, links = shown({"cursor": links["cursor"]})
    assert third == order[PAGE_SIZE * 2 :] and set(links) == {"before"}
    back, links = shown({"before": links["before"]})
    assert back == second
    assert shown({"before": links["before"]})[0] == first
    assert shown({"cursor": "not-a-cursor"})[0] == first
