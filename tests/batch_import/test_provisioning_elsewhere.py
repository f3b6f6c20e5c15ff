"""``provisioning_elsewhere``: which sibling a provisioning leader waits for (one that entered
provisioning earlier, under a live lease of another worker process, not waiting for a retry),
read by a statement compiled once per process (the polls of the single-flight integration
tests: ``tests/integration/test_provision_single_flight.py``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from batch_import import reuse_preflight
from batch_import.models import ImportRun, ImportRunItem
from batch_import.reuse_preflight import provisioning_elsewhere
from tests.factories import ImportRunFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db
PROVIDER = "relay-example-00000001"
OURS = "worker_a:12:"  # ``_`` is a wildcard of LIKE: only this process's owners match


@pytest.fixture(autouse=True)
def this_process(monkeypatch):
    monkeypatch.setattr(reuse_preflight, "this_process", lambda: OURS)


def provisioning(run: ImportRun, *, owner: str, entered: timedelta, **fields) -> ImportRunItem:
    """An item of ``run`` provisioning under ``owner``'s live lease since now + ``entered``."""
    item = ImportRunItemFactory(
        run=run,
        provider_id=fields.pop("provider_id", PROVIDER),
        current_stage=ImportRunItem.Stage.PROVISION,
        lease_owner=owner,
        **{"lease_until": timezone.now() + timedelta(minutes=1), **fields},
    )
    ImportRunItem.objects.filter(pk=item.pk).update(updated_at=timezone.now() + entered)
    return ImportRunItem.objects.select_related("run").get(pk=item.pk)


def leader_of(run: ImportRun) -> ImportRunItem:
    return provisioning(run, owner=f"{OURS}w1", entered=timedelta(0))


def waits(leader: ImportRunItem) -> bool:
    return provisioning_elsewhere(leader, (leader.updated_at, leader.item_id))


@pytest.mark.parametrize(
    ("sibling", "expected"),
    [
        ({}, True),
        ({"owner": "elsewhere:7:w2"}, True),
        ({"owner": "workerXa:12:w2"}, True),  # another host, which LIKE's ``_`` would match
        ({"owner": f"{OURS}w2"}, False),  # this process's: it waits for the leader
        ({"entered": timedelta(seconds=1)}, False),  # entered after the leader
        ({"provider_id": "other-example-00000002"}, False),
        ({"group_id": 7}, False),  # settled
        ({"next_retry_at": timedelta(minutes=5)}, False),  # waiting for a retry
        ({"next_retry_at": timedelta(minutes=-5)}, True),  # its retry due
        ({"lease_until": timedelta(seconds=-1)}, False),  # its lease expired: nobody's
    ],
)
def test_a_leader_waits_only_for_an_earlier_live_sibling_of_another_process(sibling, expected):
    run = ImportRunFactory()
    fields = {"owner": "elsewhere:7:w1", "entered": timedelta(seconds=-1), **sibling}
    for name in ("next_retry_at", "lease_until"):
        if name in fields:
            fields[name] = timezone.now() + fields[name]
    provisioning(run, **fields)

    assert waits(leader_of(run)) is expected


def test_in_self_service_any_provider_of_the_run_counts():
    run = ImportRunFactory(access_mode=ImportRun.AccessMode.SELF_SERVICE, subscription_users=[])
    provisioning(
        run, owner="elsewhere:7:w1", entered=timedelta(seconds=-1), provider_id="other-00000002"
    )

    assert waits(leader_of(run)) is True


def test_a_sibling_of_another_run_does_not_count():
    provisioning(ImportRunFactory(), owner="elsewhere:7:w1", entered=timedelta(seconds=-1))

    assert waits(leader_of(ImportRunFactory())) is False
