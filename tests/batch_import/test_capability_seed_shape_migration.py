"""Migration 0009 rewrites stored model features to seed 004's types, and back."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as global_apps

from tests.factories import ImportRunItemFactory

pytestmark = pytest.mark.django_db
migration = importlib.import_module("batch_import.migrations.0009_capability_profile_seed_shape")


def stored(**features):
    return {
        "transport_profile": {"supports_openai_models": True},
        "model_profiles": [{"raw_model_id": "m", "smoke_chat_ok": True, **features}, "junk"],
    }


def test_yes_no_become_booleans_and_unknown_stays():
    old = ImportRunItemFactory(
        capability_profile=stored(
            supports_stream="yes", supports_tools="no", supports_reasoning_fields="unknown"
        )
    )
    untouched = ImportRunItemFactory(capability_profile=None)
    migration.to_seed_shape(global_apps, None)
    old.refresh_from_db()
    model = old.capability_profile["model_profiles"][0]
    assert (model["supports_stream"], model["supports_tools"]) == (True, False)
    assert model["supports_reasoning_fields"] == "unknown" and model["smoke_chat_ok"] is True
    untouched.refresh_from_db()
    assert untouched.capability_profile is None

    migration.to_yes_no(global_apps, None)
    old.refresh_from_db()
    model = old.capability_profile["model_profiles"][0]
    assert (model["supports_stream"], model["supports_tools"]) == ("yes", "no")
