"""What a reused account gains: only what it lacks, never over its own entries."""

from __future__ import annotations

import pytest

from batch_import.account_shape import patch_for_reuse
from hosts.sub2api import Account
from probe.aliases import build_alias_table
from tests.factories import ImportRunItemFactory

pytestmark = pytest.mark.django_db

CHAT_ONLY = {"transport_profile": {"supports_openai_responses": False}}
WITH_RESPONSES = {"transport_profile": {"supports_openai_responses": True}}


def test_an_account_that_maps_every_model_and_serves_the_group_is_left_alone():
    item = ImportRunItemFactory.build()
    aliases = build_alias_table(["deepseek-chat"])
    account = Account(id=5, model_mapping={"deepseek-chat": "deepseek-chat"}, group_ids=[3])
    assert patch_for_reuse(item, account, aliases, 3) is None


def test_a_reused_account_gains_missing_models_and_the_group_keeping_its_own_entries():
    item = ImportRunItemFactory.build(
        base_url="https://relay.example.com/v1", capability_profile=WITH_RESPONSES
    )
    aliases = build_alias_table(["deepseek-chat", "Kimi-K2"])
    account = Account(
        id=5,
        model_mapping={"deepseek-chat": "their-own-name"},
        group_ids=[9, 1],
        extra={"note": "kept"},
    )
    patch = patch_for_reuse(item, account, aliases, 3)
    assert patch is not None
    mapping = patch.credentials.model_mapping
    assert mapping["deepseek-chat"] == "their-own-name"  # the account's entry wins
    assert set(mapping) == {"deepseek-chat", *(a.canonical for a in aliases.values())}
    assert patch.group_ids == [1, 3, 9]
    assert patch.extra == {"note": "kept"}
    assert patch.credentials.base_url == "https://relay.example.com"
    assert patch.credentials.api_key == item.api_key


def test_a_chat_only_upstream_pins_the_chat_mode_on_a_reused_account():
    item = ImportRunItemFactory.build(capability_profile=CHAT_ONLY)
    aliases = build_alias_table(["deepseek-chat"])
    account = Account(id=5, model_mapping={}, group_ids=[3], extra={"note": "kept"})
    patch = patch_for_reuse(item, account, aliases, 3)
    assert patch.extra == {
        "note": "kept",
        "openai_responses_supported": False,
        "openai_responses_mode": "force_chat_completions",
    }
