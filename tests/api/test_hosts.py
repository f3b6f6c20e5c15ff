"""/api/hosts: list, detail with the latest snapshot, register and probe again.

``hosts.services`` is another branch's work; these tests put a fake module in its place, which
is exactly how the views reach it (a lazy import), so only the wiring is under test here.
"""

from __future__ import annotations

import pytest

from hosts.errors import HostRegistrationError
from hosts.models import Host, HostCapabilitySnapshot
from relay_project.crypto import Secret
from tests.api.fakes import install_fake_host_services
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


@pytest.fixture
def fake_services(monkeypatch):
    calls = []

    def register_host(*, name, base_url, auth_type, admin_credential, admin_email="", **kw):
        calls.append(("register", name, admin_credential))
        if name == "taken":
            raise HostRegistrationError({"name": "a host named 'taken' is already registered"})
        host = HostFactory(
            name=name, base_url=base_url, auth_type=auth_type, admin_credential=admin_credential
        )
        HostCapabilitySnapshot.objects.create(
            host=host, version="0.1.126", capabilities={"groups": True}, supported=True
        )
        return host

    def reprobe_host(host, transport=None):
        calls.append(("reprobe", host.pk))
        HostCapabilitySnapshot.objects.create(
            host=host,
            version="0.1.127",
            capabilities={"groups": True, "channels": False},
            missing_capabilities=["channels"],
        )
        Host.objects.filter(pk=host.pk).update(status="unsupported", version="0.1.127")
        host.refresh_from_db()
        return host

    install_fake_host_services(monkeypatch, register_host=register_host, reprobe_host=reprobe_host)
    return calls


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


def test_register_host_calls_the_service_and_answers_201(api, fake_services):
    body = {
        "name": "prod",
        "base_url": "https://sub2api.example.com",
        "auth_type": "admin_api_key",
        "admin_credential": CREDENTIAL,
    }
    response = api.post("/api/hosts", body, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "prod"
    assert response.json()["capabilities"] == {"groups": True}
    [(what, name, credential)] = fake_services
    assert (what, name) == ("register", "prod")
    assert isinstance(credential, Secret) and credential.reveal() == CREDENTIAL
    assert CREDENTIAL not in response.content.decode()


def test_register_host_refusal_is_400_with_fields(api, fake_services):
    body = {
        "name": "taken",
        "base_url": "https://x.example",
        "auth_type": "admin_api_key",
        "admin_credential": CREDENTIAL,
    }
    response = api.post("/api/hosts", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["fields"] == {"name": "a host named 'taken' is already registered"}


def test_register_host_input_errors_do_not_reach_the_service(api, fake_services):
    response = api.post("/api/hosts", {"name": "x", "auth_type": "bearer"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {
        "base_url",
        "auth_type",
        "admin_credential",
    }
    assert fake_services == []


def test_probe_host_again(api, fake_services):
    host = HostFactory()
    response = api.post(f"/api/hosts/{host.pk}/probe")
    assert response.status_code == 200
    assert fake_services == [("reprobe", host.pk)]
    body = response.json()
    assert body["status"] == "unsupported" and body["version"] == "0.1.127"
    assert body["latest_snapshot"]["missing_capabilities"] == ["channels"]


def test_probe_unknown_host_is_404(api, fake_services):
    assert api.post("/api/hosts/999999/probe").status_code == 404
    assert fake_services == []


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
