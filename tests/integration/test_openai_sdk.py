"""The official ``openai`` and ``anthropic`` SDKs, as a user of the upstream and of the host would
(issue #16): what the SDK sees through the gateway must agree with the pipeline's verdict."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from hosts.models import ManagedResource
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def sdk(base_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=10)


def say_hi(client: openai.OpenAI, model: str, **extra):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=16, **extra
    )


def test_the_sdk_against_the_upstream_simulator(upstream_factory):
    upstream = upstream_factory(models=("glm-4.5", "kimi-k2.6"))
    client = sdk(upstream.base_url, upstream.api_key)

    assert sorted(m.id for m in client.models.list()) == ["glm-4.5", "kimi-k2.6"]
    answer = say_hi(client, "glm-4.5")
    assert answer.choices[0].message.content and answer.model == "glm-4.5"
    chunks = list(say_hi(client, "glm-4.5", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    called = say_hi(client, "glm-4.5", tools=[WEATHER_TOOL], tool_choice="required")
    assert called.choices[0].message.tool_calls[0].function.name == "get_weather"
    with pytest.raises(openai.AuthenticationError):
        say_hi(sdk(upstream.base_url, "sk-wrong"), "glm-4.5")
    with pytest.raises((openai.NotFoundError, openai.BadRequestError)):
        say_hi(client, "no-such-model")


def test_the_sdk_through_the_host_gateway_agrees_with_the_pipeline(
    host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("glm-4.5",))
    run = drive(start(register(host_simulator), [entry(upstream)]))
    item = run.items.get()
    assert item.access_status == "active"  # the pipeline's verdict ...
    user_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    client = sdk(f"{host_simulator.url}/v1", user_key)

    model = item.validation_evidence["model"]  # ... and what a user of the host sees
    assert model in [m.id for m in client.models.list()]
    answer = say_hi(client, model)
    assert answer.choices[0].message.content
    chunks = list(say_hi(client, model, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    called = say_hi(client, model, tools=[WEATHER_TOOL], tool_choice="required")
    assert called.choices[0].message.tool_calls[0].function.name == "get_weather"
    with pytest.raises(openai.AuthenticationError):
        say_hi(sdk(f"{host_simulator.url}/v1", "sk-" + "0" * 64), model)
    # A model nobody serves: the current build's 503, which the SDK reports as a server error
    # (the pipeline's validation treats the same answer as warm-up and retries it).
    with pytest.raises(openai.InternalServerError) as unknown:
        say_hi(client, "no-such-model")
    assert unknown.value.status_code == 503


def test_a_broken_item_is_also_broken_for_the_sdk(host_simulator, upstream_factory):
    upstream = upstream_factory(models=("glm-4.5",))
    run = drive(start(register(host_simulator), [entry(upstream)]))
    user_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    model = run.items.get().validation_evidence["model"]
    upstream.configure(api_key="sk-rotated")  # the provider revoked the imported key
    client = sdk(f"{host_simulator.url}/v1", user_key)
    with pytest.raises(openai.APIStatusError) as failed:
        say_hi(client, model)
    assert failed.value.status_code == 502  # the host reports the upstream's refusal


def test_streaming_through_the_host_is_real_and_reports_usage(host_simulator, upstream_factory):
    upstream = upstream_factory(models=[{"id": "glm-4.5", "reply": "one two three four"}])
    run = drive(start(register(host_simulator), [entry(upstream)]))
    user_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    model = run.items.get().validation_evidence["model"]
    client = sdk(f"{host_simulator.url}/v1", user_key)
    chunks = list(say_hi(client, model, stream=True, stream_options={"include_usage": True}))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert texts == ["one", " two", " three", " four"]  # word by word, not one block
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 4


def test_the_gateway_serves_responses_messages_usage_and_root_aliases(
    host_simulator, upstream_factory
):
    """§13: the routes a real [NEW] host serves for openai groups, with the shapes it uses."""
    upstream = upstream_factory(models=("glm-4.5",))
    run = drive(start(register(host_simulator), [entry(upstream)]))
    user_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    model = run.items.get().validation_evidence["model"]
    client = sdk(f"{host_simulator.url}/v1", user_key)

    response = client.responses.create(model=model, input="hi", max_output_tokens=16)
    assert response.output_text
    root = sdk(host_simulator.url, user_key)  # base URL without /v1: the root aliases
    assert say_hi(root, model).choices[0].message.content
    assert root.responses.create(model=model, input="hi", max_output_tokens=16).output_text
    headers = {"Authorization": f"Bearer {user_key}"}
    with httpx.Client(base_url=host_simulator.url, headers=headers) as http:
        message = http.post(
            "/v1/messages",
            json={
                "model": model,
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}],
            },
        ).json()
        usage = http.get("/v1/usage").json()
        listed = http.get("/v1/models").json()["data"]
    assert message["type"] == "message" and message["content"][0]["text"]
    assert usage["isValid"] is True and usage["unit"] == "USD" and usage["planName"]
    assert set(listed[0]) == {"id", "type", "display_name", "created_at"}  # Claude-style


def test_the_anthropic_sdk_through_the_host_gateway(host_simulator, upstream_factory):
    """An Anthropic client on an openai group: the host converts /v1/messages to chat."""
    upstream = upstream_factory(models=("glm-4.5",))
    run = drive(start(register(host_simulator), [entry(upstream)]))
    user_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    model = run.items.get().validation_evidence["model"]
    client = anthropic.Anthropic(
        base_url=host_simulator.url, api_key=user_key, max_retries=0, timeout=10
    )

    message = client.messages.create(
        model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.type == "message" and message.content[0].text
    assert message.usage.output_tokens >= 1
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            base_url=host_simulator.url, api_key="sk-" + "0" * 64, max_retries=0
        ).messages.create(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}])


def test_the_pipeline_and_the_sdk_send_exactly_bearer(host_simulator_factory, upstream_factory):
    """Older builds take only exactly "Bearer <key>" (§13): neither our adapter nor the SDK
    may lean on the current build's tolerance."""
    sim = host_simulator_factory(bearer_exact=True)
    item = drive(start(register(sim), [entry(upstream_factory(models=("glm-4.5",)))])).items.get()
    assert item.access_status == "active"
    user_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    client = sdk(f"{sim.url}/v1", user_key)
    assert [m.id for m in client.models.list()] == ["glm-4.5"]
    assert say_hi(client, "glm-4.5").choices[0].message.content
    with pytest.raises(openai.AuthenticationError):
        say_hi(sdk(f"{sim.url}/v1", "sk-" + "0" * 64), "glm-4.5")


