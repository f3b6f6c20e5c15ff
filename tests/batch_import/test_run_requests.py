from __future__ import annotations

import pytest

from batch_import.errors import InvalidRequest
from batch_import.run_requests import parse_entry_lines, validate_run_request
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db


def request(host, **overrides):
    data = {
        "host_id": host.pk,
        "mode": "partial",
        "access_mode": "subscription",
        "subscription_users": ["ops@example.com"],
        "subscription_days": 30,
        "entries": [{"base_url": "https://relay.example.com/v1", "api_key": "sk-1"}],
    }
    data.update(overrides)
    return data


def errors_of(data):
    with pytest.raises(InvalidRequest) as caught:
        validate_run_request(data)
    return caught.value.errors


def test_valid_subscription_request_is_typed_and_keys_are_secret():
    host = HostFactory()
    req = validate_run_request(
        request(
            host,
            entries=[
                {
                    "base_url": " https://a.example.com ",
                    "api_key": "sk-1",
                    "requested_models": ["kimi-k2.6", "kimi-k2.6"],
                }
            ],
        )
    )
    assert req.host_id == host.pk and req.subscription_days == 30
    assert req.entries[0].base_url == "https://a.example.com"
    assert req.entries[0].requested_models == ("kimi-k2.6",)
    assert "sk-1" not in repr(req)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"host_id": None}, "host_id"),
        ({"host_id": 999999}, "host_id"),
        ({"mode": "fast"}, "mode"),
        ({"access_mode": None}, "access_mode"),
        ({"subscription_users": []}, "subscription_users"),
        ({"subscription_users": ["not-an-email"]}, "subscription_users[0]"),
        ({"subscription_days": None}, "subscription_days"),
        ({"subscription_days": 0}, "subscription_days"),
        ({"access_mode": "self_service", "probe_api_key": ""}, "probe_api_key"),
        ({"entries": []}, "entries"),
        ({"entries": [{"base_url": "ftp://x", "api_key": "k"}]}, "entries[0].base_url"),
        ({"entries": [{"base_url": "https://x.example", "api_key": ""}]}, "entries[0].api_key"),
        ({"confirm_wait_timeout_sec": "soon"}, "confirm_wait_timeout_sec"),
    ],
)
def test_bad_fields_are_named(overrides, field):
    assert field in errors_of(request(HostFactory(), **overrides))


def test_entry_errors_carry_their_index():
    entries = [{"base_url": "https://ok.example", "api_key": "k"}] * 3
    entries.append({"base_url": "not-a-url", "api_key": "k"})
    errors = errors_of(request(HostFactory(), entries=entries))
    assert errors == {"entries[3].base_url": "must start with http:// or https://"}


def test_self_service_needs_no_subscription_fields():
    req = validate_run_request(
        request(
            HostFactory(),
            access_mode="self_service",
            subscription_users=None,
            subscription_days=None,
            probe_api_key="sk-user",
        )
    )
    assert req.probe_api_key.reveal() == "sk-user" and req.subscription_users == ()


def test_http_urls_need_the_insecure_switch(settings):
    settings.RELAY_ALLOW_INSECURE_UPSTREAMS = False
    data = request(HostFactory(), entries=[{"base_url": "http://x.example", "api_key": "k"}])
    assert "https" in errors_of(data)["entries[0].base_url"]


def test_parse_entry_lines_handles_bom_crlf_comments_blanks_and_duplicates():
    text = (
        "\ufeff# pasted list\r\n"
        "  https://a.example/v1 , sk-a , kimi-k2.6|glm-4.5  \r\n"
        "\r\n"
        "https://b.example,sk-b\r\n"
        "https://b.example,sk-b\r\n"
        "just-a-url\r\n"
    )
    parsed = parse_entry_lines(text)
    assert parsed.entries == [
        {
            "base_url": "https://a.example/v1",
            "api_key": "sk-a",
            "requested_models": ["kimi-k2.6", "glm-4.5"],
        },
        {"base_url": "https://b.example", "api_key": "sk-b", "requested_models": []},
    ]
    assert parsed.duplicate_lines == [5]
    assert parsed.skipped_lines == 2
    assert parsed.errors == {"line 6": "expected url,key[,model|model]"}


@pytest.mark.django_db
def test_a_run_takes_up_to_ten_thousand_entries():
    host = HostFactory()
    entries = [
        {"base_url": f"https://u{i}.example.com/v1", "api_key": f"sk-key-{i:05d}"}
        for i in range(10_001)
    ]
    body = {
        "host_id": host.pk,
        "mode": "partial",
        "access_mode": "self_service",
        "probe_api_key": "sk-probe",
    }
    request = validate_run_request({**body, "entries": entries[:10_000]})
    assert len(request.entries) == 10_000
    with pytest.raises(InvalidRequest) as refused:
        validate_run_request({**body, "entries": entries})
    assert refused.value.errors["entries"] == "at most 10000 entries per run"
