"""API error messages follow Accept-Language (#20): zh-hans or en, the default
settings.LANGUAGE_CODE; the machine codes and field paths stay English."""

from __future__ import annotations

import pytest

from batch_import.models import ImportRun
from tests.factories import ImportRunFactory

pytestmark = pytest.mark.django_db
RUNS = "/api/batch-import/runs"


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "mode: must be one of strict, partial"),
        ("zh-hans", "mode: 必须是以下之一:strict, partial"),
        (None, "mode: must be one of strict, partial"),  # no header: settings.LANGUAGE_CODE
    ],
)
def test_validation_error_message_in_the_callers_language(api, run_body, language, expected):
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    body = error(
        api.post(RUNS, run_body(mode="fast"), format="json", **headers), 400, "invalid_request"
    )
    assert body["message"] == expected
    assert list(body["fields"]) == ["mode"]


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "subscription_users: is required when access_mode=subscription"),
        ("zh-hans", "subscription_users: 订阅模式下必填"),
    ],
)
def test_domain_validation_error_in_the_callers_language(api, run_body, language, expected):
    response = api.post(
        RUNS, run_body(subscription_users=[]), format="json", HTTP_ACCEPT_LANGUAGE=language
    )
    assert error(response, 400, "invalid_request")["message"] == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "run run_missing does not exist"),
        ("zh-hans", "批次 run_missing 不存在"),
    ],
)
def test_not_found_in_the_callers_language(api, language, expected):
    response = api.get(f"{RUNS}/run_missing", HTTP_ACCEPT_LANGUAGE=language)
    assert error(response, 404, "not_found")["message"] == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "no API route matches /api/nope"), ("zh-hans", "没有与 /api/nope 匹配的 API 路由")],
)
def test_unknown_route_in_the_callers_language(api, language, expected):
    response = api.get("/api/nope", HTTP_ACCEPT_LANGUAGE=language)
    assert error(response, 404, "not_found")["message"] == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "run {run_id} is already completed"),
        ("zh-hans", "批次 {run_id} 已是「已完成」状态"),
    ],
)
def test_conflict_in_the_callers_language(api, language, expected):
    run = ImportRunFactory(state=ImportRun.State.COMPLETED)
    response = api.post(f"{RUNS}/{run.run_id}/cancel", HTTP_ACCEPT_LANGUAGE=language)
    assert error(response, 409, "conflict")["message"] == expected.format(run_id=run.run_id)
