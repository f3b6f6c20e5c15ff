"""subscription mode with users the host already has (issue #14, finding 8): they get the
subscription through the admin API, the gateway evidence comes from a managed validation user
subscribed to the same group, refusals are explicit, and a rollback removes only what the run
made (the subscription, never the user)."""

from __future__ import annotations

import pytest

from batch_import.rollback import rollback_plan, rollback_run
from hosts.resources import user_key
from hosts.sub2api import client_for_host
from relay_project.crypto import Secret
from tests.api.conftest import api, token, user  # noqa: F401
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
VALIDATOR = "relay-manager-validation@relay-manager.invalid"


def host_user(host, email: str, *, status: str = "active") -> int:
    with client_for_host(host) as client:
        made = client.users.create(email=email, password=Secret("their-own-pw"), balance=0.0)
        if status != "active":
            client.users.update(made.id, status=status)
    return made.id


def sim_user(sim, email: str):
    return next((u for u in sim.state.users.values() if u.email == email), None)


def subscriptions_of(sim, user_id: int) -> list:
    return [s for s in sim.state.subscriptions.values() if s.user_id == user_id]


def test_an_existing_user_gets_the_subscription_and_the_validation_user_proves_the_gateway(
    host_simulator,
    upstream_factory,
    api,  # noqa: F811
):
    host = register(host_simulator)
    alice = host_user(host, "alice@example.com")

    run = drive(
        start(
            host,
            [entry(upstream_factory(models=("glm-4.5",)))],
            subscription_users=["alice@example.com"],
        )
    )

    item = run.items.get()
    assert (run.state, item.access_status) == ("completed", "active")
    assert item.validation_evidence["http_status"] == 200
    (subscription,) = subscriptions_of(host_simulator, alice)
    assert subscription.group_id == item.group_id
    # alice keeps her password and gets no key of ours: only the validator's key could validate.
    assert sim_user(host_simulator, "alice@example.com").password == "their-own-pw"
    assert not [k for k in host_simulator.state.keys.values() if k.user_id == alice]
    validator = sim_user(host_simulator, VALIDATOR)
    (validator_key,) = [k for k in host_simulator.state.keys.values() if k.user_id == validator.id]
    assert validator_key.group_id == item.group_id
    assert user_key(host, VALIDATOR, item.group_id).reveal() == validator_key.key
    assert [(u["email"], u["outcome"], u["validation"]) for u in item.subscription_access] == [
        ("alice@example.com", "existing", False),
        (VALIDATOR, "created", True),
    ]
    granted = item.events.filter(event_type="access_granted").values_list("message", flat=True)
    assert any("alice@example.com" in m and "found on the host" in m for m in granted)
    assert any(VALIDATOR in m and "validates the gateway" in m for m in granted)

    detail = api.get(f"/api/batch-import/runs/{run.run_id}/items/{item.item_id}").json()
    alice_row, validator_row = detail["subscription_access"]
    assert alice_row | {"expires_at": None} == {
        "email": "alice@example.com",
        "outcome": "existing",
        "outcome_label": "found on the host",
        "host_user_id": alice,
        "subscription_id": subscription.id,
        "subscription": "assigned",
        "subscription_label": "assigned",
        "subscription_ours": True,
        "expires_at": None,
        "has_key": False,
        "validation": False,
        "listed": True,
        "refusal": None,
        "reason": "",
    }
    assert (validator_row["listed"], validator_row["validation"]) == (False, True)

    rollback = rollback_run(run_id=run.run_id, requested_by="ops")

    assert rollback.status == "rolled_back"
    assert subscriptions_of(host_simulator, alice) == []  # ours: revoked
    assert sim_user(host_simulator, "alice@example.com") is not None  # hers: kept
    assert sim_user(host_simulator, VALIDATOR) is None  # made by this run: gone
    deleted = {(d["resource_type"], d["logical_key"]) for d in rollback.deleted}
    assert ("subscription", f"alice@example.com|{item.group_id}") in deleted
    assert not any(d["logical_key"] == "alice@example.com" for d in rollback.deleted)


