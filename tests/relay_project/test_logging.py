from __future__ import annotations

import json
import logging

from relay_project.crypto import Secret
from relay_project.logging import (
    JsonFormatter,
    LogContextFilter,
    RedactSecretsFilter,
    TextFormatter,
    log_context,
)


def _record(message: str, *args, exc_info=None) -> logging.LogRecord:
    record = logging.LogRecord("batch_import.x", logging.INFO, "f", 1, message, args, exc_info)
    LogContextFilter().filter(record)
    RedactSecretsFilter().filter(record)
    return record


def test_context_fields_reach_every_line_inside_the_block():
    with log_context(run_id="run_1", item_id="itm_1"), log_context(stage="probe", attempt=2):
        inside = _record("probing")
    outside = _record("after")
    document = json.loads(JsonFormatter().format(inside))
    assert document["run_id"] == "run_1"
    assert document["item_id"] == "itm_1"
    assert (document["stage"], document["attempt"]) == ("probe", 2)
    assert document["message"] == "probing"
    assert "run_id" not in json.loads(JsonFormatter().format(outside))
    text = TextFormatter().format(inside)
    assert text.endswith("probing [run_id=run_1 item_id=itm_1 stage=probe attempt=2]")


def test_a_held_secret_is_masked_whatever_its_shape():
    key = Secret("Zq9xUPSTREAMkeyWithNoPrefix")
    record = _record("upstream answered for %s", key.reveal())
    assert "Zq9xUPSTREAM" not in record.getMessage()
    assert "Zq9xUPSTREAM" not in JsonFormatter().format(record)


def test_secrets_in_a_traceback_are_masked():
    try:
        raise RuntimeError("header Authorization: Bearer sk-live-0123456789")
    except RuntimeError as exc:
        record = _record("failed", exc_info=(type(exc), exc, exc.__traceback__))
    formatted = JsonFormatter().format(record)
    assert "0123456789" not in formatted
    assert "RuntimeError" in json.loads(formatted)["exc"]
