"""No secret in any response: upstream keys, the probe key and host credentials appear only
as fingerprints, whatever endpoint answers and whether it succeeds or fails."""

from __future__ import annotations

import pytest

from batch_import.identity import api_key_fingerprint
from batch_import.models import ImportRun, LegacyImportBatch
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db

UPSTREAM_KEYS = ["sk-upstream-SECRET-aaaa1111", "sk-upstream-SECRET-bbbb2222"]
PROBE_KEY = "sk-probe-SECRET-cccc3333"
ADMIN_CREDENTIAL = "admin-" + "5ecre7" * 10 + "abcd"
SECRETS = [*UPSTREAM_KEYS, PROBE_KEY, ADMIN_CREDENTIAL]


def assert_clean(response):
    text = response.content.decode()
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked by {response.request['PATH_INFO']}"
    return response


@pytest.fixture
def secret_run(api):
    host = HostFactory(admin_credential=ADMIN_CREDENTIAL)
    body = {
        "host_id": host.pk,
        "mode": "partial",
        "access_mode": "self_service",
        "probe_api_key": PROBE_KEY,
        "entries": [
            {"base_url": "https://a.example.com/v1", "api_key": UPSTREAM_KEYS[0]},
            {"base_url": "https://b.example.com/v1", "api_key": UPSTREAM_KEYS[1]},
        ],
    }
    response = assert_clean(api.post("/api/batch-import/runs", body, format="json"))
    assert response.status_code == 201
    run = ImportRun.objects.with_counts().get(pk=response.json()["run_id"])
    batch = LegacyImportBatch.objects.get(run_id=run.run_id)
    run.items.update(legacy_batch=batch)
    return host, run, batch


def test_no_endpoint_answers_a_secret(api, secret_run):
    host, run, batch = secret_run
    items = list(run.items.order_by("position"))
    base = f"/api/batch-import/runs/{run.run_id}"
    gets = [
        "/api/batch-import/runs",
        f"/api/batch-import/runs?q={run.run_id}",
        base,
        f"{base}/items",
        *[f"{base}/items/{item.item_id}" for item in items],
        "/api/hosts",
        f"/api/hosts/{host.pk}",
        "/api/import-batches",
        f"/api/import-batches/{batch.pk}",
        "/api/schema/",
    ]
    for path in gets:
        assert assert_clean(api.get(path)).status_code == 200, path
    listed = api.get(f"{base}/items").json()["items"]
    assert {i["api_key_fingerprint"] for i in listed} == {
        api_key_fingerprint(key) for key in UPSTREAM_KEYS
    }
    assert assert_clean(api.post(f"{base}/cancel")).status_code == 200
    retried = api.post(f"{base}/items/{items[0].item_id}/retry")
    assert assert_clean(retried).status_code == 200


def test_errors_do_not_echo_secrets(api, secret_run):
    host, run, _ = secret_run
    bad = {
        "host_id": host.pk,
        "mode": "partial",
        "access_mode": "self_service",
        "probe_api_key": PROBE_KEY + " with space",
        "entries": [{"base_url": "ftp://nope", "api_key": UPSTREAM_KEYS[0] + " x"}],
    }
    response = assert_clean(api.post("/api/batch-import/runs", bad, format="json"))
    assert response.status_code == 400
    conflict = assert_clean(api.post(f"/api/batch-import/runs/{run.run_id}/cancel"))
    assert conflict.status_code in (200, 409)


def test_a_key_pasted_into_the_wrong_field_is_not_echoed(api, run_body):
    body = run_body(mode=UPSTREAM_KEYS[0], access_mode=PROBE_KEY)
    response = assert_clean(api.post("/api/batch-import/runs", body, format="json"))
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"mode", "access_mode"}
