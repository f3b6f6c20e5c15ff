"""The host resource service (``hosts.resources``) against the loopback host simulator:
records with typed relations, host-scoped lookups, and managed users made without a lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import transaction

from hosts.models import ManagedResource
from hosts.resources import HostResources, Owner, delete_resource, user_key
from hosts.sub2api import HostError, Sub2ApiClient
from relay_project.crypto import Secret
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db(transaction=True)
Resource = ManagedResource.ResourceType
OWNER = Owner(run_id="run_1", item_id="item_1", provider_id="acme")


@pytest.fixture
def host(host_simulator):
    return HostFactory(base_url=host_simulator.url, admin_credential=host_simulator.admin_key)


@pytest.fixture
def client(host_simulator) -> Iterator[Sub2ApiClient]:
    client = Sub2ApiClient(
        host_simulator.url, admin_api_key=host_simulator.admin_key, timeout=5, retries=0
    )
    yield client
    client.close()


def test_each_created_resource_is_recorded_and_announced(host, client):
    announced: list[ManagedResource] = []
    resources = HostResources(host, client, OWNER, on_recorded=announced.append)

    group_id = resources.ensure_group()
    again = resources.ensure_group()

    assert again == group_id
    record = ManagedResource.objects.get(host=host, resource_type=Resource.GROUP)
    assert (record.host_resource_id, record.logical_key) == (str(group_id), "rm-acme")
    assert (record.created_by_run_id, record.created_by_item_id) == ("run_1", "item_1")
    assert [r.pk for r in announced] == [record.pk]  # the second call found it: no new record


def test_user_key_and_subscription_carry_their_group_and_user_as_columns(host, client):
    resources = HostResources(host, client, OWNER)
    group_id = resources.ensure_group()
    user_id, password = resources.managed_user("ops@example.com")
    resources.assign_subscription(
        email="ops@example.com", user_id=user_id, group_id=group_id, validity_days=30
    )
    resources.ensure_user_key("ops@example.com", password, group_id)

    user = ManagedResource.objects.get(host=host, resource_type=Resource.USER)
    for resource_type in (Resource.SUBSCRIPTION, Resource.API_KEY):
        record = ManagedResource.objects.get(host=host, resource_type=resource_type)
        assert record.host_group_id == group_id
        assert record.user_record == user
    assert user.host_resource_id == str(user_id)
    assert user_key(host, "ops@example.com", group_id) is not None


def test_user_key_lookup_never_crosses_hosts(host, client, host_simulator_factory):
    """Same group id and email on two hosts: each host's validation gets its own key."""
    resources = HostResources(host, client, OWNER)
    group_id = resources.ensure_group()
    user_id, password = resources.managed_user("ops@example.com")
    resources.assign_subscription(
        email="ops@example.com", user_id=user_id, group_id=group_id, validity_days=30
    )
    resources.ensure_user_key("ops@example.com", password, group_id)
    other = HostFactory(name="other")

    assert user_key(other, "ops@example.com", group_id) is None
    assert user_key(host, "ops@example.com", group_id + 1) is None


def test_managed_user_reuses_the_stored_password_and_refuses_a_stranger(
    host, client, host_simulator
):
    resources = HostResources(host, client, OWNER)
    first = resources.managed_user("ops@example.com")
    second = resources.managed_user("ops@example.com")
    assert first[0] == second[0] and first[1].reveal() == second[1].reveal()
    assert ManagedResource.objects.filter(host=host, resource_type=Resource.USER).count() == 1

    client.users.create(email="stranger@example.com", password=Secret("not-ours-123"))
    with pytest.raises(HostError) as refused:
        resources.managed_user("stranger@example.com")
    assert refused.value.reason == "USER_NOT_MANAGED"


def test_managed_user_race_makes_one_user_and_shares_its_password(host, host_simulator):
    """Eight workers ask for the same new user at once: one host user, one record, and every
    worker holds the password that logs in (no database lock held across the HTTP calls)."""
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        from django.db import connection

        client = Sub2ApiClient(
            host_simulator.url, admin_api_key=host_simulator.admin_key, timeout=5, retries=0
        )
        try:
            barrier.wait()
            user_id, password = HostResources(host, client, OWNER).managed_user("ops@example.com")
            results.append((user_id, password.reveal()))
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(results)) == 1
    users = [u for u in host_simulator.state.users.values() if u.email == "ops@example.com"]
    assert len(users) == 1
    record = ManagedResource.objects.get(host=host, resource_type=Resource.USER)
    assert record.host_resource_id == str(users[0].id)
    with Sub2ApiClient(host_simulator.url, admin_api_key=host_simulator.admin_key) as client:
        assert client.login("ops@example.com", results[0][1]).user.id == users[0].id


def test_a_lost_user_create_is_finished_by_the_next_worker(host, client, host_simulator):
    """The host made the user but the answer never came back: the pending record already holds
    the password, so the next worker finds the user and settles the record's id."""
    resources = HostResources(host, client, OWNER)
    claimed = resources._claim_user("ops@example.com")
    user = client.users.create(email="ops@example.com", password=claimed.secret)

    user_id, password = resources.managed_user("ops@example.com")

    assert user_id == user.id and password.reveal() == claimed.secret.reveal()
    claimed.refresh_from_db()
    assert claimed.host_resource_id == str(user.id)


def test_delete_resource_deletes_a_user_key_as_its_user(host, client, host_simulator):
    resources = HostResources(host, client, OWNER)
    group_id = resources.ensure_group()
    user_id, password = resources.managed_user("ops@example.com")
    resources.assign_subscription(
        email="ops@example.com", user_id=user_id, group_id=group_id, validity_days=30
    )
    resources.ensure_user_key("ops@example.com", password, group_id)
    key = ManagedResource.objects.get(host=host, resource_type=Resource.API_KEY)

    delete_resource(client, key)

    assert int(key.host_resource_id) not in host_simulator.state.keys


def test_a_claim_after_the_user_was_settled_shares_its_record(host, client):
    """A racer that looked before the user existed and claims after it was settled gets the
    live record (and its password), not a second one."""
    resources = HostResources(host, client, OWNER)
    user_id, password = resources.managed_user("ops@example.com")

    late = resources._claim_user("ops@example.com")

    assert late.host_resource_id == str(user_id)
    assert late.secret.reveal() == password.reveal()
    assert ManagedResource.objects.filter(host=host, resource_type=Resource.USER).count() == 1


def test_recording_a_new_resource_is_one_insert_and_a_known_one_is_brought_up_to_date(
    host, client, django_assert_num_queries
):
    resources = HostResources(host, client, OWNER)
    with django_assert_num_queries(1):
        first = resources.record(Resource.ACCOUNT, 7, "rm-acme-1", adopted=True)
    # The same host resource again (a create replayed after a lost answer), alone and inside
    # the caller's transaction, which stays usable.
    again = resources.record(Resource.ACCOUNT, 7, "rm-acme-1", families=["kimi"])
    with transaction.atomic():
        resources.record(Resource.ACCOUNT, 7, "rm-acme-1", families=["glm"])
        ManagedResource.objects.filter(pk=first.pk).update(deprecated=True)

    stored = ManagedResource.objects.get(host=host, resource_type=Resource.ACCOUNT)
    assert again.pk == first.pk == stored.pk
    assert (stored.families, stored.adopted, stored.deprecated) == (["glm"], True, True)
