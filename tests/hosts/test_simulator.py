"""Host simulator behaviour beyond the shared contract: quirks, forwarding, control surface."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import pytest

from hosts.sub2api import HostError, OpenAICredentials, PricingEntry, Sub2ApiClient
from hosts.sub2api.types import Account, ApiKey, Group
from relay_project.crypto import reveal


@dataclass
class Setup:
    client: Sub2ApiClient
    group: Group
    account: Account
    key: ApiKey


def client_for(sim, **options) -> Sub2ApiClient:
    return Sub2ApiClient(
        sim.url, admin_api_key=sim.admin_key, timeout=options.pop("timeout", 5), retries=0
    )


def provision(sim, upstream, *, mapping=None, api_key=None, channel_mapping=None) -> Setup:
    """Group + (optional channel) + account + funded user + key, like the pipeline does."""
    client = client_for(sim)
    group = client.groups.create(name="rm-grp")
    if channel_mapping is not None:
        client.channels.create(
            name="rm-ch", group_ids=[group.id], model_mapping={"openai": channel_mapping}
        )
    credentials = OpenAICredentials(
        api_key=api_key or upstream.api_key,
        base_url=upstream.url,
        model_mapping=mapping if mapping is not None else {"canon": "raw-model"},
    )
    account = client.accounts.create_openai_apikey(
        name="acc", credentials=credentials, group_ids=[group.id]
    )
    account = settled(client, sim, account.id)
    user = client.users.create(email="u@example.com", password="secret-1", balance=5)
    session = client.login(user.email, "secret-1")
    key = client.keys.create(session, name="k", group_id=group.id)
    return Setup(client, group, account, key)


def settled(client, sim, account_id: int, wait: float = 3.0):
    """The account once the host's background Responses probe has written its verdict."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with sim.state.lock:
            if "openai_responses_supported" in sim.state.accounts[account_id].extra:
                break
        time.sleep(0.02)
    return client.accounts.get(account_id)


def test_simulator_responses_probe_runs_after_the_answer(host_simulator, fake_upstream):
    """§13: the create answer has no verdict yet; it appears once the probe is done."""
    client = client_for(host_simulator)
    credentials = OpenAICredentials(
        api_key=fake_upstream.api_key, base_url=fake_upstream.url, model_mapping={"c": "r"}
    )
    created = client.accounts.create_openai_apikey(name="acc", credentials=credentials)
    assert created.responses_supported is None
    assert settled(client, host_simulator, created.id).responses_supported is True


def test_simulator_probe_403_fails_only_the_first_test(host_simulator_factory, fake_upstream):
    sim = host_simulator_factory(probe_403=True)
    setup = provision(sim, fake_upstream)
    first = setup.client.accounts.test(setup.account.id, model="canon")
    second = setup.client.accounts.test(setup.account.id, model="canon")
    assert (first.success, first.error) == (False, "API returned 403: Forbidden")
    assert (second.success, second.model, second.text) == (True, "raw-model", "pong")


def test_simulator_responses_probe_detects_unsupported(host_simulator, fake_upstream_factory):
    upstream = fake_upstream_factory(responses_supported=False)
    setup = provision(host_simulator, upstream)
    assert setup.account.responses_supported is False
    assert upstream.calls[0].path == "/v1/responses"
    assert upstream.calls[0].body["model"] == "raw-model"  # first mapped value


def test_simulator_responses_probe_detects_supported(host_simulator, fake_upstream):
    assert provision(host_simulator, fake_upstream).account.responses_supported is True


def test_simulator_old_mode_skips_probe_and_shows_credentials(
    host_simulator_factory, fake_upstream
):
    sim = host_simulator_factory(old=True)
    client = client_for(sim)
    account = client.accounts.create_openai_apikey(
        name="a", credentials=OpenAICredentials(fake_upstream.api_key, fake_upstream.url)
    )
    assert account.api_key.reveal() == fake_upstream.api_key
    assert account.responses_supported is None
    assert fake_upstream.calls == []


def test_simulator_gateway_raw_passthrough_applies_both_mappings(
    host_simulator, fake_upstream_factory
):
    upstream = fake_upstream_factory(responses_supported=False)
    setup = provision(host_simulator, upstream, channel_mapping={"alias": "canon"})
    result = setup.client.gateway.chat_completion(setup.key.key, model="alias")
    assert result.ok and result.content == "pong"
    call = upstream.calls[-1]
    assert (call.path, call.body["model"]) == ("/v1/chat/completions", "raw-model")
    assert call.authorization == f"Bearer {upstream.api_key}"


