"""``decide_reuse``: what to do with an upstream key the host may already serve (ARCH §5).

Pure policy over plain data. The host has no duplicate detection of its own, so this is the
only guard against a second account for the same provider and key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models
from django.utils.translation import pgettext_lazy

from batch_import.models import ImportRunItem

AccountState = ImportRunItem.MatchedAccountState
Resolution = ImportRunItem.AccountResolution


class ReuseAction(models.TextChoices):
    # The labels are what events call each decision (``Msg.word("reuse action", …)``).
    CREATE = "create", pgettext_lazy("reuse action", "create")
    REUSE = "reuse", pgettext_lazy("reuse action", "reuse")
    PATCH = "patch", pgettext_lazy("reuse action", "patch")
    REACTIVATE = "reactivate", pgettext_lazy("reuse action", "reactivate")
    REPLACE = "replace", pgettext_lazy("reuse action", "replace")


@dataclass(frozen=True)
class ExistingAccount:
    """A managed account on this host for the same provider_id and key fingerprint."""

    account_id: int
    provider_id: str
    state: str  # an AccountState value
    families: frozenset[str] = frozenset()


@dataclass(frozen=True)
class IncomingProvider:
    provider_id: str
    families: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReuseDecision:
    action: ReuseAction
    account_resolution: str
    matched_account_state: str | None = None
    reused_from_provider_id: str | None = None
    reused_from_account_id: int | None = None
    missing_families: frozenset[str] = field(default_factory=frozenset)

    @property
    def provision_reused(self) -> bool:
        """An existing account keeps serving (as is, patched or reactivated)."""
        return self.action in (ReuseAction.REUSE, ReuseAction.PATCH, ReuseAction.REACTIVATE)

    def item_fields(self) -> dict:
        """The decision as the item (and a preview plan) records it."""
        return {
            "matched_account_state": self.matched_account_state,
            "account_resolution": self.account_resolution,
            "provision_reused": self.provision_reused,
            "reused_from_provider_id": self.reused_from_provider_id,
            "reused_from_account_id": self.reused_from_account_id,
        }


# Which existing account wins when several match: a working one first, a broken one last.
STATE_PREFERENCE = {
    AccountState.ACTIVE: 0,
    AccountState.DISABLED: 1,
    AccountState.DEPRECATED: 2,
    AccountState.BROKEN: 3,
}


def decide_reuse(existing: Iterable[ExistingAccount], incoming: IncomingProvider) -> ReuseDecision:
    """Row by row, ARCHITECTURE §5: none → create; active + covered → reuse; active + new
    families → patch only; disabled/deprecated → reactivate (then patch); broken → replace.
    Coverage compares canonical families, so the same family under another alias is covered."""
    candidates = sorted(
        existing, key=lambda acc: (STATE_PREFERENCE.get(acc.state, 9), -acc.account_id)
    )
    if not candidates:
        return ReuseDecision(action=ReuseAction.CREATE, account_resolution=Resolution.CREATED)
    match = candidates[0]
    missing = frozenset(incoming.families - match.families)
    common = {
        "matched_account_state": match.state,
        "reused_from_provider_id": match.provider_id,
        "reused_from_account_id": match.account_id,
        "missing_families": missing,
    }
    if match.state == AccountState.ACTIVE:
        action = ReuseAction.PATCH if missing else ReuseAction.REUSE
        return ReuseDecision(action=action, account_resolution=Resolution.REUSED, **common)
    if match.state in (AccountState.DISABLED, AccountState.DEPRECATED):
        return ReuseDecision(
            action=ReuseAction.REACTIVATE, account_resolution=Resolution.REACTIVATED, **common
        )
    return ReuseDecision(
        action=ReuseAction.REPLACE,
        account_resolution=Resolution.REPLACED,
        **{**common, "missing_families": frozenset(incoming.families)},
    )
