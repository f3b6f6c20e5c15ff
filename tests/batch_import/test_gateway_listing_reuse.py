"""The gateway's model list read for one item stands for the next items of the same key for
``RELAY_VALIDATE_LISTING_REUSE`` seconds, when it names their model; every item still asks for
its own chat completion (issue #17: one host call fewer per item of a provider)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from batch_import.stages.validate import RECENT_LISTINGS, ask_gateway
from hosts.sub2api import ChatCompletion
from relay_project.crypto import Secret


class FakeGateway:
    def __init__(self, *models: str) -> None:
        self.models_listed = list(models)
        self.listings = 0
        self.chats: list[str] = []

    def models(self, key):
        self.listings += 1
        return [SimpleNamespace(id=model) for model in self.models_listed]

    def chat_completion(self, key, *, model, max_tokens):
        self.chats.append(model)
        return ChatCompletion(status=200, model=model, content="pong")


def host(gateway: FakeGateway, url: str = "https://host.example.com") -> SimpleNamespace:
    return SimpleNamespace(base_url=url, gateway=gateway)


@pytest.fixture
def reuse(settings):
    settings.RELAY_VALIDATE_LISTING_REUSE = 10
    return settings


def test_a_recent_list_that_names_the_model_is_not_read_again(reuse):
    gateway = FakeGateway("glm-4.5", "kimi-k2")
    for model in ("glm-4.5", "kimi-k2", "glm-4.5"):
        completion, _, problem = ask_gateway(host(gateway), Secret("sk-group"), model)
        assert problem is None and completion.content == "pong"
    assert gateway.listings == 1
    assert gateway.chats == ["glm-4.5", "kimi-k2", "glm-4.5"]


def test_a_model_the_recent_list_lacks_is_looked_up_anew(reuse):
    gateway = FakeGateway("glm-4.5")
    ask_gateway(host(gateway), Secret("sk-group"), "glm-4.5")
    gateway.models_listed.append("kimi-k2")  # a later key's account added it
    _, _, problem = ask_gateway(host(gateway), Secret("sk-group"), "kimi-k2")
    assert problem is None and gateway.listings == 2

    _, _, problem = ask_gateway(host(gateway), Secret("sk-group"), "qwen-3")
    assert problem.reason == "MODEL_NOT_LISTED" and gateway.listings == 3
    assert gateway.chats == ["glm-4.5", "kimi-k2"]


def test_a_list_stands_only_for_its_own_key_and_host(reuse):
    gateway = FakeGateway("glm-4.5")
    ask_gateway(host(gateway), Secret("sk-group-a"), "glm-4.5")
    ask_gateway(host(gateway), Secret("sk-group-b"), "glm-4.5")
    ask_gateway(host(gateway, "https://other.example.com"), Secret("sk-group-a"), "glm-4.5")
    assert gateway.listings == 3


def test_an_old_list_or_none_kept_is_read_anew(reuse, monkeypatch):
    gateway = FakeGateway("glm-4.5")
    clock = [1000.0]
    monkeypatch.setattr("batch_import.stages.validate.time.monotonic", lambda: clock[0])
    ask_gateway(host(gateway), Secret("sk-group"), "glm-4.5")
    clock[0] += 9.9
    ask_gateway(host(gateway), Secret("sk-group"), "glm-4.5")
    clock[0] += 0.2  # 10.1 s after the list was read
    ask_gateway(host(gateway), Secret("sk-group"), "glm-4.5")
    assert gateway.listings == 2

    reuse.RELAY_VALIDATE_LISTING_REUSE = 0
    ask_gateway(host(gateway), Secret("sk-group"), "glm-4.5")
    assert gateway.listings == 3


def test_no_key_is_kept_in_clear(reuse):
    ask_gateway(host(FakeGateway("glm-4.5")), Secret("sk-secret-group-key"), "glm-4.5")
    assert "sk-secret-group-key" not in repr(RECENT_LISTINGS._lists)
