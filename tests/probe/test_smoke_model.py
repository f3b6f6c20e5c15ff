from __future__ import annotations

from probe.capability import CapabilityProfile, ModelCapabilityProfile
from probe.smoke_model import SmokeChoice, choose_smoke_model


def profile_with(ok: dict[str, bool]) -> CapabilityProfile:
    models = [ModelCapabilityProfile(raw, raw, raw, smoke_chat_ok=flag) for raw, flag in ok.items()]
    return CapabilityProfile(model_profiles=models)


def test_smoke_model_uses_requested_alias_when_matched() -> None:
    raw = ["moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2.6"]
    choice = choose_smoke_model(["kimi-k3", "kimi 2.6"], raw, None)
    assert choice.model == "moonshotai/Kimi-K2.6"
    assert choice.recommendations[0] == "moonshotai/Kimi-K2.6"  # for the unresolved "kimi-k3"


def test_smoke_model_falls_back_to_a_working_discovered_model() -> None:
    raw = ["deepseek-reasoner", "deepseek-chat", "qwen3-32b"]
    profile = profile_with({"deepseek-reasoner": False, "deepseek-chat": True, "qwen3-32b": True})
    assert choose_smoke_model([], raw, profile) == SmokeChoice("deepseek-chat", [])
    choice = choose_smoke_model(["qwen3-323b"], raw, profile)
    assert (choice.model, choice.recommendations[0]) == ("qwen3-32b", "qwen3-32b")


def test_smoke_model_falls_back_to_first_discovered_without_profile() -> None:
    assert choose_smoke_model(["gpt-4o"], ["glm-4.5", "glm-4.6"], None).model == "glm-4.5"
    profile = profile_with({"glm-4.5": False})
    assert choose_smoke_model([], ["glm-4.5", "glm-4.6"], profile).model == "glm-4.6"


def test_a_requested_model_that_failed_the_smoke_chat_gives_way_to_one_that_passed() -> None:
    raw = ["glm-4.5", "kimi-k2.6", "deepseek-chat"]
    profile = profile_with({"glm-4.5": False, "kimi-k2.6": True, "deepseek-chat": True})
    choice = choose_smoke_model(["glm-4.5", "kimi-k2.6"], raw, profile)
    assert choice.model == "kimi-k2.6"
    assert choice.reason == "glm-4.5 failed the upstream smoke chat; kimi-k2.6 passed it"
    assert choice.skipped == ("glm-4.5",)
    choice = choose_smoke_model(["glm-4.5"], raw, profile)
    assert choice.model in ("kimi-k2.6", "deepseek-chat") and "glm-4.5 failed" in choice.reason
    assert choose_smoke_model(["kimi-k2.6"], raw, profile).reason == ""


def test_never_a_smoke_model_known_to_fail() -> None:
    profile = profile_with({"glm-4.5": False, "glm-4.6": False})
    assert choose_smoke_model(["glm-4.5"], ["glm-4.5", "glm-4.6"], profile).model is None
    assert choose_smoke_model([], ["glm-4.5", "glm-4.6"], profile).model is None


def test_smoke_model_without_models() -> None:
    assert choose_smoke_model(["kimi-k2.6"], [], None) == SmokeChoice(None, [])