def test_created_existing_and_refused_users_are_each_said_and_the_managed_one_validates(
    host_simulator, upstream_factory, client
):
    host = register(host_simulator)
    host_user(host, "alice@example.com")
    bob = host_user(host, "bob@example.com", status="disabled")

    run = drive(
        start(
            host,
            [entry(upstream_factory(models=("glm-4.5",)))],
            subscription_users=["alice@example.com", "ops@example.com", "bob@example.com"],
        )
    )

    item = run.items.get()
    assert (item.access_status, item.has_warning) == ("active", True)
    assert run.state == "completed_with_warnings"
    assert "subscription_user_refused" in item.advisory_messages
    assert [
        (u["email"], u["outcome"], u["validation"], u["refusal"]) for u in item.subscription_access
    ] == [
        ("alice@example.com", "existing", False, ""),
        ("ops@example.com", "created", True, ""),
        ("bob@example.com", "refused", False, "user_disabled"),
    ]
    assert sim_user(host_simulator, VALIDATOR) is None  # ops validates: no extra user
    assert subscriptions_of(host_simulator, bob) == []
    refusal = item.events.get(event_type="advisory", message__contains="bob@example.com")
    assert "refused: the user is disabled on the host [status=disabled]" in refusal.message

    from batch_import.cli import report_lines, run_document

    (cli_item,) = run_document(run)["items"]
    assert [u["outcome"] for u in cli_item["subscription_access"]] == [
        "existing",
        "created",
        "refused",
    ]
    assert any(
        "bob@example.com:refused(the user is disabled on the host (status=disabled))" in line
        for line in report_lines(run)
    )

    from django.contrib.auth import get_user_model

    client.force_login(
        get_user_model().objects.create_user(username="ops", password="pw-ops-1", is_staff=True)
    )
    html = client.get(f"/batch-import/runs/{run.run_id}/items/{item.item_id}").content.decode()
    assert "data-subscription-access" in html
    assert 'data-outcome="refused"' in html and "the user is disabled on the host" in html
    assert 'data-outcome="existing"' in html and 'data-outcome="created"' in html


def test_the_validation_user_stays_while_another_run_still_needs_it(
    host_simulator, upstream_factory
):
    host = register(host_simulator)
    host_user(host, "alice@example.com")
    users = {"subscription_users": ["alice@example.com"]}
    first = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))], **users))
    second = drive(start(host, [entry(upstream_factory(models=("kimi-k2.6",)))], **users))
    assert [u["outcome"] for u in second.items.get().subscription_access] == [
        "existing",
        "managed",
    ]

    plan = {p.resource_type: p for p in rollback_plan(first)}
    assert plan["user"].action == "keep" and second.run_id in plan["user"].reason
    rollback_run(run_id=first.run_id, requested_by="ops")
    assert sim_user(host_simulator, VALIDATOR) is not None
    assert drive(start(host, [entry(upstream_factory(models=("kimi-k2.6",)))], **users)).state == (
        "completed"
    )

    rollback_run(run_id=second.run_id, requested_by="ops")
    assert sim_user(host_simulator, VALIDATOR) is not None  # the third run still uses it


def test_a_validation_user_made_by_someone_else_fails_the_item_with_the_reason(
    host_simulator, upstream_factory
):
    host = register(host_simulator)
    host_user(host, "alice@example.com")
    host_user(host, VALIDATOR)

    run = drive(
        start(
            host,
            [entry(upstream_factory(models=("glm-4.5",)))],
            subscription_users=["alice@example.com"],
        )
    )

    item = run.items.get()
    assert (item.access_status, item.failure_class) == ("broken", "host_refused")
    assert "VALIDATION_USER_UNUSABLE" in item.last_error or VALIDATOR in item.last_error
    assert "relay-manager did not make it" in item.last_error


def test_keys_of_one_provider_share_the_users_access_and_its_validation_user(
    host_simulator, upstream_factory
):
    """The second key's item reuses what the first set up (a settled sibling): it lists the
    same users and validates with the same validation user's key."""
    host = register(host_simulator)
    host_user(host, "alice@example.com")
    upstream = upstream_factory(models=("glm-4.5",), api_key=None)

    run = drive(
        start(
            host,
            [entry(upstream, key="sk-key-1"), entry(upstream, key="sk-key-2")],
            subscription_users=["alice@example.com"],
        )
    )

    first, second = run.items.order_by("position")
    assert (first.access_status, second.access_status) == ("active", "active")
    assert second.subscription_access == first.subscription_access
    assert [u["email"] for u in second.subscription_access if u["validation"]] == [VALIDATOR]
    assert len([u for u in host_simulator.state.users.values() if u.email == VALIDATOR]) == 1
