"""/api/hosts: list, detail with the latest snapshot, register and probe again (the real
service, against the loopback host simulator)."""

from __future__ import annotations

import pytest

from hosts.models import Host, HostCapabilitySnapshot
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db

CREDENTIAL = "admin-" + "c" * 64
HOST_FIELDS = {
    "host_id",
    "name",
    "base_url",
    "auth_type",
    "admin_email",
    "version",
    "status",
    "missing_capabilities",
    "last_error",
    "last_probed_at",
    "created_at",
    "updated_at",
}


@pytest.fixture(autouse=True)
def _fast_http(settings):
    settings.RELAY_HTTP_TIMEOUT = 2
    settings.RELAY_HTTP_RETRIES = 0


def test_list_hosts(api):
    first, second = HostFactory(name="a-host"), HostFactory(name="b-host")
    body = api.get("/api/hosts").json()
    assert set(body) == {"hosts", "next_cursor"}
    assert [h["host_id"] for h in body["hosts"]] == [first.pk, second.pk]
    assert set(body["hosts"][0]) == HOST_FIELDS


def test_list_hosts_pages(api):
    hosts = [HostFactory(name=f"h{i}") for i in range(3)]
    page = api.get("/api/hosts", {"limit": 2}).json()
    rest = api.get("/api/hosts", {"limit": 2, "cursor": page["next_cursor"]}).json()
    ids = [h["host_id"] for h in page["hosts"] + rest["hosts"]]
    assert ids == [h.pk for h in hosts] and rest["next_cursor"] is None


def test_host_detail_has_the_latest_snapshot(api):
    host = HostFactory()
    HostCapabilitySnapshot.objects.create(host=host, version="old", capabilities={"groups": False})
    latest = HostCapabilitySnapshot.objects.create(
        host=host, version="0.1.126", capabilities={"groups": True}, supported=True
    )
    body = api.get(f"/api/hosts/{host.pk}").json()
    assert set(body) == HOST_FIELDS | {"capabilities", "latest_snapshot"}
    assert body["capabilities"] == {"groups": True}
    assert body["latest_snapshot"]["snapshot_id"] == latest.pk
    assert body["latest_snapshot"]["supported"] is True


def test_host_detail_without_snapshot(api):
    body = api.get(f"/api/hosts/{HostFactory().pk}").json()
    assert body["capabilities"] == {} and body["latest_snapshot"] is None


def test_unknown_host_is_404(api):
    response = api.get("/api/hosts/999999")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "host 999999 does not exist"


def test_register_host_probes_it_stores_it_and_answers_201(api, host_simulator):
    body = {
        "name": "prod",
        "base_url": host_simulator.url + "/",
        "auth_type": "admin_api_key",
        "admin_credential": host_simulator.admin_key,
    }
    response = api.post("/api/hosts", body, format="json")
    assert response.status_code == 201
    answer = response.json()
    host = Host.objects.get()
    assert (answer["host_id"], answer["name"], answer["status"]) == (host.pk, "prod", "supported")
    assert answer["base_url"] == host.base_url == host_simulator.url
    assert answer["capabilities"]["channels"] is True
    assert answer["latest_snapshot"]["version"] == host.version == "0.1.115.1"
    assert host.admin_credential.reveal() == host_simulator.admin_key
    assert host_simulator.admin_key not in response.content.decode()
    assert HostCapabilitySnapshot.objects.filter(host=host).count() == 1


def test_register_host_with_a_taken_name_is_409_with_the_field(api, host_simulator):
    HostFactory(name="taken")
    body = {
        "name": "taken",
        "base_url": host_simulator.url,
        "auth_type": "admin_api_key",
        "admin_credential": host_simulator.admin_key,
    }
    response = api.post("/api/hosts", body, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert error["fields"] == {"name": "a host named 'taken' is already registered"}
    assert host_simulator.requests == []
    assert Host.objects.count() == 1


def test_a_taken_name_with_another_bad_field_is_400(api, host_simulator):
    HostFactory(name="taken")
    body = {"name": "taken", "base_url": "ftp://x", "auth_type": "admin_api_key"}
    response = api.post("/api/hosts", {**body, "admin_credential": CREDENTIAL}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "base_url"}


def test_register_host_with_a_rejected_key_saves_nothing(api, host_simulator):
    body = {
        "name": "prod",
        "base_url": host_simulator.url,
        "auth_type": "admin_api_key",
        "admin_credential": "admin-" + "0" * 64,
    }
    response = api.post("/api/hosts", body, format="json")
    assert response.status_code == 400
    assert "INVALID_ADMIN_KEY" in response.json()["error"]["fields"]["admin_credential"]
    assert not Host.objects.exists()


def test_register_host_input_errors_do_not_reach_the_host(api, host_simulator):
    response = api.post("/api/hosts", {"name": "x", "auth_type": "bearer"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {
        "base_url",
        "auth_type",
        "admin_credential",
    }
    assert host_simulator.requests == []
    assert not Host.objects.exists()


def test_probe_host_again_stores_what_the_host_says_now(api, old_host_simulator):
    host = HostFactory(
        base_url=old_host_simulator.url, admin_credential=old_host_simulator.admin_key
    )
    response = api.post(f"/api/hosts/{host.pk}/probe")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "unsupported" and body["version"] == "0.1.1"
    assert "channels" in body["latest_snapshot"]["missing_capabilities"]
    host.refresh_from_db()
    assert (host.status, host.version) == ("unsupported", "0.1.1")
    assert HostCapabilitySnapshot.objects.get(host=host).version == "0.1.1"


def test_probe_unknown_host_is_404(api, host_simulator):
    response = api.post("/api/hosts/999999/probe")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "host 999999 does not exist"
    assert host_simulator.requests == []


@pytest.mark.parametrize(
    ("credential", "problem"),
    [
        ("admin-" + "é" * 64, "contains a non-ASCII character (U+00E9) at position 7"),
        ("admin-ab\u200bcd", "contains an invisible control character (U+200B) at position 9"),
    ],
)
def test_a_non_ascii_admin_key_is_a_400_before_any_call_to_the_host(api, credential, problem):
    body = {
        "name": "prod",
        "base_url": "https://127.0.0.1:1",  # nothing listens: a call would fail differently
        "auth_type": "admin_api_key",
        "admin_credential": credential,
    }
    response = api.post("/api/hosts", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["admin_credential"].startswith(problem)
    assert not Host.objects.exists()
