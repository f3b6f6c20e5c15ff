"""Property-based conformance: schemathesis drives the live API (in-process WSGI) from
docs/openapi.yaml and checks that nothing answers 5xx or breaks the documented schema.

Seeded and bounded: hypothesis runs derandomized with a fixed number of examples per
operation, so the run is reproducible and takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from batch_import.models import LegacyImportBatch
from relay_project.models import ApiToken
from relay_project.wsgi import application
from tests.factories import (
    HostFactory,
    ImportRunFactory,
    ImportRunItemEventFactory,
    ImportRunItemFactory,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
schema = schemathesis.openapi.from_path(DOC)
schema.app = application  # in-process WSGI: every request (and every re-sent probe) goes here


@pytest.fixture
def keep_test_connection():
    """The WSGI handler closes "old" connections around each request, which on PostgreSQL ends
    the test's transaction; Django's own test client switches that off the same way."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def api_world(db, keep_test_connection, django_user_model, settings):
    """Some rows to find, a token to send, no waiting; a host the API may probe for real (no
    sub2api answers at its address: it is refused at once, never retried)."""
    settings.RELAY_API_MAX_WAIT_SEC = 0
    settings.RELAY_HTTP_TIMEOUT = 1
    settings.RELAY_HTTP_RETRIES = 0

    user = django_user_model.objects.create_user(username="fuzz", is_staff=True)
    token = ApiToken.issue(user)
    host = HostFactory()
    run = ImportRunFactory(host=host)
    item = ImportRunItemFactory(run=run, current_stage="done", access_status="broken")
    ImportRunItemEventFactory(item=item, payload={"delay_ms": 500})
    ImportRunItemFactory(run=run)
    LegacyImportBatch.objects.create(host=host, run_id=run.run_id, mode="partial")
    return {"Authorization": f"Token {token}"}


@schema.parametrize()
@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, api_world):
    # positive_data_acceptance assumes schema-valid means acceptable; an opaque cursor or a
    # host_id of no registered host is schema-valid and rightly refused with 400.
    case.call_and_validate(headers=api_world, excluded_checks=[positive_data_acceptance])
