"""Property-based conformance: schemathesis drives the live API (in-process WSGI) from
docs/openapi.yaml and checks that nothing answers 5xx or breaks the documented schema.

Every check runs on every operation, positive_data_acceptance included: the schema is as
strict as the server (patterns of ``relay_project.inputs``, enums, lengths; 404/409/413/415
documented where the server answers them, 422 where a model pack's content breaks a rule), so
a schema-valid request is accepted and an invalid one refused.

Seeded and bounded: hypothesis runs derandomized with 30 examples per operation on top of the
coverage phase, about 2,200 requests, ~50 s of CPU (measured 2026-12-04; wall time depends on
the machine's load), plus ~25 s to build the coverage phase's cases when the module is
collected. The same seed always sends the same requests. `make test` runs it in its PostgreSQL
run alone (the SQLite run leaves it out when PostgreSQL answers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from batch_import.api.pagination import ItemPagination, LegacyBatchPagination, RunPagination
from batch_import.models import LegacyImportBatch
from hosts import services
from hosts.api.views import HostPagination
from hosts.models import Host
from hosts.services import ProbeOutcome
from hosts.sub2api.types import HostCapabilities
from providers.api.views import ProviderPagination
from relay_project.api.pagination import MAX_BIGINT, MAX_CURSOR_LENGTH, Key, Keyset
from relay_project.models import ApiToken
from relay_project.wsgi import application
from tests.factories import (
    HostFactory,
    ImportRunFactory,
    ImportRunItemEventFactory,
    ImportRunItemFactory,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def _key_values(key: Key) -> st.SearchStrategy:
    if key.kind is datetime:
        return st.datetimes(timezones=st.just(UTC))
    if key.kind is int:
        return st.integers(min_value=-MAX_BIGINT, max_value=MAX_BIGINT)
    return st.text(max_size=40).filter(lambda text: "\x00" not in text)


def _cursors(keyset: Keyset) -> st.SearchStrategy[str]:
    """Cursors as the server issues them (the sort key of some row, encoded), for any row that
    could exist: an opaque cursor cannot be drawn from a pattern."""
    values = st.tuples(*(_key_values(key) for key in keyset.keys))
    return values.map(keyset.encode_values).filter(lambda c: len(c) <= MAX_CURSOR_LENGTH)


for pagination in (
    RunPagination,
    ItemPagination,
    LegacyBatchPagination,
    HostPagination,
    ProviderPagination,
):
    schemathesis.openapi.format(pagination.keyset.cursor_format, _cursors(pagination.keyset))

# Constants: literal strings lifted from our Python source would be sent as cursors, and a
# custom format asserts nothing in JSON Schema; the values drawn for it come from its strategy.
# Checks: a body over RELAY_MAX_REQUEST_BYTES is refused with the documented 413 whatever it holds
# (a schema cannot bound a body's bytes): a right answer to valid and invalid data alike.
CONFIG = SchemathesisConfig.from_dict(
    {
        "analysis": {"constants": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "413"]
            },
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "413",
                    "415",
                    "422",
                ]
            },
        },
        # A pack is valid by its content (pack.json, checksums, the host range), which no
        # schema can describe: a well-formed request carrying a bad pack is a documented 422,
        # one naming a folder that does not exist a 404. tests/model_packs installs real packs.
        "operations": [
            {
                "include-operation-id": "packs_install",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "413", "422"]
                    }
                },
            }
        ],
    }
)
schema = schemathesis.openapi.from_path(DOC, config=CONFIG)
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


def answered_like_sub2api(host: Host, *, transport=None) -> ProbeOutcome:
    """The one host call of registration and re-probing, answered without I/O: everything
    before it (validation, the name conflict) and after it (saving) is the real service."""
    capabilities = HostCapabilities(version="0.1.126", capabilities={"groups": True})
    return ProbeOutcome(
        status=Host.Status.SUPPORTED, version=capabilities.version, capabilities=capabilities
    )


@pytest.fixture
def api_world(db, keep_test_connection, django_user_model, monkeypatch, settings):
    """Some rows to find, a token to send, and no waiting or host I/O behind the API."""
    settings.RELAY_API_MAX_WAIT_SEC = 0
    monkeypatch.setattr(services, "probe_host", answered_like_sub2api)

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
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, api_world):
    # Every check, positive_data_acceptance included: a schema-valid request is accepted, or
    # answered 404/409 when it names what does not exist or clashes with what does.
    case.call_and_validate(headers=api_world)
