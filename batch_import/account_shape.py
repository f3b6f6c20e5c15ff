"""What an item's host account carries: the canonical → raw model mapping, the upstream's
credentials, and the chat-only pin for an upstream without /v1/responses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from batch_import.models import ImportRunItem
from hosts.sub2api import Account, OpenAICredentials
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


@dataclass(frozen=True)
class AccountPatch:
    """What a reused account gets: the mapping it lacks, the chat-only pin, the item's group."""

    credentials: OpenAICredentials
    extra: dict
    group_ids: list[int]


def patch_for_reuse(
    item: ImportRunItem, account: Account, aliases: Mapping, group_id: int
) -> AccountPatch | None:
    """None when the account already maps every model and serves the group: a reused account
    only ever gains (its own mapping entries win over ours)."""
    mapping = dict(account.model_mapping)
    missing = {k: v for k, v in account_mapping(aliases).items() if k not in mapping}
    if not missing and group_id in account.group_ids:
        return None
    return AccountPatch(
        credentials=credentials(item, {**mapping, **missing}),
        extra={**account.extra, **chat_only_extra(item)},
        group_ids=sorted(set(account.group_ids) | {group_id}),
    )


@dataclass(frozen=True)
class NewAccount:
    """An item's account as created: its key, mapping, and the chat-only pin if any."""

    key_fingerprint: str
    key_digest: str
    credentials: OpenAICredentials
    responses_supported: bool | None
    extra: dict


def new_account(item: ImportRunItem, aliases: Mapping) -> NewAccount:
    return NewAccount(
        key_fingerprint=item.api_key_fingerprint,
        key_digest=item.api_key_digest,
        credentials=credentials(item, account_mapping(aliases)),
        responses_supported=responses_flag(item),
        extra=chat_only_extra(item),
    )
