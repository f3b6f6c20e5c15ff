"""What an item's host account carries: the canonical → raw model mapping, the upstream's
credentials, and the chat-only pin for an upstream without /v1/responses."""

from __future__ import annotations

from collections.abc import Mapping

from batch_import.models import ImportRunItem
from hosts.sub2api import OpenAICredentials
from probe.capability import CapabilityProfile, responses_supported
from relay_project.base_urls import upstream_root


def account_mapping(aliases: Mapping) -> dict[str, str]:
    """canonical → raw: clients ask for the canonical id, the upstream gets its own name."""
    mapping: dict[str, str] = {}
    for alias in aliases.values():
        mapping.setdefault(alias.canonical, alias.raw)
    return mapping


def credentials(item: ImportRunItem, mapping: dict[str, str]) -> OpenAICredentials:
    # Sent whole every time: [OLD] hosts replace the credentials map on update. The host
    # appends /v1/... itself ([OLD] literally): it gets the root (relay_project.base_urls).
    return OpenAICredentials(
        api_key=item.api_key, base_url=upstream_root(item.base_url), model_mapping=mapping
    )


def responses_flag(item: ImportRunItem) -> bool | None:
    """False only when our probe settled that /v1/responses is missing upstream; an
    inconclusive probe leaves the host to find out (its own probe, §4.10)."""
    verdict = responses_supported(CapabilityProfile.from_dict(item.capability_profile))
    return False if verdict is False else None


def chat_only_extra(item: ImportRunItem) -> dict:
    """For a chat-only upstream, also pin the manual override: the host's own Responses probe
    rewrites ``openai_responses_supported`` (a 403 reads as "supported" on some builds), but
    never ``openai_responses_mode``."""
    if responses_flag(item) is False:
        return {
            "openai_responses_supported": False,
            "openai_responses_mode": "force_chat_completions",
        }
    return {}
