"""Host registration and re-probe against the loopback host simulator."""

from __future__ import annotations

import socket

import pytest

from hosts.models import Host, HostCapabilitySnapshot
from hosts.services import HostNameTaken, HostRegistrationError, register_host, reprobe_host
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_http(settings):
    settings.RELAY_HTTP_TIMEOUT = 2
    settings.RELAY_HTTP_RETRIES = 0


def register(sim, **overrides) -> Host:
    options = {
        "name": "prod",
        "base_url": sim.url + "/",
        "auth_type": Host.AuthType.ADMIN_API_KEY,
        "admin_credential": sim.admin_key,
    }
    return register_host(**{**options, **overrides})


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_register_host_supported_stores_snapshot(host_simulator):
    host = register(host_simulator)
    assert (host.status, host.version, host.missing_capabilities) == ("supported", "0.1.115.1", [])
    assert host.base_url == host_simulator.url  # trailing slash dropped
    assert host.admin_credential.reveal() == host_simulator.admin_key
    snapshot = HostCapabilitySnapshot.objects.get(host=host)
    assert snapshot.supported and snapshot.capabilities["channels"] is True


def test_register_host_never_writes_to_the_host(host_simulator):
    register(host_simulator)
    assert {r.method for r in host_simulator.requests} == {"GET"}
    assert not host_simulator.state.groups and not host_simulator.state.accounts


def test_register_host_old_host_is_unsupported_with_channels_missing(old_host_simulator):
    host = register(old_host_simulator)
    assert host.status == "unsupported"
    assert host.version == "0.1.1"
    assert "channels" in host.missing_capabilities
    assert "chat_completions" in host.missing_capabilities
    assert not HostCapabilitySnapshot.objects.get(host=host).supported


def test_register_host_bad_key_names_the_field_and_saves_nothing(host_simulator):
    with pytest.raises(HostRegistrationError) as caught:
        register(host_simulator, admin_credential="admin-" + "0" * 64)
    assert set(caught.value.errors) == {"admin_credential"}
    assert "INVALID_ADMIN_KEY" in caught.value.errors["admin_credential"]
    assert not Host.objects.exists()


@pytest.fixture
def not_sub2api_urls():
    """A closed port, a non-HTTP service (answers like Redis) and a web server that is not
    sub2api: what a port scan through the registration form would tell apart."""
    import socketserver
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class RedisLike(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.recv(1024)
            self.request.sendall(b"-ERR unknown command 'GET'\r\n")

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<h1>nginx</h1>")

        def log_message(self, *args):
            pass

    servers = [
        socketserver.TCPServer(("127.0.0.1", 0), RedisLike),
        HTTPServer(("127.0.0.1", 0), NotFound),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [closed_port_url()] + [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_registration_cannot_tell_what_answers_on_a_port(not_sub2api_urls, caplog):
    messages = set()
    for url in not_sub2api_urls:
        with pytest.raises(HostRegistrationError) as refused:
            register_host(
                name=f"probe-{url[-5:]}",
                base_url=url,
                auth_type="admin_api_key",
                admin_credential="admin-" + "1" * 64,
            )
        assert set(refused.value.errors) == {"base_url"}
        messages.add(refused.value.errors["base_url"])
    assert len(messages) == 1 and "did not answer like a sub2api" in messages.pop()
    assert not Host.objects.exists()
    assert len([r for r in caplog.records if "registration of" in r.getMessage()]) == 3


def test_plain_http_is_refused_for_a_public_address(monkeypatch):
    monkeypatch.setattr(
        "hosts.services.socket.getaddrinfo",
        lambda host, port, **kw: [(2, 1, 6, "", ("93.184.216.34", port))],
    )
    with pytest.raises(HostRegistrationError) as refused:
        register_host(
            name="public",
            base_url="http://sub2api.example.com",
            auth_type="admin_api_key",
            admin_credential="admin-" + "1" * 64,
        )
    assert "plain http is only allowed for loopback or private" in refused.value.errors["base_url"]


def test_register_host_password_auth_logs_in(host_simulator):
    host = register(
        host_simulator,
        auth_type=Host.AuthType.PASSWORD,
        admin_email=host_simulator.admin_email,
        admin_credential=host_simulator.admin_password,
    )
    assert host.status == "supported"
    assert any(r.path == "/api/v1/auth/login" for r in host_simulator.requests)


def test_register_host_wrong_password_names_the_credential(host_simulator):
    with pytest.raises(HostRegistrationError) as caught:
        register(
            host_simulator,
            auth_type=Host.AuthType.PASSWORD,
            admin_email=host_simulator.admin_email,
            admin_credential="not-the-password",
        )
    assert set(caught.value.errors) == {"admin_credential"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"base_url": "ftp://host.example"}, "base_url"),
        ({"base_url": "http://"}, "base_url"),
        ({"base_url": "https://user:pw@host.example"}, "base_url"),
        ({"name": " "}, "name"),
        ({"auth_type": "token"}, "auth_type"),
        ({"admin_credential": ""}, "admin_credential"),
        ({"admin_credential": "sk-user-key-not-admin"}, "admin_credential"),
        ({"auth_type": "password", "admin_credential": "pw", "admin_email": "x"}, "admin_email"),
    ],
)
def test_register_host_rejects_bad_input_by_field(overrides, field):
    options = {
        "name": "h",
        "base_url": "https://host.example",
        "auth_type": "admin_api_key",
        "admin_credential": "admin-" + "2" * 64,
        **overrides,
    }
    with pytest.raises(HostRegistrationError) as caught:
        register_host(**options)
    assert field in caught.value.errors


