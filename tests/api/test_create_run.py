"""POST /api/batch-import/runs: validation into the envelope, conditional fields, idempotency."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRun

pytestmark = pytest.mark.django_db

RUNS = "/api/batch-import/runs"


def post(api, body, **headers):
    return api.post(RUNS, body, format="json", **headers)


def error_of(response):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    return error


def test_bad_entry_url_names_the_field(api, run_body):
    entries = [{"base_url": f"https://r{i}.example.com", "api_key": f"sk-{i}"} for i in range(3)]
    entries.append({"base_url": "ftp://nope", "api_key": "sk-3"})
    error = error_of(post(api, run_body(entries=entries)))
    assert error["fields"] == {"entries[3].base_url": "must start with http:// or https://"}
    assert error["message"] == "entries[3].base_url: must start with http:// or https://"
    assert not ImportRun.objects.exists()


def test_subscription_requires_users_and_days(api, run_body):
    body = run_body()
    del body["subscription_users"], body["subscription_days"]
    error = error_of(post(api, body))
    assert error["fields"] == {
        "subscription_users": "is required when access_mode=subscription",
        "subscription_days": "is required",
    }


def test_subscription_users_must_be_emails(api, run_body):
    error = error_of(post(api, run_body(subscription_users=["ops@example.com", "nope"])))
    assert error["fields"] == {"subscription_users[1]": "not a valid email"}


def test_self_service_requires_probe_api_key(api, run_body):
    body = run_body(access_mode="self_service")
    error = error_of(post(api, body))
    assert error["fields"] == {"probe_api_key": "is required when access_mode=self_service"}


def test_self_service_with_probe_api_key_is_created(api, run_body):
    body = run_body(access_mode="self_service", probe_api_key="sk-probe")
    del body["subscription_users"], body["subscription_days"]
    response = post(api, body)
    assert response.status_code == 201
    run = ImportRun.objects.with_counts().get(pk=response.json()["run_id"])
    assert (run.access_mode, run.subscription_users) == ("self_service", [])
    assert run.probe_api_key.reveal() == "sk-probe"
    assert "sk-probe" not in response.content.decode()


def test_unknown_host_is_404_naming_the_field(api, run_body):
    response = post(api, run_body(host_id=999999))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert response.json()["error"]["fields"] == {"host_id": "no registered host with id 999999"}


def test_unknown_host_with_another_bad_field_is_400(api, run_body):
    entries = [{"base_url": "ftp://relay.example", "api_key": "sk-1"}]
    response = post(api, run_body(host_id=999999, entries=entries))
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"host_id", "entries[0].base_url"}


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"host_id": "1"}, "host_id"),
        ({"host_id": True}, "host_id"),
        ({"mode": "fast"}, "mode"),
        ({"access_mode": 1}, "access_mode"),
        ({"subscription_days": "30"}, "subscription_days"),
        ({"subscription_days": 0}, "subscription_days"),
        ({"confirm_wait_timeout_sec": 601}, "confirm_wait_timeout_sec"),
        ({"entries": []}, "entries"),
        ({"entries": "https://a.example,sk-a"}, "entries"),
        ({"entries": [{"base_url": "https://a.example", "api_key": 12345}]}, "entries[0].api_key"),
        ({"entries": [{"base_url": "https://a.example"}]}, "entries[0].api_key"),
        ({"entries": [{"base_url": "x" * 501, "api_key": "k"}]}, "entries[0].base_url"),
        ({"entries": ["https://a.example"]}, "entries[0]"),
        (
            {
                "entries": [
                    {"base_url": "https://a.example", "api_key": "k", "requested_models": [1]}
                ]
            },
            "entries[0].requested_models[0]",
        ),
    ],
)
def test_type_and_size_errors_name_the_field(api, run_body, override, field):
    error = error_of(post(api, run_body(**override)))
    assert field in error["fields"], error
    assert error["message"].startswith(f"{next(iter(error['fields']))}: ")


def test_body_must_be_an_object(api):
    error = error_of(post(api, ["not", "an", "object"]))
    assert set(error["fields"]) == {"body"}


def test_idempotency_key_same_body_answers_the_same_run(api, run_body):
    first = post(api, run_body(), HTTP_IDEMPOTENCY_KEY="import-42")
    second = post(api, run_body(), HTTP_IDEMPOTENCY_KEY="import-42")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["run_id"] == second.json()["run_id"]
    assert ImportRun.objects.count() == 1


def test_idempotency_key_with_another_body_is_409(api, run_body):
    post(api, run_body(), HTTP_IDEMPOTENCY_KEY="import-43")
    response = post(api, run_body(mode="strict"), HTTP_IDEMPOTENCY_KEY="import-43")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "Idempotency-Key" in response.json()["error"]["message"]
    assert ImportRun.objects.count() == 1


def test_without_idempotency_key_each_post_is_a_new_run(api, run_body):
    assert post(api, run_body()).status_code == 201
    assert post(api, run_body()).status_code == 201
    assert ImportRun.objects.count() == 2


@pytest.mark.parametrize("key", ["x" * 256, "caf\u00e9"])
def test_bad_idempotency_key_is_400(api, run_body, key):
    error = error_of(post(api, run_body(), HTTP_IDEMPOTENCY_KEY=key))
    assert set(error["fields"]) == {"Idempotency-Key"}
    assert not ImportRun.objects.exists()


def test_duplicate_entries_collapse_into_one_item(api, run_body):
    entries = [
        {"base_url": "https://a.example.com/v1", "api_key": "sk-a"},
        {"base_url": "https://a.example.com/v1", "api_key": "sk-a"},
    ]
    response = post(api, run_body(entries=entries))
    assert response.status_code == 201 and response.json()["total_items"] == 1
    item = ImportRun.objects.with_counts().get(pk=response.json()["run_id"]).items.get()
    assert item.base_url == "https://a.example.com/v1" and item.api_key.reveal() == "sk-a"


@pytest.mark.parametrize(
    ("entry", "field", "problem"),
    [
        ({"base_url": "https://a.example", "api_key": "sk-abcé"}, "api_key", "contains a non"),
        ({"base_url": "https://a.example", "api_key": "sk-ab\u200b"}, "api_key", "contains an"),
        ({"base_url": "https://a.example:99999", "api_key": "sk-a"}, "base_url", "port must be"),
        ({"base_url": "https://a.example:abc", "api_key": "sk-a"}, "base_url", "port must be"),
        ({"base_url": "https://[::1", "api_key": "sk-a"}, "base_url", "is not a valid URL"),
        ({"base_url": f"https://{'a' * 480}.com", "api_key": "sk-a"}, "base_url", "has a host"),
        ({"base_url": "https://u:sk-x@a.example", "api_key": "sk-a"}, "base_url", "must not"),
    ],
)
def test_hostile_entries_are_a_400_naming_the_field_and_nothing_is_written(
    api, run_body, entry, field, problem
):
    entries = [{"base_url": "https://ok.example", "api_key": "sk-ok"}, entry]
    error = error_of(post(api, run_body(entries=entries)))
    assert error["fields"][f"entries[1].{field}"].startswith(problem)
    assert "sk-ab" not in str(error) and "sk-x" not in str(error)
    assert not ImportRun.objects.exists()


def test_a_key_with_a_nul_byte_is_a_400_that_echoes_no_part_of_it(api, run_body):
    # Issue #15, finding 6: such a key once reached the worker and its tail landed in last_error.
    entries = [{"base_url": "https://ok.example", "api_key": "sk-head\x00tail-secret"}]
    response = post(api, run_body(entries=entries))
    assert response.status_code == 400
    assert "entries[0].api_key" in response.json()["error"]["fields"]
    assert "tail-secret" not in response.content.decode() and "sk-head" not in str(response.json())
    assert not ImportRun.objects.exists()


# 10,000 entries stored in one request (≈ 5 s on an idle machine): the suite's 120 s guard
# against hangs was reached on a slow, loaded one.
@pytest.mark.timeout(600)
def test_a_run_of_max_entries_fits_the_request_size_limit(api, run_body):
    """MAX_ENTRIES entries with realistic keys and models fit RELAY_MAX_REQUEST_BYTES' default
    (the body is over Django's own 2.5 MiB default, which would refuse it with a 413)."""
    import json

    from batch_import.run_requests import MAX_ENTRIES

    entries = [
        {
            "base_url": f"https://relay-{n:05d}.example-provider.com/v1",
            "api_key": f"sk-{n:05d}-" + "k" * 120,
            "requested_models": ["kimi-k2.6", "glm-4.5-air", "deepseek-v3.1-terminus"],
        }
        for n in range(MAX_ENTRIES)
    ]
    body = json.dumps(run_body(entries=entries))
    assert len(body) > 2.5 * 1024 * 1024
    response = api.post(RUNS, body, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["total_items"] == MAX_ENTRIES
