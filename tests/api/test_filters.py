"""Query filters of seed 004 §4: one test per filter, plus refusal of bad values."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRun, ImportRunItem
from tests.factories import HostFactory, ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db

RUNS = "/api/batch-import/runs"


def run_ids(api, query):
    response = api.get(RUNS, query)
    assert response.status_code == 200, response.json()
    return {r["run_id"] for r in response.json()["runs"]}


def item_ids(api, run, query):
    response = api.get(f"{RUNS}/{run.run_id}/items", query)
    assert response.status_code == 200, response.json()
    return {i["item_id"] for i in response.json()["items"]}


def test_runs_filter_state(api):
    failed = ImportRunFactory(state=ImportRun.State.FAILED)
    ImportRunFactory(state=ImportRun.State.RUNNING)
    assert run_ids(api, {"state": "failed"}) == {failed.run_id}


def test_runs_filter_state_has_no_second_warning_enum(api):
    response = api.get(RUNS, {"state": "warning"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"state"}


def test_runs_filter_access_mode(api):
    self_service = ImportRunFactory(access_mode=ImportRun.AccessMode.SELF_SERVICE)
    ImportRunFactory(access_mode=ImportRun.AccessMode.SUBSCRIPTION)
    assert run_ids(api, {"access_mode": "self_service"}) == {self_service.run_id}


@pytest.mark.parametrize("needle", ["run_id", "provider_id", "base_url"])
def test_runs_filter_q_searches_run_id_provider_id_and_base_url(api, needle):
    item = ImportRunItemFactory(base_url="https://kimi.a7m.com.cn/v1", provider_id="kimi-a7m-7d")
    ImportRunItemFactory()
    value = {"run_id": item.run_id, "provider_id": "kimi-a7m", "base_url": "a7m.com.cn"}[needle]
    assert run_ids(api, {"q": value}) == {item.run_id}


@pytest.fixture
def mixed_run():
    run = ImportRunFactory()
    Stage, Access = ImportRunItem.Stage, ImportRunItem.AccessStatus
    items = {
        "done_active": ImportRunItemFactory(
            run=run,
            current_stage=Stage.DONE,
            access_status=Access.ACTIVE,
            confirmation_status="confirmed",
            matched_account_state="active",
            account_resolution="reused",
            provider_id="kimi-a7m-7d7ac291",
            base_url="https://kimi.a7m.com.cn/v1",
        ),
        "done_broken": ImportRunItemFactory(
            run=run,
            current_stage=Stage.DONE,
            access_status=Access.BROKEN,
            confirmation_status="failed",
            has_warning=True,
            matched_account_state="deprecated",
            account_resolution="reactivated",
        ),
        "confirming": ImportRunItemFactory(
            run=run, current_stage=Stage.CONFIRM, confirmation_status="advisory"
        ),
    }
    return run, items


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"current_stage": "done"}, {"done_active", "done_broken"}),
        ({"current_stage": "confirm"}, {"confirming"}),
        ({"confirmation_status": "advisory"}, {"confirming"}),
        ({"confirmation_status": "confirmed"}, {"done_active"}),
        ({"access_status": "broken"}, {"done_broken"}),
        ({"access_status": "unknown"}, {"confirming"}),
        ({"has_warning": "true"}, {"done_broken"}),
        ({"has_warning": "false"}, {"done_active", "confirming"}),
        ({"provider_id": "kimi-a7m-7d7ac291"}, {"done_active"}),
        ({"matched_account_state": "deprecated"}, {"done_broken"}),
        ({"account_resolution": "reused"}, {"done_active"}),
        ({"q": "a7m.com.cn"}, {"done_active"}),
        ({"q": "kimi-a7m"}, {"done_active"}),
        ({"current_stage": "done", "access_status": "active"}, {"done_active"}),
    ],
)
def test_items_filters(api, mixed_run, query, expected):
    run, items = mixed_run
    assert item_ids(api, run, query) == {items[name].item_id for name in expected}


def test_items_filter_q_searches_item_id(api, mixed_run):
    run, items = mixed_run
    target = items["confirming"].item_id
    assert item_ids(api, run, {"q": target}) == {target}


@pytest.mark.parametrize(
    "query",
    [
        {"current_stage": "finished"},
        {"confirmation_status": "confirmed_active"},
        {"access_status": "warning"},
        {"has_warning": "maybe"},
        {"matched_account_state": "gone"},
        {"account_resolution": "nope"},
    ],
)
def test_items_filters_refuse_unknown_values(api, mixed_run, query):
    run, _ = mixed_run
    response = api.get(f"{RUNS}/{run.run_id}/items", query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and set(error["fields"]) == set(query)


def test_providers_of_an_unknown_host_are_404_and_a_malformed_id_400(api):
    host = HostFactory()
    assert api.get(f"/api/providers?host_id={host.pk}").status_code == 200
    unknown = api.get(f"/api/providers?host_id={host.pk + 1000}")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert api.get("/api/providers?host_id=abc").status_code == 400
