"""When provisioning looks for an account of ours the host may have unrecorded: only after an
earlier provisioning of the same provider + key on the same host."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRunItem, ImportRunItemEvent
from batch_import.reuse_preflight import provisioned_before
from tests.factories import ImportRunFactory, ImportRunItemEventFactory, ImportRunItemFactory

pytestmark = pytest.mark.django_db
Stage = ImportRunItem.Stage
PROVISION_START = {
    "event_type": ImportRunItemEvent.EventType.STAGE_STARTED,
    "stage": Stage.PROVISION,
}


def provisioning(run, key="sk-same", **fields) -> ImportRunItem:
    item = ImportRunItemFactory(
        run=run, key=key, provider_id="relay-example-com", current_stage=Stage.PROVISION, **fields
    )
    ImportRunItemEventFactory(item=item, **PROVISION_START)
    return ImportRunItem.objects.select_related("run").get(pk=item.pk)


def test_the_first_provisioning_of_a_key_on_its_host_has_nothing_to_look_for():
    run = ImportRunFactory()
    item = provisioning(run)
    ImportRunItemFactory(run=run, key="sk-same", provider_id="relay-example-com")  # probing
    provisioning(run, key="sk-other")
    provisioning(ImportRunFactory(), key="sk-same")  # another host
    provisioning(ImportRunFactory(host=run.host, is_preview=True), key="sk-same")
    assert provisioned_before(item) is False


def test_its_second_start_looks():
    item = provisioning(ImportRunFactory())
    ImportRunItemEventFactory(item=item, **PROVISION_START)  # a worker died in the first
    assert provisioned_before(item) is True


@pytest.mark.parametrize("stage", [Stage.PROVISION, Stage.CONFIRM, Stage.DONE])
def test_another_item_of_the_key_on_the_host_that_got_that_far_makes_it_look(stage):
    run = ImportRunFactory()
    item = provisioning(run)
    ImportRunItemFactory(
        run=ImportRunFactory(host=run.host),
        key="sk-same",
        provider_id="relay-example-com",
        current_stage=stage,
    )
    assert provisioned_before(item) is True