def test_register_host_rejects_duplicate_name(host_simulator):
    HostFactory(name="prod")
    with pytest.raises(HostNameTaken) as caught:
        register(host_simulator)
    assert "already registered" in caught.value.errors["name"]


def test_a_taken_name_with_another_bad_field_is_a_plain_refusal(host_simulator):
    HostFactory(name="prod")
    with pytest.raises(HostRegistrationError) as caught:
        register(host_simulator, base_url="ftp://x")
    assert not isinstance(caught.value, HostNameTaken)
    assert set(caught.value.errors) == {"name", "base_url"}


def test_register_host_address_without_sub2api_is_a_base_url_error(host_simulator):
    with pytest.raises(HostRegistrationError) as caught:
        register(host_simulator, base_url=host_simulator.url + "/not-sub2api")
    assert set(caught.value.errors) == {"base_url"}


def test_reprobe_host_records_new_state_and_snapshot(host_simulator):
    host = register(host_simulator)
    host_simulator.quirks.old = True
    host = reprobe_host(host)
    assert host.status == "unsupported"
    assert host.snapshots.count() == 2


def test_reprobe_host_marks_rejected_key_unreachable(host_simulator):
    host = HostFactory(base_url=host_simulator.url, admin_credential="admin-" + "3" * 64)
    host = reprobe_host(host)
    assert host.status == "unreachable"
    assert "admin_credential" in host.last_error


@pytest.mark.parametrize("version", ["0.2.0", "1.0.3", "0.1.0"])
def test_register_host_refuses_a_version_outside_the_supported_range(host_simulator, version):
    host_simulator.quirks.version = version
    with pytest.raises(HostRegistrationError) as refused:
        register(host_simulator)
    message = refused.value.errors["base_url"]
    assert f"reports version {version}" in message and ">= 0.1.1 and < 0.2" in message
    assert not Host.objects.exists()


@pytest.mark.parametrize("version", ["0.1.1", "0.1.115.1", "0.1.999", "0.0.0-dev"])
def test_register_host_accepts_the_supported_and_unreadable_versions(host_simulator, version):
    host_simulator.quirks.version = version
    host_simulator.quirks.old = version == "0.1.1"
    assert register(host_simulator).version == version


def test_reprobe_marks_a_host_upgraded_past_the_range_unsupported(host_simulator):
    host = register(host_simulator)
    host_simulator.quirks.version = "0.2.1"
    host = reprobe_host(host)
    assert host.status == "unsupported" and "0.2.1" in host.last_error
