"""The rollback through each door: API, page, command, admin action."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from batch_import.models import RunRollback
from tests.api.conftest import api, token, user  # noqa: F401
from tests.integration.pipeline import drive, entry, register, start
from tests.pages.conftest import staff  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def finished_run(host_simulator, upstream_factory):
    host = register(host_simulator)
    return drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))


def test_api_shows_the_plan_then_rolls_back(api, finished_run, host_simulator):  # noqa: F811
    url = f"/api/batch-import/runs/{finished_run.run_id}/rollback"
    before = api.get(url).json()
    assert before["status"] == "not_started"
    assert [p["resource_type"] for p in before["plan"]][:3] == [
        "subscription",
        "api_key",
        "account",
    ]
    done = api.post(url)
    assert done.status_code == 200 and done.json()["status"] == "rolled_back"
    assert done.json()["plan"] == [] and not host_simulator.state.accounts
    assert api.post(url).json()["status"] == "rolled_back"  # again: harmless


def test_api_refuses_a_running_run(api, host_simulator, upstream_factory):  # noqa: F811
    run = start(register(host_simulator), [entry(upstream_factory(models=("glm-4.5",)))])
    response = api.post(f"/api/batch-import/runs/{run.run_id}/rollback")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert api.post("/api/batch-import/runs/nope/rollback").status_code == 404


def test_page_confirms_with_the_list_then_rolls_back(client, staff, finished_run):  # noqa: F811
    url = f"/batch-import/runs/{finished_run.run_id}/rollback"
    assert url.encode() in client.get(f"/batch-import/runs/{finished_run.run_id}").content
    page = client.get(url).content.decode()
    item = finished_run.items.get()
    assert f"account {item.account_id}" in page and "Yes, roll back this run" in page
    assert client.post(url).status_code == 302
    assert RunRollback.objects.get(pk=finished_run.run_id).status == "rolled_back"
    assert "Yes, roll back this run" not in client.get(url).content.decode()


def test_command_plans_rolls_back_and_reports_partial(finished_run, host_simulator):
    out = StringIO()
    call_command("rollback_run", finished_run.run_id, "--plan", stdout=out)
    assert out.getvalue().splitlines()[0].startswith("delete subscription")
    assert not RunRollback.objects.exists()
    host_simulator.fail_next("DELETE", "/api/v1/admin/groups/", count=1, status=500)
    with pytest.raises(CommandError, match=r"rollback partial .* still on the host: group"):
        call_command("rollback_run", finished_run.run_id, stdout=StringIO())
    out = StringIO()
    call_command("rollback_run", finished_run.run_id, stdout=out)
    assert out.getvalue().strip().endswith(": rolled back")  # the status as people read it
    with pytest.raises(CommandError, match="run_id"):
        call_command("rollback_run", "nope")


def test_admin_action_asks_then_rolls_back(client, staff, finished_run):  # noqa: F811
    body = {"action": "roll_back", "_selected_action": [finished_run.run_id]}
    confirm = client.post("/admin/batch_import/importrun/", body)
    assert confirm.status_code == 200 and b"Yes, roll back" in confirm.content
    assert not RunRollback.objects.exists()
    done = client.post("/admin/batch_import/importrun/", {**body, "confirm": "yes"}, follow=True)
    assert b": rolled back (" in done.content  # the status as people read it
    assert RunRollback.objects.get(pk=finished_run.run_id).status == "rolled_back"
