"""The pure rules of providers.state, as tables."""

from __future__ import annotations

import pytest

from providers.state import (
    ALLOWED,
    AccountHealth,
    access_closure,
    derive_state,
    drift,
    host_access_closure,
    path_to,
)

A = AccountHealth


@pytest.mark.parametrize(
    ("latest", "expected"),
    [
        ({}, "not_configured"),
        ({"subscription": True}, "subscription_ready"),
        ({"self_service": True}, "self_service_ready"),
        ({"subscription": True, "self_service": True}, "fully_ready"),
        ({"subscription": True, "self_service": False}, "subscription_ready"),
        ({"subscription": False, "self_service": True}, "self_service_ready"),
        ({"subscription": False}, "broken"),
        ({"subscription": False, "self_service": False}, "broken"),
    ],
)
def test_access_closure(latest, expected):
    assert access_closure(latest) == expected


def test_host_closure_needs_every_checked_provider_to_pass():
    assert host_access_closure([{"subscription": True}, {"subscription": True}]) == (
        "subscription_ready"
    )
    assert host_access_closure([{"subscription": True}, {"subscription": False}]) == "broken"
    assert host_access_closure([{"subscription": True}, {"self_service": True}]) == "fully_ready"
    assert host_access_closure([]) == "not_configured"


@pytest.mark.parametrize(
    ("accounts", "drifted", "probed", "expected"),
    [
        ([A("active", True)], True, True, "drifted"),
        ([], False, True, "validated"),
        ([], False, False, "failed"),
        ([A("removed", True)], False, True, "validated"),
        ([A("active", None)], False, True, "installed"),
        ([A("active", True)], False, True, "active"),
        ([A("active", True), A("failing", False)], False, True, "degraded"),
        ([A("failing", False)], False, True, "failed"),
        ([A("failing", False, transient=True)], False, True, "degraded"),
        ([A("disabled_by_policy", False)], False, True, "failed"),
        ([A("active", True), A("disabled_on_host", True)], False, True, "degraded"),
        ([A("active", True), A("missing", None)], False, True, "active"),
    ],
)
def test_derive_state(accounts, drifted, probed, expected):
    assert derive_state(accounts, drifted=drifted, probed=probed)[0] == expected


@pytest.mark.parametrize(
    ("current", "target", "steps"),
    [
        ("discovered", "active", ["validated", "installed", "active"]),
        ("validated", "installed", ["installed"]),
        ("active", "degraded", ["degraded"]),
        ("failed", "active", ["active"]),
        ("active", "discovered", ["discovered"]),
    ],
)
def test_path_to(current, target, steps):
    assert path_to(current, target) == steps


def test_allowed_table_follows_seed_002():
    assert "active" not in ALLOWED["discovered"]  # it walks the path instead
    assert "disabled" in ALLOWED["active"] and "disabled" in ALLOWED["drifted"]
    assert all("disabled" in targets for state, targets in ALLOWED.items() if state != "disabled")
    assert "discovered" not in ALLOWED["disabled"]
    assert {"failed", "drifted", "active"} <= ALLOWED["degraded"]


def test_drift_lists_each_changed_field_with_both_values():
    assert drift({"a": 1, "b": [1]}, {"a": 1, "b": [1, 2], "c": "x"}) == {
        "b": {"expected": [1], "found": [1, 2]},
        "c": {"expected": None, "found": "x"},
    }
    assert drift({"a": 1}, {"a": 1}) == {}
