"""Every error leaves as {"error": {"code", "message"}} — DRF's, Django's and the domain's."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.test import RequestFactory
from rest_framework.exceptions import Throttled
from rest_framework.test import APIClient

from batch_import.api.views import RunViewSet
from batch_import.errors import BatchImportError
from relay_project.urls import server_error
from tests.factories import ImportRunFactory

pytestmark = pytest.mark.django_db

RUNS = "/api/batch-import/runs"
SECRET = "sk-live-SECRET-do-not-leak-0123456789"


def envelope(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert set(body["error"]) <= {"code", "message", "fields"}
    return body["error"]


def test_400_malformed_json(api):
    response = api.post(RUNS, data="{not json", content_type="application/json")
    error = envelope(response, 400, "invalid_request")
    assert "JSON parse error" in error["message"]


def test_400_validation_error_has_fields(api, run_body):
    error = envelope(api.post(RUNS, run_body(mode="fast"), format="json"), 400, "invalid_request")
    assert set(error["fields"]) == {"mode"}


def test_401_without_credentials_with_www_authenticate(anon):
    response = anon.get(RUNS)
    error = envelope(response, 401, "unauthorized")
    assert error["message"] == "Authentication credentials were not provided."
    assert response["WWW-Authenticate"] == "Token"


def test_401_with_a_wrong_token(anon):
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    envelope(anon.get(RUNS), 401, "unauthorized")


def test_403_session_post_without_csrf(user, run_body):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(RUNS).status_code == 200  # a session reads fine
    error = envelope(client.post(RUNS, run_body(), format="json"), 403, "forbidden")
    assert "CSRF" in error["message"]


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_404_unknown_api_route_any_method(api, method):
    response = getattr(api, method)("/api/no/such/route")
    error = envelope(response, 404, "not_found")
    assert error["message"] == "no API route matches /api/no/such/route"


def test_404_unknown_api_route_even_anonymous(anon):
    envelope(anon.post("/api/nothing-here"), 404, "not_found")


def test_404_id_that_cannot_be_an_id(api):
    envelope(api.get(f"{RUNS}/not.an.id"), 404, "not_found")
    envelope(api.get(f"{RUNS}/{'x' * 65}"), 404, "not_found")


@pytest.mark.parametrize("path", [f"{RUNS}/a%0Ab", f"{RUNS}/%C2%91/items", "/api/%F0%9F%92%A5"])
def test_404_for_odd_characters_in_the_path(api, path):
    envelope(api.get(path), 404, "not_found")


def test_404_trailing_slash_is_not_redirected(api):
    envelope(api.get(f"{RUNS}/"), 404, "not_found")


def test_405_method_not_allowed_keeps_allow_header(api):
    response = api.put(RUNS, {}, format="json")
    error = envelope(response, 405, "invalid_request")
    assert error["message"] == 'Method "PUT" not allowed.'
    assert "POST" in response["Allow"]


def test_406_not_acceptable(api):
    envelope(api.get(RUNS, HTTP_ACCEPT="text/html"), 406, "invalid_request")


def test_409_conflict(api):
    run = ImportRunFactory(state="failed")
    envelope(api.post(f"{RUNS}/{run.run_id}/cancel"), 409, "conflict")


def test_415_unsupported_media_type(api):
    response = api.post(RUNS, data="host_id=1", content_type="application/x-www-form-urlencoded")
    envelope(response, 415, "invalid_request")


def test_429_throttled_keeps_retry_after(api, monkeypatch):
    def throttled(self, request):
        raise Throttled(wait=7)

    monkeypatch.setattr(RunViewSet, "list", throttled)
    response = api.get(RUNS)
    envelope(response, 429, "invalid_request")
    assert response["Retry-After"] == "7"


def test_500_unexpected_exception_leaks_nothing(api, run_body, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError(f"database said: key={SECRET}")

    monkeypatch.setattr("batch_import.services.run_start", explode)
    response = api.post(RUNS, run_body(), format="json")
    error = envelope(response, 500, "internal_error")
    assert error["message"] == "internal error; it has been logged"
    assert SECRET not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    assert any(record.levelname == "ERROR" for record in caplog.records)


def test_500_on_a_read_endpoint(api, monkeypatch):
    def explode(run_id):
        raise KeyError("boom")

    monkeypatch.setattr("batch_import.api.views.run_get", explode)
    envelope(api.get(f"{RUNS}/run_x"), 500, "internal_error")


def test_django_validation_error_from_a_service_is_400(api, run_body, monkeypatch):
    def invalid(**kwargs):
        raise DjangoValidationError({"mode": ["bad mode"]})

    monkeypatch.setattr("batch_import.services.run_start", invalid)
    error = envelope(api.post(RUNS, run_body(), format="json"), 400, "invalid_request")
    assert error["fields"] == {"mode": "bad mode"}


def test_other_domain_error_is_400(api, run_body, monkeypatch):
    def refuse(**kwargs):
        raise BatchImportError("cannot import into this host")

    monkeypatch.setattr("batch_import.services.run_start", refuse)
    error = envelope(api.post(RUNS, run_body(), format="json"), 400, "invalid_request")
    assert error["message"] == "cannot import into this host"


def test_django_last_resort_500_is_json_for_api_paths():
    response = server_error(RequestFactory().get("/api/batch-import/runs"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b'"internal_error"' in response.content


def test_django_last_resort_500_stays_html_for_pages():
    response = server_error(RequestFactory().get("/batch-import/runs"))
    assert response.status_code == 500
    assert "json" not in response["Content-Type"]
