from __future__ import annotations

import pytest

from hosts.models import Host, HostCapabilitySnapshot
from tests.factories import ImportRunItemEventFactory

pytestmark = pytest.mark.django_db


def test_admin_probe_again_action_reprobes_the_selected_hosts(client, staff, host_simulator):
    from hosts.services import register_host

    host = register_host(
        name="sim",
        base_url=host_simulator.url,
        auth_type="admin_api_key",
        admin_credential=host_simulator.admin_key,
    )
    answer = client.post(
        "/admin/hosts/host/",
        {"action": "probe_again", "_selected_action": [host.pk]},
        follow=True,
    )
    assert "sim: supported" in answer.content.decode().lower()
    assert HostCapabilitySnapshot.objects.filter(host=host).count() == 2
    assert Host.objects.get(pk=host.pk).last_probed_at is not None


def test_run_and_item_admin_are_read_only_with_inlines_and_filters(client, staff, rich_run):
    item = rich_run.items.first()
    ImportRunItemEventFactory(item=item, message="an event in the inline")
    run_page = client.get(f"/admin/batch_import/importrun/{rich_run.run_id}/change/")
    html = run_page.content.decode()
    assert item.provider_id in html  # items inline
    assert 'name="state"' not in html and 'name="access_status"' not in html
    # The counts, summed from the run's counter shards, as read-only fields and columns.
    assert '<div class="readonly">3</div>' in html  # active items
    runs = client.get("/admin/batch_import/importrun/").content.decode()
    row = runs[runs.index(rich_run.run_id) :]
    assert '<td class="field-total_items">4</td><td class="field-active_items">3</td>' in row
    item_html = client.get(
        f"/admin/batch_import/importrunitem/{item.item_id}/change/"
    ).content.decode()
    assert "an event in the inline" in item_html
    assert 'name="current_stage"' not in item_html
    listing = client.get("/admin/batch_import/importrunitem/").content.decode()
    for label in ("current stage", "confirmation status", "access status", "account resolution"):
        assert f"By {label}" in listing, label
    found = client.get(f"/admin/batch_import/importrunitem/?q={item.provider_id}").content.decode()
    assert item.item_id in found


def test_host_admin_masks_the_credential_and_keeps_state_read_only(client, staff, rich_run):
    html = client.get(f"/admin/hosts/host/{rich_run.host_id}/change/").content.decode()
    assert "********" in html
    assert 'name="status"' not in html and 'name="admin_credential"' not in html
