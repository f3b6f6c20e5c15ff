"""What the admin API tells about a gateway answer that hides its cause (§4.3, §5.4, §9.5): the
account's own state after its upstream answered 429 / 402 / 401, and a channel's pricing
restriction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hosts.sub2api import Channel
from hosts.sub2api.types import Account

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


def account(**fields) -> Account:
    data = {"id": 7, "status": "active", "schedulable": True, **fields}
    return Account.from_api(data)


def at(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({}, ""),
        (
            {"status": "error", "error_message": "Payment required (402): Insufficient Balance"},
            "upstream_quota",
        ),
        (
            {"status": "error", "error_message": "Authentication failed (401): bad key"},
            "upstream_auth",
        ),
        (
            {"status": "error", "error_message": "Access forbidden (403): suspended"},
            "upstream_auth",
        ),
        ({"rate_limit_reset_at": at(60), "rate_limited_at": at(-1)}, "upstream_rate_limited"),
        ({"rate_limit_reset_at": at(-60)}, ""),  # a past limit no longer counts
        (
            {"temp_unschedulable_until": at(600), "temp_unschedulable_reason": "余额不足"},
            "upstream_quota",
        ),
        (
            {"temp_unschedulable_until": at(600), "temp_unschedulable_reason": "overloaded"},
            "upstream_rate_limited",
        ),
        ({"rate_limit_reset_at": "2026-12-04T08:01:00"}, "upstream_rate_limited"),  # naive: UTC
    ],
)
def test_the_account_says_what_its_upstream_did(fields, refusal):
    assert account(**fields).upstream_refusal(NOW) == refusal


def test_the_account_reads_the_host_s_rate_limit_fields():
    read = account(rate_limit_reset_at=at(30), temp_unschedulable_reason="why")
    assert read.rate_limit_reset_at == NOW + timedelta(seconds=30)
    assert read.temp_unschedulable_reason == "why"


def channel(**fields) -> Channel:
    data = {
        "id": 3,
        "status": "active",
        "restrict_models": True,
        "billing_model_source": "channel_mapped",
        "model_mapping": {"openai": {"kimi-k2.6": "Kimi-K2.6", "glm-*": "glm-4.5"}},
        "model_pricing": [{"platform": "openai", "models": ["KIMI-K2.6", "glm-4*"]}],
        **fields,
    }
    return Channel.from_api(data)


@pytest.mark.parametrize(
    ("fields", "requested", "refused"),
    [
        ({}, "kimi-k2.6", False),  # mapped to Kimi-K2.6, priced case-insensitively
        ({}, "glm-5", False),  # glm-* → glm-4.5, priced by the glm-4* wildcard
        ({}, "deepseek-v4", True),
        ({"model_pricing": []}, "kimi-k2.6", True),
        ({"model_pricing": [{"platform": "anthropic", "models": ["*"]}]}, "kimi-k2.6", True),
        ({"restrict_models": False, "model_pricing": []}, "kimi-k2.6", False),
        ({"status": "disabled", "model_pricing": []}, "kimi-k2.6", False),
        ({"billing_model_source": "requested"}, "glm-5", True),  # glm-5 itself is not priced
        ({"billing_model_source": "upstream", "model_pricing": []}, "kimi-k2.6", False),
    ],
)
def test_a_channel_refuses_what_its_pricing_restriction_leaves_out(fields, requested, refused):
    assert channel(**fields).refuses("openai", requested) is refused