def test_simulator_sends_an_upstream_no_cookie_it_set(host_simulator, fake_upstream_factory):
    """The host's client toward upstreams has no cookie jar (http_upstream.go)."""
    upstream = fake_upstream_factory(responses_supported=False)
    upstream.set_cookie = "sid=upstream; Path=/"
    setup = provision(host_simulator, upstream)
    for _ in range(2):
        assert setup.client.gateway.chat_completion(setup.key.key, model="canon").ok
    chats = [call for call in upstream.calls if call.path == "/v1/chat/completions"]
    assert len(chats) == 2 and [call.cookie for call in chats] == [None, None]


def test_simulator_gateway_converts_through_responses(host_simulator, fake_upstream):
    setup = provision(host_simulator, fake_upstream)
    result = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    assert result.ok and result.content == "pong"
    assert fake_upstream.calls[-1].path == "/v1/responses"
    assert fake_upstream.calls[-1].body["model"] == "raw-model"


def test_simulator_gateway_streams_raw_passthrough(host_simulator, fake_upstream_factory):
    upstream = fake_upstream_factory(responses_supported=False)
    setup = provision(host_simulator, upstream)
    body = {"model": "canon", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"Authorization": f"Bearer {setup.key.key.reveal()}"}
    response = httpx.post(
        host_simulator.url + "/v1/chat/completions", json=body, headers=headers, timeout=5
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.count("data: ") == 3 and "[DONE]" in response.text


def test_simulator_gateway_warmup_answers_503_until_over(host_simulator_factory, fake_upstream):
    sim = host_simulator_factory(warmup_seconds=60)
    setup = provision(sim, fake_upstream)
    warming = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    sim.quirks.no_account = "classified"  # a warming account maps the model: still 503
    classified = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    sim.quirks.warmup_seconds = 0
    ready = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    assert warming.no_available_accounts and classified.no_available_accounts
    assert warming.error_message == "Service temporarily unavailable"
    assert ready.ok


def test_simulator_gateway_no_account_answer_depends_on_the_build(host_simulator, fake_upstream):
    setup = provision(host_simulator, fake_upstream)
    generic = setup.client.gateway.chat_completion(setup.key.key, model="other")
    host_simulator.quirks.no_account = "detailed"
    detailed = setup.client.gateway.chat_completion(setup.key.key, model="other")
    host_simulator.quirks.no_account = "classified"
    unmapped = setup.client.gateway.chat_completion(setup.key.key, model="other")
    with host_simulator.state.lock:
        for account in host_simulator.state.accounts.values():
            account.rate_limited_until = time.monotonic() + 60
    limited = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    assert (generic.status, generic.error_message) == (503, "Service temporarily unavailable")
    assert detailed.status == 503 and detailed.error_message.endswith("supporting model: other")
    assert (unmapped.status, unmapped.error_type) == (404, "model_not_found")
    assert not unmapped.transient
    assert (limited.status, limited.error_type) == (429, "rate_limit_error") and limited.transient


def test_simulator_gateway_fails_over_and_marks_401_account(host_simulator, fake_upstream):
    setup = provision(host_simulator, fake_upstream, api_key="sk-wrong-upstream-key")
    good = setup.client.accounts.create_openai_apikey(
        name="good",
        credentials=OpenAICredentials(fake_upstream.api_key, fake_upstream.url, {"canon": "x"}),
        group_ids=[setup.group.id],
        priority=99,  # tried after the broken one
    )
    result = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    assert result.ok
    assert host_simulator.state.accounts[setup.account.id].status == "error"
    assert host_simulator.state.accounts[good.id].status == "active"


def test_simulator_gateway_restrict_models_needs_pricing(host_simulator, fake_upstream):
    host_simulator.quirks.no_account = "detailed"  # the build that says why
    setup = provision(host_simulator, fake_upstream)
    channel = setup.client.channels.create(
        name="rm-ch", group_ids=[setup.group.id], restrict_models=True
    )
    blocked = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    setup.client.channels.update(
        channel.id, model_pricing=[PricingEntry(platform="openai", models=("canon",))]
    )
    allowed = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    assert blocked.no_available_accounts and "channel pricing restriction" in blocked.error_message
    assert allowed.ok


def test_simulator_account_test_401_marks_error_until_cleared(host_simulator, fake_upstream):
    setup = provision(host_simulator, fake_upstream, api_key="sk-wrong-upstream-key")
    result = setup.client.accounts.test(setup.account.id, model="canon")
    broken = setup.client.accounts.get(setup.account.id)
    cleared = Account.from_api(
        setup.client.http.admin("POST", f"/accounts/{setup.account.id}/clear-error")
    )
    assert result.error.startswith("API returned 401")
    assert broken.status == "error"
    assert cleared.status == "active" and cleared.error_message == ""


def test_simulator_fail_next_injects_status_once(host_simulator, sim_client):
    host_simulator.fail_next("GET", "/api/v1/admin/groups", status=503)
    with pytest.raises(HostError) as caught:
        sim_client.groups.list()
    assert caught.value.status == 503 and caught.value.transient
    assert sim_client.groups.list() == []


def test_simulator_fail_next_delay_times_the_client_out(host_simulator):
    host_simulator.fail_next("*", "/api/v1/admin/system", status=None, delay=2)
    client = client_for(host_simulator, timeout=0.2)
    with pytest.raises(HostError) as caught:
        client.version()
    assert caught.value.reason == "TIMEOUT"


def test_simulator_expired_jwt_answers_token_expired(host_simulator):
    login = httpx.post(
        host_simulator.url + "/api/v1/auth/login",
        json={"email": host_simulator.admin_email, "password": host_simulator.admin_password},
    )
    token = login.json()["data"]["access_token"]
    host_simulator.expire_tokens()
    response = httpx.get(
        host_simulator.url + "/api/v1/admin/groups", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.json() == {"code": "TOKEN_EXPIRED", "message": "Token has expired"}


def test_simulator_control_endpoint_switches_quirks(host_simulator, sim_client):
    response = httpx.post(host_simulator.url + "/__sim/quirks", json={"old": True})
    assert response.json()["old"] is True
    assert sim_client.version() == "0.1.1"


def test_simulator_records_requests_and_state(host_simulator, sim_client):
    group = sim_client.groups.create(name="g")
    assert host_simulator.state.groups[group.id].name == "g"
    last = host_simulator.requests[-1]
    assert (last.method, last.path, last.status, last.auth) == (
        "POST",
        "/api/v1/admin/groups",
        200,
        "admin-key",
    )
    assert last.body["name"] == "g"


def test_simulator_cli_prints_url_and_serves():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hosts.simulator",
            "--port",
            "0",
            "--admin-key",
            "admin-cli",
            "--old",
            "--warmup",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        response = httpx.get(
            url + "/api/v1/admin/system/version", headers={"x-api-key": "admin-cli"}, timeout=5
        )
        quirks = httpx.get(url + "/__sim/quirks", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=5)
    assert response.json()["data"] == {"version": "0.1.1"}
    assert quirks["warmup_seconds"] == 5


def test_simulator_account_models_default_without_mapping(host_simulator, sim_client):
    account = sim_client.accounts.create_openai_apikey(
        name="a", credentials=OpenAICredentials("", "http://127.0.0.1:9")
    )
    ids = [m.id for m in sim_client.accounts.models(account.id)]
    assert ids == list(host_simulator.quirks.default_models)


def test_simulator_account_test_streams_chat_when_responses_unsupported(
    host_simulator, fake_upstream_factory
):
    upstream = fake_upstream_factory(responses_supported=False)
    setup = provision(host_simulator, upstream)
    result = setup.client.accounts.test(setup.account.id, model="canon")
    assert (result.success, result.text) == (True, "pong")
    assert [e.type for e in result.events] == ["test_start", "content", "content", "test_complete"]
    assert upstream.calls[-1].path == "/v1/chat/completions"
    assert upstream.calls[-1].body["stream"] is True


def test_simulator_warmup_restarts_when_account_is_reactivated(
    host_simulator_factory, fake_upstream
):
    sim = host_simulator_factory(warmup_seconds=60)
    setup = provision(sim, fake_upstream)
    sim.state.accounts[setup.account.id].available_since -= 61  # the warm-up has passed
    warm = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    setup.client.accounts.set_schedulable(setup.account.id, False)
    setup.client.accounts.set_schedulable(setup.account.id, True)
    rewarming = setup.client.gateway.chat_completion(setup.key.key, model="canon")
    assert warm.ok
    assert rewarming.no_available_accounts


def test_simulator_gateway_takes_only_exactly_bearer_on_older_builds(host_simulator, fake_upstream):
    setup = provision(host_simulator, fake_upstream)
    host_simulator.quirks.bearer_exact = True
    key = reveal(setup.key.key)
    with httpx.Client(base_url=host_simulator.url) as http:

        def answer(value: str) -> tuple[int, str]:
            response = http.get("/v1/models", headers={"Authorization": value})
            return response.status_code, response.json().get("code", "")

        assert answer(f"Bearer {key}") == (200, "")
        assert answer(f"bearer {key}") == (401, "API_KEY_REQUIRED")  # no fallback either
        assert answer(f"Bearer  {key}") == (401, "INVALID_API_KEY")  # the key is not trimmed
        assert http.get("/v1/models", headers={"x-api-key": key}).status_code == 200
        refused = http.get(f"/v1/models?api_key={key}", headers={"x-api-key": key})
    assert refused.status_code == 400
    assert refused.json()["code"] == "api_key_in_query_deprecated"


def test_simulator_gateway_refuses_a_query_key_first_and_shuffles_models(
    host_simulator, fake_upstream
):
    setup = provision(host_simulator, fake_upstream)
    with httpx.Client(base_url=host_simulator.url) as http:
        key = reveal(setup.key.key)
        refused = http.get("/v1/models?key=whatever", headers={"Authorization": f"Bearer {key}"})
        lower = http.get("/v1/models", headers={"Authorization": f"bearer {key}"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "api_key_in_query_deprecated"
    assert lower.status_code == 200, (
        lower.text
    )  # the scheme is compared without case, as the host does
    with host_simulator.state.lock:
        (account,) = host_simulator.state.accounts.values()
        account.credentials["model_mapping"] = {f"m{i}": "canon" for i in range(8)}
    orders = {tuple(m.id for m in setup.client.gateway.models(setup.key.key)) for _ in range(6)}
    assert len(orders) > 1 and all(sorted(o) == sorted(next(iter(orders))) for o in orders)


@pytest.mark.parametrize("old", [True, False])
def test_simulator_account_create_with_a_missing_group(host_simulator_factory, old):
    """§13: [OLD] inserts the account before binding groups, so a bad group id leaves an
    orphan behind its 500; [NEW] writes nothing."""
    sim = host_simulator_factory(old=old)
    with httpx.Client(base_url=sim.url, headers={"x-api-key": sim.admin_key}) as http:
        answer = http.post(
            "/api/v1/admin/accounts",
            json={
                "name": "orphan",
                "platform": "openai",
                "type": "apikey",
                "credentials": {"api_key": "sk-x", "base_url": "http://127.0.0.1:9"},
                "group_ids": [999],
            },
        )
    assert answer.status_code == 500
    assert [a.name for a in sim.state.accounts.values()] == (["orphan"] if old else [])


def test_simulator_reads_upstream_events_up_to_done_skipping_undecodable_data() -> None:
    from hosts.simulator.upstream import _sse_payloads

    body = b'event: x\ndata: {"a": 1}\n\ndata: nope\n\ndata: [DONE]\n\ndata: {"b": 2}\n\n'
    stream = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    assert list(_sse_payloads(stream)) == [{"a": 1}]
    assert list(_sse_payloads(httpx.Response(200, json={"a": 1}))) == []


def test_simulator_account_test_streams_in_chunks_over_a_kept_connection(
    host_simulator, fake_upstream
):
    """As the host's net/http does: the next request reuses the connection."""
    setup = provision(host_simulator, fake_upstream)
    path = f"/api/v1/admin/accounts/{setup.account.id}/test"
    answers, ports = [], set()
    admin = {"x-api-key": host_simulator.admin_key}
    with httpx.Client(base_url=host_simulator.url, headers=admin) as http:
        for _ in range(2):
            answers.append(http.post(path, json={"model_id": "canon"}))
            ports.add(answers[-1].extensions["network_stream"].get_extra_info("client_addr"))
    assert [a.headers["transfer-encoding"] for a in answers] == ["chunked", "chunked"]
    assert [a.text.count('"test_complete"') for a in answers] == [1, 1]
    assert len(ports) == 1


def test_the_host_simulator_never_calls_its_upstream_from_its_loop(host_simulator) -> None:
    """A route that calls the upstream must say it ``blocks`` (it then answers from a pool
    thread): made on the loop, the call would hold every other request of the host."""
    from relay_project.loopback_http import _Loop

    with pytest.raises(RuntimeError, match="called on the host simulator's loop"):
        _Loop.get().run(lambda: host_simulator.upstream.get("http://127.0.0.1:9/v1/models"))
