from __future__ import annotations

import pytest

from batch_import.reuse import ExistingAccount, IncomingProvider, ReuseAction, decide_reuse

P = "relay-example-1234abcd"


def acc(account_id, state, *families):
    return ExistingAccount(account_id, P, state, frozenset(families))


def incoming(*families):
    return IncomingProvider(P, frozenset(families))


@pytest.mark.parametrize(
    ("existing", "families", "action", "resolution", "matched", "reused", "missing"),
    [
        ([], ["kimi-k2.6"], "create", "created", None, False, set()),
        ([acc(4, "active", "kimi-k2.6")], ["kimi-k2.6"], "reuse", "reused", "active", True, set()),
        (
            [acc(4, "active", "kimi-k2.6")],
            ["kimi-k2.6", "kimi-k2"],
            "patch",
            "reused",
            "active",
            True,
            {"kimi-k2"},
        ),
        (
            [acc(4, "disabled", "glm-4.5")],
            ["glm-4.5"],
            "reactivate",
            "reactivated",
            "disabled",
            True,
            set(),
        ),
        (
            [acc(4, "deprecated", "glm-4.5")],
            ["glm-4.5", "glm-4.5-air"],
            "reactivate",
            "reactivated",
            "deprecated",
            True,
            {"glm-4.5-air"},
        ),
        (
            [acc(4, "broken", "glm-4.5")],
            ["glm-4.5"],
            "replace",
            "replaced",
            "broken",
            False,
            {"glm-4.5"},
        ),
        # A working account wins over a broken one of the same key.
        (
            [acc(3, "broken", "x"), acc(5, "active", "x")],
            ["x"],
            "reuse",
            "reused",
            "active",
            True,
            set(),
        ),
        (
            [acc(3, "deprecated", "x"), acc(5, "disabled", "x")],
            ["x"],
            "reactivate",
            "reactivated",
            "disabled",
            True,
            set(),
        ),
        # Fewer families incoming than the account has: still covered.
        ([acc(4, "active", "a", "b")], ["a"], "reuse", "reused", "active", True, set()),
    ],
)
def test_decide_reuse_table(existing, families, action, resolution, matched, reused, missing):
    decision = decide_reuse(existing, incoming(*families))
    assert decision.action == ReuseAction(action)
    assert decision.account_resolution == resolution
    assert decision.matched_account_state == matched
    assert decision.provision_reused is reused
    assert decision.missing_families == frozenset(missing)


def test_decide_reuse_records_where_it_reused_from():
    decision = decide_reuse([acc(9, "active", "deepseek-v4-pro")], incoming("deepseek-v4-pro"))
    assert (decision.reused_from_provider_id, decision.reused_from_account_id) == (P, 9)


def test_decide_reuse_same_family_under_another_alias_is_covered():
    # Families are canonical: "Kimi-K2.6" and "kimi 2.6" both arrive as the family kimi-k2.6.
    decision = decide_reuse([acc(4, "active", "kimi-k2.6")], incoming("kimi-k2.6"))
    assert decision.action == ReuseAction.REUSE and not decision.missing_families
