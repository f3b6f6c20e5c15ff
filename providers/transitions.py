"""The one way a provider's state or access status changes: lock the row, check
``state.ALLOWED``, save, append one ``ProviderEvent`` per step (ARCHITECTURE §9)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from providers.errors import InvalidProviderTransition
from providers.models import Provider, ProviderEvent
from providers.state import ALLOWED, path_to
from relay_project.messages import Msg, english, stored

EventType = ProviderEvent.EventType


def provider_move(
    *,
    provider_pk: int,
    to_state: str,
    reason: str | Msg,
    actor: str = "",
    payload: dict | None = None,
) -> Provider:
    """Move the provider to ``to_state`` (through the forward path's steps when it skips
    some); a no-op when it is there already."""
    with transaction.atomic():
        provider = Provider.objects.select_for_update().get(pk=provider_pk)
        reason_text, reason_i18n = english(reason), stored(reason)
        if provider.state == to_state:
            if (provider.state_reason, provider.state_reason_i18n) != (reason_text, reason_i18n):
                provider.state_reason, provider.state_reason_i18n = reason_text, reason_i18n
                provider.save(update_fields=["state_reason", "state_reason_i18n", "updated_at"])
            return provider
        for step in path_to(provider.state, to_state):
            if step not in ALLOWED[provider.state]:
                raise InvalidProviderTransition(
                    _("provider %(id)s cannot go from %(from)s to %(to)s")
                    % {
                        "id": provider.provider_id,
                        "from": Provider.State(provider.state).label,
                        "to": Provider.State(step).label,
                    }
                )
            provider_event(
                provider=provider,
                event_type=EventType.STATE_CHANGED,
                message=reason,
                from_state=provider.state,
                to_state=step,
                actor=actor,
                payload=payload,
            )
            provider.state = step
        provider.state_reason, provider.state_reason_i18n = reason_text, reason_i18n
        provider.save(update_fields=["state", "state_reason", "state_reason_i18n", "updated_at"])
    return provider


def provider_set_access(*, provider_pk: int, access_status: str, actor: str = "") -> Provider:
    """Record a new access closure status (derived by the caller from real checks)."""
    with transaction.atomic():
        provider = Provider.objects.select_for_update().get(pk=provider_pk)
        if provider.access_status == access_status:
            return provider
        provider_event(
            provider=provider,
            event_type=EventType.ACCESS_CHANGED,
            message=Msg(
                gettext_noop("access %(from)s → %(to)s"),
                **{
                    "from": Msg.label(Provider.AccessClosure(provider.access_status).label),
                    "to": Msg.label(Provider.AccessClosure(access_status).label),
                },
            ),
            actor=actor,
            payload={"from": provider.access_status, "to": access_status},
        )
        provider.access_status = access_status
        provider.save(update_fields=["access_status", "updated_at"])
    return provider


def provider_event(
    *,
    provider: Provider,
    event_type: str,
    message: str | Msg,
    from_state: str = "",
    to_state: str = "",
    actor: str = "",
    payload: dict[str, Any] | None = None,
) -> ProviderEvent:
    return ProviderEvent.objects.create(
        provider=provider,
        event_type=event_type,
        message=english(message),
        message_i18n=stored(message),
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        payload=payload or {},
    )
