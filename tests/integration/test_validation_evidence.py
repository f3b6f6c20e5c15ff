"""Completion evidence (seed 003): every validated item keeps what the gateway answered —
HTTP status, model, latency, a short preview — and the API, the CLI JSON and the item page
show the same proof; an item that never reached validation has none."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from batch_import import cli
from batch_import.stages.validate import completion_evidence
from tests.integration.pipeline import drive, entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_evidence_is_short_and_on_one_line():
    evidence = completion_evidence("m", status=200, text="pong\n\n" + "x" * 200)
    assert evidence["preview"].startswith("pong x") and len(evidence["preview"]) == 80
    assert (evidence["http_status"], evidence["latency_ms"]) == (200, None)


def test_a_validated_item_shows_its_evidence_everywhere(host_simulator, upstream_factory, client):
    good = upstream_factory(models=("kimi-k2.6",))
    revoked = upstream_factory(models=("glm-4.5",), api_key="sk-the-real-key")
    run = drive(start(register(host_simulator), [entry(good), entry(revoked, key="sk-revoked")]))
    ok, dead = run.items.order_by("position")
    assert ok.access_status == "active"
    evidence = ok.validation_evidence
    assert evidence["http_status"] == 200 and evidence["model"]
    assert isinstance(evidence["latency_ms"], int) and evidence["preview"]
    assert dead.validation_evidence is None  # broken at probe: no gateway proof

    user = get_user_model().objects.create_user(username="ops", is_staff=True)
    api = APIClient()
    api.force_authenticate(user)
    item = api.get(f"/api/batch-import/runs/{run.run_id}/items/{ok.item_id}").json()
    assert item["validation_evidence"] == evidence
    documents = {i["item_id"]: i for i in cli.run_document(run)["items"]}
    assert documents[ok.item_id]["validation_evidence"] == evidence
    assert documents[dead.item_id]["validation_evidence"] is None

    client.force_login(user)
    html = client.get(f"/batch-import/runs/{run.run_id}/items/{ok.item_id}").content.decode()
    assert "data-evidence" in html and evidence["preview"] in html
    html = client.get(f"/batch-import/runs/{run.run_id}/items/{dead.item_id}").content.decode()
    assert "data-evidence" not in html
