"""Pure rules: a provider's state from its accounts and drift, its access closure from its
latest gateway checks (seed 002 §4.1, §4.3). Plain data in, a value out; table-tested."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.utils.translation import gettext_noop

from providers.models import AccessMode, Provider, ProviderAccount
from relay_project.messages import Msg

State = Provider.State
Closure = Provider.AccessClosure
AccountStatus = ProviderAccount.Status

# The happy path a new provider walks; a first outcome that lands further along records each
# step it passed (an item that is already validated was also discovered and installed).
FORWARD_PATH = (State.DISCOVERED, State.VALIDATED, State.INSTALLED, State.ACTIVE)

ALLOWED: Mapping[str, frozenset[str]] = {
    State.DISCOVERED: frozenset({State.VALIDATED, State.FAILED, State.DISABLED}),
    State.VALIDATED: frozenset({State.INSTALLED, State.FAILED, State.DISABLED}),
    # Back to validated: a rollback (or a replace) took every account off the host.
    State.INSTALLED: frozenset(
        {State.ACTIVE, State.DEGRADED, State.DRIFTED, State.FAILED, State.DISABLED}
        | {State.VALIDATED}
    ),
    State.ACTIVE: frozenset(
        {State.DEGRADED, State.DRIFTED, State.FAILED, State.DISABLED, State.VALIDATED}
    ),
    State.DEGRADED: frozenset(
        {State.ACTIVE, State.DRIFTED, State.FAILED, State.DISABLED, State.VALIDATED}
    ),
    State.DRIFTED: frozenset(
        {State.ACTIVE, State.DEGRADED, State.FAILED, State.DISABLED, State.VALIDATED}
    ),
    # A re-import or a recovered upstream brings a failed provider back.
    State.FAILED: frozenset(
        {State.VALIDATED, State.INSTALLED, State.ACTIVE, State.DEGRADED, State.DRIFTED}
        | {State.DISABLED}
    ),
    # Only the operator's enable leaves disabled; it lands wherever the evidence says.
    State.DISABLED: frozenset(
        {State.INSTALLED, State.ACTIVE, State.DEGRADED, State.DRIFTED, State.FAILED}
        | {State.VALIDATED}
    ),
}


@dataclass(frozen=True)
class AccountHealth:
    status: str  # a ProviderAccount.Status value
    last_ok: bool | None  # the latest real check of the account (test or gateway); None: none yet
    transient: bool = False  # the latest failure may pass on its own (timeouts, 5xx, quota)


def derive_state(
    accounts: Iterable[AccountHealth], *, drifted: bool, probed: bool
) -> tuple[str, Msg]:
    """The state the evidence supports, and why (not for disabled providers: that sticks).

    drifted beats everything (the host no longer matches what we made); then no account:
    validated when an upstream answered the probe, failed otherwise; all accounts failing →
    failed; every serving account passing → active; some passing → degraded; accounts made
    but never checked → installed."""
    if drifted:
        return State.DRIFTED, Msg(
            gettext_noop("the host no longer matches what relay-manager made")
        )
    present = [
        a for a in accounts if a.status not in (AccountStatus.REMOVED, AccountStatus.MISSING)
    ]
    if not present:
        if probed:
            return State.VALIDATED, Msg(
                gettext_noop("the upstream answered, no account on the host")
            )
        return State.FAILED, Msg(gettext_noop("no working account on the host"))
    serving = [a for a in present if a.status == AccountStatus.ACTIVE]
    checked = [a for a in present if a.last_ok is not None]
    if not checked:
        return State.INSTALLED, Msg(gettext_noop("accounts made, not checked yet"))
    passing = [a for a in serving if a.last_ok]
    if passing and len(passing) == len(present):
        return State.ACTIVE, Msg(gettext_noop("every account passes"))
    if passing:
        return State.DEGRADED, Msg(
            gettext_noop("%(passing)d of %(present)d accounts pass"),
            passing=len(passing),
            present=len(present),
        )
    if any(a.transient for a in checked if a.last_ok is False):
        return State.DEGRADED, Msg(
            gettext_noop("no account passes, but the failures look temporary")
        )
    return State.FAILED, Msg(gettext_noop("no account passes"))


def path_to(current: str, target: str) -> list[str]:
    """The states to record on the way from ``current`` to ``target``: the forward path's
    steps when both lie on it, otherwise the target alone."""
    if current in FORWARD_PATH and target in FORWARD_PATH:
        start, end = FORWARD_PATH.index(current), FORWARD_PATH.index(target)
        if end > start:
            return list(FORWARD_PATH[start + 1 : end + 1])
    return [target]


def access_closure(latest_by_mode: Mapping[str, bool]) -> str:
    """Seed 002 §4.3 from the latest real gateway check per access mode (``{mode: ok}``)."""
    if not latest_by_mode:
        return Closure.NOT_CONFIGURED
    subscription = latest_by_mode.get(AccessMode.SUBSCRIPTION, False)
    self_service = latest_by_mode.get(AccessMode.SELF_SERVICE, False)
    if subscription and self_service:
        return Closure.FULLY_READY
    if subscription:
        return Closure.SUBSCRIPTION_READY
    if self_service:
        return Closure.SELF_SERVICE_READY
    return Closure.BROKEN


def host_access_closure(providers: Iterable[Mapping[str, bool]]) -> str:
    """A host's closure: a mode is ready when every provider checked in that mode passed its
    latest check (and at least one was checked)."""
    combined: dict[str, bool] = {}
    for latest in providers:
        for mode, ok in latest.items():
            combined[mode] = combined.get(mode, True) and ok
    return access_closure(combined)


# What a reconcile compares, per resource type: what an operator changes by hand. An
# account's health (status "error", set by the host after a failed call) is not drift.
DRIFT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "group": ("name", "status", "platform"),
    "channel": ("status", "group_ids", "model_mapping", "restrict_models"),
    "account": ("schedulable", "disabled", "group_ids", "model_mapping", "base_url"),
}


def drift(baseline: Mapping[str, object], observed: Mapping[str, object]) -> dict[str, dict]:
    """``{field: {"expected": old, "found": new}}`` for every compared field that differs."""
    return {
        name: {"expected": baseline.get(name), "found": observed.get(name)}
        for name in sorted(set(baseline) | set(observed))
        if baseline.get(name) != observed.get(name)
    }
