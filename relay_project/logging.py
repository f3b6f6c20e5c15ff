"""Log plumbing: secrets masked by one filter, item context on every line, text or JSON.

``log_context`` binds fields (``run_id``, ``item_id``, ``stage``, ``attempt``) for the code
running inside it; ``LogContextFilter`` copies them onto each record, so a pipeline line logged
deep inside an adapter still says which item it belongs to.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

SECRET_PATTERN = re.compile(r"\b(sk-|admin-|Bearer\s+|Token\s+)([A-Za-z0-9._\-]{6,})")
# Words long enough to be a key; each is looked up among the secrets this process has held.
_WORD = re.compile(r"[A-Za-z0-9._~+\-]{8,}")
_MAX_REMEMBERED = 200_000
MASK = "***"
CONTEXT_FIELDS = ("run_id", "item_id", "stage", "attempt")

_known_secrets: set[str] = set()

# Immutable default: a block binds a new mapping, it never mutates the one it found.
_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "relay_log_context", default=MappingProxyType({})
)


def remember_secret(value: str) -> None:
    """Called for every ``Secret`` the process holds, so its exact value is masked in logs
    whatever its shape (not every upstream key starts with ``sk-``)."""
    if len(value) >= 8 and len(_known_secrets) < _MAX_REMEMBERED:
        _known_secrets.add(value)


def redact(text: str) -> str:
    text = SECRET_PATTERN.sub(lambda m: f"{m.group(1)}{MASK}", text)
    if _known_secrets:
        text = _WORD.sub(lambda m: MASK if m.group() in _known_secrets else m.group(), text)
    return text


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Bind fields to every log record emitted inside the block (nested blocks add to them)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class LogContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            setattr(record, name, value)
        return True


class RedactSecretsFilter(logging.Filter):
    """The last line of defence: masks key-shaped text in the message and the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _context_of(record: logging.LogRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in CONTEXT_FIELDS if hasattr(record, name)}


class TextFormatter(logging.Formatter):
    """``time level logger message [run_id=… item_id=… stage=… attempt=…]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context_of(record)
        if not context:
            return line
        head, _, tail = line.partition("\n")
        fields = " ".join(f"{name}={value}" for name, value in context.items())
        return f"{head} [{fields}]" + (f"\n{tail}" if tail else "")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, context, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_of(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exc"] = record.exc_text
        return json.dumps(document, ensure_ascii=False, default=str)
