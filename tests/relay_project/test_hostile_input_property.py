"""Hostile input, property-based (issue #15): random unicode, very long lines and malformed
JSON through the API, the start form and the CLI never give a 500 or a traceback and never
leave a half-written run."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from batch_import.models import ImportRun, ImportRunItem
from relay_project.models import ApiToken
from tests.factories import HostFactory

pytestmark = pytest.mark.django_db
PROPERTY = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Lines an operator might paste, and what a hostile one would: any unicode, control
# characters, very long lines, lines that almost parse.
hostile_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50).map(lambda s: s * 40),
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "https://a.example/v1",
                    "http://[::1",
                    "https://b.example:99999",
                    "ftp://x",
                    "",
                    "https://" + "h" * 300 + ".example",
                ]
            ),
            st.text(max_size=80),
        ),
        max_size=5,
    ).map(lambda pairs: "\n".join(f"{url},{key}" for url, key in pairs)),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@pytest.fixture
def host():
    return HostFactory()


@pytest.fixture
def api_client(db):
    user = get_user_model().objects.create_user(username="fuzz-api", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user)}")
    return client


def assert_whole_runs_only():
    for run in ImportRun.objects.all():
        assert run.items.count() == run.total_items  # never a run without its items


@PROPERTY
@given(body=json_values, entries=st.lists(json_values, max_size=3))
def test_the_api_answers_random_json_without_a_server_error(api_client, host, body, entries):
    request = body if not isinstance(body, dict) else {**body, "entries": entries}
    if isinstance(request, dict):
        request.setdefault("host_id", host.pk)
    answer = api_client.post("/api/batch-import/runs", request, format="json")
    assert answer.status_code < 500, answer.content
    assert "error" in answer.json() or answer.status_code in (200, 201)
    assert_whole_runs_only()


@PROPERTY
@given(raw=st.binary(max_size=400))
def test_the_api_answers_random_bytes_without_a_server_error(api_client, raw):
    answer = api_client.post("/api/batch-import/runs", data=raw, content_type="application/json")
    assert answer.status_code in (400, 413, 415), answer.content
    assert json.loads(answer.content)["error"]["code"]
    assert not ImportRun.objects.exists()


@PROPERTY
@given(text=hostile_text, users=st.text(max_size=60))
def test_the_start_form_answers_random_lines_without_a_server_error(client, host, text, users):
    staff = get_user_model().objects.get_or_create(username="fuzz-form", is_staff=True)[0]
    client.force_login(staff)
    before = ImportRun.objects.count()
    answer = client.post(
        "/batch-import/runs/new",
        {
            "host_id": host.pk,
            "mode": "partial",
            "access_mode": "subscription",
            "subscription_users": users,
            "subscription_days": 30,
            "entries": text,
        },
    )
    assert answer.status_code in (200, 302)
    if answer.status_code == 200:  # refused: nothing was written
        assert ImportRun.objects.count() == before
    assert_whole_runs_only()


@PROPERTY
@given(entry=hostile_text)
def test_the_cli_refuses_random_entries_with_a_command_error(host, entry):
    before = ImportRunItem.objects.count()
    try:
        call_command(
            "batch_import",
            "--host-id",
            str(host.pk),
            "--access-mode",
            "self_service",
            "--probe-api-key",
            "sk-probe",
            "--confirm-wait-timeout",
            "0",
            "--entry",
            entry,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    except CommandError as exc:
        assert exc.returncode in (3, 64)
        assert ImportRunItem.objects.count() == before
    except SystemExit as exc:  # a run started (an entry that parsed): its exit code says how
        assert exc.code in (0, 1, 2, 4)
    assert_whole_runs_only()
