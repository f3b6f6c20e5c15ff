"""A model the gateway does not list is a problem in our words: English in the stored text,
translated when read (#20)."""

from __future__ import annotations

from types import SimpleNamespace

from django.utils import translation

from batch_import.stages.validate import ask_gateway
from relay_project.crypto import Secret
from relay_project.messages import render, stored


def test_a_model_the_gateway_does_not_list_reads_in_the_readers_language():
    client = SimpleNamespace(
        base_url="https://host.example.com", gateway=SimpleNamespace(models=lambda key: [])
    )
    completion, evidence, problem = ask_gateway(client, Secret("sk-access"), "glm-4.5")
    assert completion is None and evidence["http_status"] == 404
    assert str(problem) == "HTTP 404 MODEL_NOT_LISTED: gateway /v1/models does not list glm-4.5"
    with translation.override("zh-hans"):
        assert render(str(problem), stored(problem.text)) == (
            "HTTP 404 MODEL_NOT_LISTED:网关 /v1/models 未列出 glm-4.5"
        )
