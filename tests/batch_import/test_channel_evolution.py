from __future__ import annotations

from dataclasses import dataclass

from batch_import.channel_evolution import model_mapping_delta


@dataclass(frozen=True)
class Alias:
    raw: str
    canonical: str


def table(*pairs):
    return {raw: Alias(raw, canonical) for raw, canonical in pairs}


def test_model_mapping_delta_preserves_existing_entries():
    contract = model_mapping_delta(
        {"Kimi-K2.6": "kimi-k2.6", "custom": "kept"}, table(("Kimi-K2.6", "kimi-k2.6"))
    )
    assert contract.model_mapping == {"Kimi-K2.6": "kimi-k2.6", "custom": "kept"}
    assert contract.added == {} and not contract.changed


def test_model_mapping_delta_adds_raw_to_canonical_mappings():
    contract = model_mapping_delta(
        {},
        table(("deepseek-ai/DeepSeek-V4-Pro", "deepseek-v4-pro"), ("glm-4.5", "glm-4.5")),
    )
    assert contract.added == {"deepseek-ai/DeepSeek-V4-Pro": "deepseek-v4-pro"}
    assert "glm-4.5" not in contract.model_mapping  # canonical ids pass through unmapped
    assert contract.host_model_mapping() == {
        "openai": {"deepseek-ai/DeepSeek-V4-Pro": "deepseek-v4-pro"}
    }


def test_model_mapping_delta_never_overwrites_an_existing_key():
    contract = model_mapping_delta({"m": "other"}, table(("m", "m-canonical")))
    assert contract.model_mapping["m"] == "other"


def test_model_mapping_delta_sets_restrict_models_and_billing_source():
    contract = model_mapping_delta({}, table(("Qwen/Qwen3-32B", "qwen3-32b")))
    assert contract.restrict_models is True
    assert contract.billing_model_source == "channel_mapped"
    assert contract.model_pricing == [
        {"platform": "openai", "models": ["qwen3-32b"], "billing_mode": "token"}
    ]


def test_model_mapping_delta_splits_pricing_into_entries_of_at_most_100_models():
    contract = model_mapping_delta({}, table(*[(f"V/M-{i}", f"m-{i}") for i in range(150)]))
    assert [len(entry["models"]) for entry in contract.model_pricing] == [100, 50]


def test_model_mapping_delta_with_nothing_discovered_restricts_nothing():
    contract = model_mapping_delta({}, {})
    assert (contract.restrict_models, contract.model_pricing) == (False, [])


def test_model_mapping_delta_gives_priced_models_their_own_entry():
    contract = model_mapping_delta(
        {},
        table(("a", "a"), ("b", "b")),
        prices={"a": {"input_price": 1e-6, "output_price": 2e-6}},
    )
    assert contract.model_pricing == [
        {
            "platform": "openai",
            "models": ["a"],
            "billing_mode": "token",
            "input_price": 1e-6,
            "output_price": 2e-6,
        },
        {"platform": "openai", "models": ["b"], "billing_mode": "token"},
    ]


def test_models_the_channel_already_serves_stay_priced():
    """A channel shared by providers (self-service's one group) keeps serving the others'
    models, identity aliases included, when one provider's aliases are added."""
    contract = model_mapping_delta({}, table(("kimi-k2.6", "kimi-k2.6")), served={"glm-4.5"})
    priced = {model for entry in contract.model_pricing for model in entry["models"]}
    assert priced == {"glm-4.5", "kimi-k2.6"} and contract.restrict_models
    without = model_mapping_delta({}, table(("kimi-k2.6", "kimi-k2.6")))
    assert {m for e in without.model_pricing for m in e["models"]} == {"kimi-k2.6"}
