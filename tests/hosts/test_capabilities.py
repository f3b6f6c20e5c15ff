"""The side-effect-free capability probe and how a client is built from a Host row."""

from __future__ import annotations

import httpx
import pytest

from hosts.sub2api import HostError, Sub2ApiClient, client_for_host
from hosts.sub2api.capabilities import CAPABILITIES, guess_chat_completions, parse_version
from tests.factories import HostFactory


@pytest.mark.parametrize(
    ("version", "has_channels", "expected"),
    [
        ("0.1.1", True, False),  # the [OLD] build, whatever else it says
        ("0.1.1", False, False),
        ("0.1.115.1", True, True),
        ("0.1.115.1", False, False),
        ("v0.1.129", True, True),
        ("0.0.0-dev", True, True),  # unknown version: channels decide
        ("0.0.0-dev", False, False),
    ],
)
def test_guess_chat_completions_table(version, has_channels, expected):
    assert guess_chat_completions(version, has_channels) is expected


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [("0.1.115.1", (0, 1, 115, 1)), ("v0.1.1", (0, 1, 1)), ("0.0.0", None), ("dev", None)],
)
def test_parse_version_table(raw, parsed):
    assert parse_version(raw) == parsed


def test_probe_capabilities_new_host_has_everything(sim_client, host_simulator):
    capabilities = sim_client.probe_capabilities()
    assert capabilities.supported
    assert set(capabilities.capabilities) == set(CAPABILITIES)
    assert {r.method for r in host_simulator.requests} == {"GET"}


def test_probe_capabilities_old_host_misses_channels_and_chat(old_host_simulator):
    client = Sub2ApiClient(old_host_simulator.url, admin_api_key=old_host_simulator.admin_key)
    capabilities = client.probe_capabilities()
    assert capabilities.missing == ["channels", "chat_completions"]
    assert capabilities.version == "0.1.1"


def test_probe_capabilities_web_page_means_absent():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/system/version"):
            return httpx.Response(200, json={"code": 0, "data": {"version": "0.1.120"}})
        if request.url.path.endswith("/channels"):  # a SPA fallback page
            return httpx.Response(200, text="<html></html>", headers={"content-type": "text/html"})
        page = {"items": [], "total": 0, "page": 1, "page_size": 1, "pages": 1}
        return httpx.Response(200, json={"code": 0, "data": page})

    client = Sub2ApiClient(
        "http://h.test", admin_api_key="admin-x", transport=httpx.MockTransport(handler)
    )
    assert client.probe_capabilities().missing == ["channels", "chat_completions"]


def test_probe_capabilities_raises_on_auth_failure(host_simulator):
    client = Sub2ApiClient(host_simulator.url, admin_api_key="admin-wrong", retries=0)
    with pytest.raises(HostError) as caught:
        client.probe_capabilities()
    assert caught.value.reason == "INVALID_ADMIN_KEY"


def test_client_for_host_uses_admin_key_row(host_simulator):
    host = HostFactory.build(base_url=host_simulator.url, admin_credential=host_simulator.admin_key)
    assert client_for_host(host).version() == "0.1.115.1"
    assert host_simulator.requests[-1].auth == "admin-key"


def test_client_for_host_uses_password_row(host_simulator):
    host = HostFactory.build(
        base_url=host_simulator.url,
        auth_type="password",
        admin_email=host_simulator.admin_email,
        admin_credential=host_simulator.admin_password,
    )
    assert client_for_host(host).version() == "0.1.115.1"
    assert host_simulator.requests[-1].auth == "admin-jwt"
