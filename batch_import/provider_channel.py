"""The provider's channel on the host: created with its alias mapping and prices, or grown by
``model_mapping_delta`` when a later import discovers more (never a second channel for a group)."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext_noop

from batch_import.channel_evolution import model_mapping_delta
from batch_import.models import ImportRunItem
from batch_import.packs import channel_prices
from batch_import.transitions import EventType, record_event
from hosts.resources import HostResources
from hosts.sub2api import Channel, PricingEntry
from hosts.sub2api.types import UNASKED
from relay_project.messages import Msg


def ensure_channel(
    item: ImportRunItem,
    resources: HostResources,
    *,
    group_id: int,
    aliases: Mapping,
    pack,
    share_group_channel: bool,
    own: Channel | None = UNASKED,
) -> int:
    """The channel serving ``group_id`` with this provider's aliases → its id.

    ``share_group_channel``: the group is not the provider's own (self-service: the operator
    key's group, shared by every provider), so its existing channel takes the aliases too.
    ``own``: the provider's channel, when the caller has just looked it up by name.
    """
    if own is UNASKED:
        own = resources.find_channel()
    channel = own
    if channel is None and share_group_channel:
        channel = resources.find_channel(serving_group=group_id)
        if channel is not None:
            record_event(
                item=item,
                event_type=EventType.REUSED,
                message=Msg(
                    gettext_noop(
                        "channel %(channel)s (%(name)s) already serves group %(group)s: "
                        "this provider's aliases join it"
                    ),
                    channel=channel.id,
                    name=channel.name,
                    group=group_id,
                ),
                payload={"channel_id": channel.id, "group_id": group_id},
            )
    existing = dict(channel.model_mapping.get("openai", {})) if channel else {}
    served = {m for entry in channel.model_pricing for m in entry.models} if channel else set()
    contract = model_mapping_delta(existing, aliases, channel_prices(pack), served=served)
    pricing = [
        PricingEntry(**{**entry, "models": tuple(entry["models"])})
        for entry in contract.model_pricing
    ]
    if channel is None:
        channel, created = resources.create_channel(
            group_id=group_id,
            model_mapping=contract.host_model_mapping(),
            model_pricing=pricing,
            restrict_models=contract.restrict_models,
            billing_model_source=contract.billing_model_source,
            found=own,  # None: looked up by name just now
        )
        if created:
            return channel.id
    group_ids = sorted(set(channel.group_ids) | {group_id})
    # A pack installed (or upgraded) after the channel was made brings its prices along.
    repriced = bool(pack and pack.prices) and set(pricing) != set(channel.model_pricing)
    priced = {m for entry in contract.model_pricing for m in entry["models"]}
    if contract.changed or repriced or priced != served or group_ids != sorted(channel.group_ids):
        resources.client.channels.update(
            channel.id,
            group_ids=group_ids,
            model_mapping=contract.host_model_mapping(),
            model_pricing=pricing,
            restrict_models=contract.restrict_models,
            billing_model_source=contract.billing_model_source,
        )
        record_event(
            item=item,
            event_type=EventType.PATCHED,
            message=Msg(
                gettext_noop("channel %(channel)s: added %(count)s alias mappings"),
                channel=channel.id,
                count=len(contract.added),
            ),
            payload={"channel_id": channel.id, "added": contract.added, "repriced": repriced},
        )
    return channel.id
