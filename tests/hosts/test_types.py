"""The host DTOs (hosts.sub2api.types): tolerant of both builds' shapes, but a record without
its id is refused with a typed adapter error instead of becoming record 0."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hosts.sub2api import HostError
from hosts.sub2api.errors import ErrorKind
from hosts.sub2api.types import (
    Account,
    ApiKey,
    Channel,
    Group,
    HostModel,
    PricingEntry,
    Subscription,
    TestEvent,
    User,
)
from relay_project.crypto import Secret

KEY = "sk-upstream-0123456789abcdef"


@pytest.mark.parametrize(
    ("dto", "body", "missing"),
    [
        (Group, {"name": "rm-x", "platform": "openai"}, "id"),
        (Channel, {"name": "rm-x", "group_ids": [7]}, "id"),
        (Account, {"name": "rm-x", "credentials": {"api_key": KEY}}, "id"),
        (User, {"email": "ops@example.com"}, "id"),
        (Subscription, {"user_id": 1, "group_id": 2}, "id"),
        (Subscription, {"id": 5, "group_id": 2}, "user_id"),
        (Subscription, {"id": 5, "user_id": 1}, "group_id"),
        (ApiKey, {"user_id": 1, "key": KEY}, "id"),
        (ApiKey, {"id": 3, "key": KEY}, "user_id"),
        (HostModel, {"display_name": "GPT"}, "id"),
        (Group, {"id": None}, "id"),
        (Group, {"id": "seven"}, "id"),
    ],
)
def test_a_record_without_its_id_is_a_protocol_error(dto: Any, body: dict, missing: str) -> None:
    with pytest.raises(HostError) as caught:
        dto.from_api(body)
    error = caught.value
    assert (error.kind, error.reason, error.transient) == (
        ErrorKind.PROTOCOL,
        "UNEXPECTED_RESPONSE",
        False,
    )
    assert f"{dto.__name__}: {missing}:" in error.message
    assert KEY not in str(error)


@pytest.mark.parametrize("body", [None, [], "id=7"])
def test_an_answer_that_is_not_an_object_is_a_protocol_error(body: Any) -> None:
    with pytest.raises(HostError) as caught:
        Group.from_api(body)
    assert caught.value.kind == ErrorKind.PROTOCOL


def test_missing_descriptive_fields_take_neutral_defaults() -> None:
    group = Group.from_api({"id": "7", "name": None, "rate_multiplier": "n/a", "future": 1})
    assert (group.id, group.name, group.subscription_type, group.rate_multiplier) == (
        7,
        "",
        "standard",
        0.0,
    )
    assert group.daily_limit_usd is None and group.is_exclusive is False
    user = User.from_api({"id": 2, "balance": None, "concurrency": "x", "allowed_groups": "7"})
    assert (user.balance, user.concurrency, user.allowed_groups) == (0.0, 0, ())
    event = TestEvent.from_api({"type": "content", "success": "yes"})
    assert (event.type, event.text, event.success) == ("content", "", None)


def test_an_old_account_nests_its_key_and_mapping_in_credentials() -> None:
    account = Account.from_api(
        {
            "id": 12,
            "status": "active",
            "schedulable": True,
            "credentials": {
                "api_key": KEY,
                "base_url": "https://relay.example.com",
                "model_mapping": {"my-fast": "upstream-fast-v2", "bad": 3},
            },
            "groups": [{"id": 7}, "junk"],
            "extra": {"openai_responses_supported": False},
            "created_at": "2026-05-01T08:00:00Z",
        }
    )
    assert isinstance(account.api_key, Secret) and account.api_key.reveal() == KEY
    assert KEY not in repr(account)
    assert account.has_api_key and account.is_schedulable
    assert account.base_url == "https://relay.example.com"
    assert account.model_mapping == {"my-fast": "upstream-fast-v2"}
    assert account.responses_supported is False
    assert account.created_at == datetime(2026, 5, 1, 8, tzinfo=UTC)
    with pytest.raises(HostError):  # a group listed without its id is not group 0
        Account.from_api({"id": 12, "groups": [{"name": "no id"}]})
    assert Account.from_api({"id": 12, "groups": [{"id": 7}]}).group_ids == (7,)


def test_a_new_account_says_only_that_it_has_a_key() -> None:
    account = Account.from_api(
        {
            "id": 12,
            "credentials": {"base_url": "https://r.io"},
            "credentials_status": {"has_api_key": True},
        }
    )
    assert account.has_api_key and account.api_key is None
    assert Account.from_api({"id": 12, "credentials_status": {"has_api_key": True}}).has_api_key


def test_a_channel_keeps_its_nested_mapping_and_readable_pricing() -> None:
    channel = Channel.from_api(
        {
            "id": 4,
            "group_ids": [7, "8"],
            "model_mapping": {"openai": {"alias": "canonical", "bad": None}},
            "model_pricing": [{"platform": "openai", "models": ["m"], "input_price": "1e-7"}, 3],
        }
    )
    assert channel.group_ids == (7, 8)
    assert channel.model_mapping == {"openai": {"alias": "canonical"}}
    assert channel.billing_model_source == "channel_mapped"
    assert channel.model_pricing == (
        PricingEntry(platform="openai", models=("m",), input_price=1e-7),
    )


def test_a_key_without_a_group_and_its_secret() -> None:
    key = ApiKey.from_api({"id": 3, "user_id": 1, "group_id": 0, "key": KEY})
    assert key.group_id is None and key.key.reveal() == KEY and KEY not in repr(key)
    assert ApiKey.from_api({"id": 3, "user_id": 1, "group_id": 9, "key": KEY}).group_id == 9


def test_records_are_immutable() -> None:
    group = Group.from_api({"id": 7})
    with pytest.raises(ValueError, match="frozen"):
        group.id = 8  # type: ignore[misc]
