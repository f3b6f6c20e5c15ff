"""Who gets a subscription (``hosts.subscribers``): the policy as a table, each refusal against
the loopback host simulator (or, where the simulator cannot stage the race, a faked host)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hosts.models import ManagedResource
from hosts.resources import HostResources, Owner
from hosts.sub2api import HostError, Sub2ApiClient
from hosts.sub2api.types import Subscription, User
from hosts.subscribers import (
    Refusal,
    UserOutcome,
    grant_access,
    plan_access,
    subscription_refusal,
    user_outcome,
    validation_user_email,
    with_validation_user,
)
from relay_project.crypto import Secret
from tests.factories import HostFactory
from tests.hosts.test_resources import FakeHost

Resource = ManagedResource.ResourceType
OWNER = Owner(run_id="run_1", item_id="item_1", provider_id="acme")


def user(status: str = "active") -> User:
    return User(
        id=5,
        email="a@example.com",
        username="",
        role="user",
        status=status,
        balance=0.0,
        concurrency=5,
        allowed_groups=(),
    )


@pytest.mark.parametrize(
    ("host_user", "managed", "expected"),
    [
        (None, False, (UserOutcome.CREATED, "")),
        (user(), True, (UserOutcome.MANAGED, "")),
        (user(), False, (UserOutcome.EXISTING, "")),
        (user("disabled"), False, (UserOutcome.REFUSED, Refusal.USER_DISABLED)),
        (user("disabled"), True, (UserOutcome.REFUSED, Refusal.USER_DISABLED)),
    ],
)
def test_user_outcome(host_user, managed, expected):
    assert user_outcome(host_user, managed=managed) == expected


@pytest.mark.parametrize(
    ("status", "refusal"),
    [(None, ""), ("active", ""), ("expired", ""), ("suspended", Refusal.SUBSCRIPTION_SUSPENDED)],
)
def test_subscription_refusal_only_for_a_suspended_one(status, refusal):
    subscription = None
    if status is not None:
        subscription = Subscription(
            id=1, user_id=5, group_id=3, status=status, starts_at=None, expires_at=None
        )
    assert subscription_refusal(subscription) == refusal


# --- against the simulator ------------------------------------------------------------------


@pytest.fixture
def host(host_simulator, db):
    return HostFactory(base_url=host_simulator.url, admin_credential=host_simulator.admin_key)


@pytest.fixture
def resources(host, host_simulator) -> Iterator[HostResources]:
    client = Sub2ApiClient(
        host_simulator.url, admin_api_key=host_simulator.admin_key, timeout=5, retries=0
    )
    yield HostResources(host, client, OWNER)
    client.close()


def host_user(sim, email: str, *, status: str = "active") -> int:
    with Sub2ApiClient(sim.url, admin_api_key=sim.admin_key) as client:
        made = client.users.create(email=email, password=Secret("theirs-123"))
        if status != "active":
            client.users.update(made.id, status=status)
    return made.id


def test_an_existing_user_gets_the_subscription_and_no_key(resources, host_simulator):
    user_id = host_user(host_simulator, "alice@example.com")
    group_id = resources.ensure_group()

    access, assignment = grant_access(
        resources, "alice@example.com", group_id=group_id, validity_days=30
    )

    assert (access.outcome, access.user_id, access.has_key) == ("existing", user_id, False)
    assert (access.subscription, access.subscription_ours) == ("assigned", True)
    assert assignment.created
    (subscription,) = host_simulator.state.subscriptions.values()
    assert (subscription.user_id, subscription.group_id) == (user_id, group_id)
    assert not [k for k in host_simulator.state.keys.values() if k.user_id == user_id]
    record = ManagedResource.objects.get(resource_type=Resource.SUBSCRIPTION)
    assert record.user_record is None  # the user is not ours: nothing links a rollback to it
    assert not ManagedResource.objects.filter(resource_type=Resource.USER).exists()


def test_a_disabled_user_is_refused_and_nothing_changes(resources, host_simulator):
    user_id = host_user(host_simulator, "off@example.com", status="disabled")
    group_id = resources.ensure_group()

    access, assignment = grant_access(
        resources, "off@example.com", group_id=group_id, validity_days=30
    )

    assert assignment is None
    assert (access.outcome, access.refusal, access.user_id) == (
        "refused",
        Refusal.USER_DISABLED,
        user_id,
    )
    assert access.detail == "status=disabled"
    assert host_simulator.state.subscriptions == {}


def test_a_suspended_subscription_is_refused_and_left_as_it_is(resources, host_simulator):
    user_id = host_user(host_simulator, "held@example.com")
    group_id = resources.ensure_group()
    with Sub2ApiClient(host_simulator.url, admin_api_key=host_simulator.admin_key) as admin:
        admin.subscriptions.assign(user_id=user_id, group_id=group_id, validity_days=1)
    with host_simulator.state.lock:
        (subscription,) = host_simulator.state.subscriptions.values()
        subscription.status = "suspended"
        expires = subscription.expires_at

    access, _ = grant_access(resources, "held@example.com", group_id=group_id, validity_days=30)

    assert (access.outcome, access.refusal) == ("refused", Refusal.SUBSCRIPTION_SUSPENDED)
    assert (subscription.status, subscription.expires_at) == ("suspended", expires)


def test_the_first_listed_managed_user_validates(resources, host_simulator):
    host_user(host_simulator, "alice@example.com")
    group_id = resources.ensure_group()
    granted = [
        grant_access(resources, email, group_id=group_id, validity_days=30)[0]
        for email in ("alice@example.com", "ops@example.com")
    ]

    marked, assignment = with_validation_user(
        resources, granted, group_id=group_id, validity_days=30
    )

    assert assignment is None
    assert [(a.email, a.outcome, a.validation) for a in marked] == [
        ("alice@example.com", "existing", False),
        ("ops@example.com", "created", True),
    ]


def test_without_a_managed_listed_user_the_validation_user_is_made(resources, host_simulator):
    host_user(host_simulator, "alice@example.com")
    group_id = resources.ensure_group()
    granted = [grant_access(resources, "alice@example.com", group_id=group_id, validity_days=30)[0]]

    marked, assignment = with_validation_user(
        resources, granted, group_id=group_id, validity_days=30
    )

    validator = marked[-1]
    assert (validator.email, validator.listed, validator.validation, validator.has_key) == (
        validation_user_email(),
        False,
        True,
        True,
    )
    assert assignment is not None and assignment.created
    assert resources.holds_password(validation_user_email())


@pytest.mark.parametrize("status", ["active", "disabled"])
def test_a_validation_user_relay_manager_cannot_use_fails_the_item(
    resources, host_simulator, status
):
    host_user(host_simulator, validation_user_email(), status=status)
    group_id = resources.ensure_group()

    with pytest.raises(HostError) as refused:
        with_validation_user(resources, [], group_id=group_id, validity_days=30)

    assert (refused.value.reason, refused.value.transient) == ("VALIDATION_USER_UNUSABLE", False)
    assert validation_user_email() in refused.value.message
    assert host_simulator.state.subscriptions == {}


def test_the_preview_plans_what_grant_access_does_with_get_calls_only(resources, host_simulator):
    host_user(host_simulator, "alice@example.com")
    host_user(host_simulator, "off@example.com", status="disabled")
    group_id = resources.ensure_group()
    before = len(host_simulator.state.subscriptions), len(host_simulator.state.users)

    plan = plan_access(resources, ["alice@example.com", "off@example.com"], group_id=group_id)

    assert (len(host_simulator.state.subscriptions), len(host_simulator.state.users)) == before
    assert [(p["email"], p["user"], p["validation"]) for p in plan] == [
        ("alice@example.com", "existing", False),
        ("off@example.com", "refused", False),
        (validation_user_email(), "create", True),
    ]
    assert plan[1]["conflict"] == "refused: user_disabled"


# --- a faked host: the user vanishes between the lookup and the assignment --------------------


def page(*items) -> dict:
    return {"items": list(items), "total": len(items), "page": 1, "pages": 1}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "reason", "transient"),
    [(404, "USER_NOT_FOUND", False), (503, "", True), (404, "GROUP_NOT_FOUND", False)],
)
def test_a_user_deleted_mid_way_is_refused_other_host_errors_fail_the_step(
    status, reason, transient
):
    dto = {"id": 5, "email": "gone@example.com", "role": "user", "status": "active"}
    fake = FakeHost(
        {
            ("GET", "/api/v1/admin/users"): page(dto),
            ("GET", "/api/v1/admin/subscriptions"): page(),
            ("POST", "/api/v1/admin/subscriptions/assign"): httpx.Response(
                status, json={"code": status, "message": "no", "reason": reason}
            ),
        }
    )
    client = fake.client()
    resources = HostResources(HostFactory(), client, OWNER)
    try:
        if reason == "USER_NOT_FOUND":
            access, _ = grant_access(resources, "gone@example.com", group_id=3, validity_days=30)
            assert (access.outcome, access.refusal) == ("refused", Refusal.USER_GONE)
            assert "no" in access.detail
        else:
            with pytest.raises(HostError) as raised:
                grant_access(resources, "gone@example.com", group_id=3, validity_days=30)
            assert raised.value.transient is transient
    finally:
        client.close()


def test_expires_at_is_kept_as_iso_text(resources, host_simulator):
    host_user(host_simulator, "alice@example.com")
    group_id = resources.ensure_group()
    access, _ = grant_access(resources, "alice@example.com", group_id=group_id, validity_days=30)
    expires = datetime.fromisoformat(access.expires_at)
    assert expires - datetime.now(UTC) > timedelta(days=29)
