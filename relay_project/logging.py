"""A logging filter that masks anything shaped like a key, as a last line of defence."""

from __future__ import annotations

import logging
import re

SECRET_PATTERN = re.compile(r"\b(sk-|admin-|Bearer\s+)([A-Za-z0-9._\-]{6,})")


def redact(text: str) -> str:
    return SECRET_PATTERN.sub(lambda m: f"{m.group(1)}***", text)


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