def test_the_sdk_and_the_pipeline_read_each_no_account_answer_alike(
    host_simulator_factory, upstream_factory
):
    """Builds with classified no-account answers (§13): the SDK's exception and the adapter's
    reading of the same answer agree (a mapping problem is NotFound, limits are RateLimit)."""
    import time

    from hosts.sub2api import GatewayRefusal, client_for_host

    sim = host_simulator_factory()
    sim.quirks.no_account = "classified"
    host = register(sim)
    run = drive(start(host, [entry(upstream_factory(models=("glm-4.5",)))]))
    item = run.items.get()
    user_key = ManagedResource.objects.get(resource_type="api_key").secret.reveal()
    model = item.validation_evidence["model"]
    client = sdk(f"{sim.url}/v1", user_key)
    with sim.state.lock:  # a channel restricting models answers an unpriced one with 503
        for channel in sim.state.channels.values():
            channel.restrict_models = False
    with client_for_host(host) as ours:
        with pytest.raises(openai.NotFoundError) as unmapped:
            say_hi(client, "no-such-model")
        unmapped_ours = ours.gateway.chat_completion(user_key, model="no-such-model")
        with sim.state.lock:
            for account in sim.state.accounts.values():
                account.rate_limited_until = time.monotonic() + 60
        with pytest.raises(openai.RateLimitError):
            say_hi(client, model)
        limited_ours = ours.gateway.chat_completion(user_key, model=model)
    assert unmapped.value.status_code == 404
    assert unmapped_ours.refusal == GatewayRefusal.MODEL_NOT_FOUND and not unmapped_ours.transient
    assert limited_ours.refusal == GatewayRefusal.RATE_LIMITED and limited_ours.transient
