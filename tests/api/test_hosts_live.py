from __future__ import annotations

import pytest

from hosts.models import Host, HostCapabilitySnapshot

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_register_and_reprobe_a_real_simulated_host_through_the_api(api, host_simulator):
    answer = api.post(
        "/api/hosts",
        {
            "name": "sim",
            "base_url": host_simulator.url,
            "auth_type": "admin_api_key",
            "admin_credential": host_simulator.admin_key,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "supported"
    assert host_simulator.admin_key not in answer.content.decode()
    host = Host.objects.get(name="sim")
    again = api.post(f"/api/hosts/{host.pk}/probe")
    assert again.status_code == 200
    assert HostCapabilitySnapshot.objects.filter(host=host).count() == 2
    assert not host_simulator.state.accounts  # registration never creates anything


def test_register_with_a_wrong_admin_key_names_the_field_and_saves_nothing(api, host_simulator):
    answer = api.post(
        "/api/hosts",
        {
            "name": "sim",
            "base_url": host_simulator.url,
            "auth_type": "admin_api_key",
            "admin_credential": "admin-wrong",
        },
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_request"
    assert not Host.objects.exists()
