"""The OpenAPI patterns of ``relay_project.inputs`` hold to the functions the server runs: a
value drawn from a pattern is accepted, and where a pattern is exact, a value outside it is
refused (so a schema-valid request is never refused, and a schema-invalid one never taken)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from relay_project.inputs import (
    ADMIN_KEY_PATTERN,
    EMAIL_PATTERN,
    KEY_PATTERN,
    URL_PATTERN,
    any_text_pattern,
    key_problem,
    text_pattern,
    text_problem,
    url_problem,
)

# Short strings heavy in the characters the rules are about: white space, controls, ASCII.
EDGY = st.text(
    alphabet=st.sampled_from(" \t\n\x00\x1c\x85\xa0\u2028\u3000\u200b\ufeffaZ0-@.!~é"),
    max_size=12,
)
PLAIN = settings(max_examples=150, deadline=None, derandomize=True)


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


@PLAIN
@given(st.one_of(EDGY, st.from_regex(KEY_PATTERN, fullmatch=True)))
def test_key_pattern_is_key_problem(value):
    assert _matches(KEY_PATTERN, value) == (key_problem(value) is None)


@PLAIN
@given(st.from_regex(ADMIN_KEY_PATTERN, fullmatch=True))
def test_admin_key_pattern_values_are_admin_keys(value):
    assert key_problem(value) is None and value.strip().startswith("admin-")


@PLAIN
@given(st.one_of(EDGY, st.from_regex(text_pattern(8), fullmatch=True)))
def test_text_pattern_is_a_stripped_non_blank_text_problem(value):
    stripped = value.strip()
    accepted = bool(stripped) and text_problem(stripped, max_length=8) is None
    assert _matches(text_pattern(8), value) == accepted


@PLAIN
@given(st.one_of(EDGY, st.from_regex(any_text_pattern(8), fullmatch=True)))
def test_any_text_pattern_is_stripped_non_blank_without_nul(value):
    stripped = value.strip()
    accepted = bool(stripped) and len(stripped) <= 8 and "\x00" not in value
    assert _matches(any_text_pattern(8), value) == accepted


@PLAIN
@given(st.from_regex(URL_PATTERN, fullmatch=True).filter(lambda url: len(url) <= 500))
def test_url_pattern_values_are_accepted_urls(value):
    assert url_problem(value) is None


@PLAIN
@given(st.from_regex(EMAIL_PATTERN, fullmatch=True).filter(lambda email: len(email) <= 254))
def test_email_pattern_values_are_django_emails(value):
    from django.core.validators import validate_email

    validate_email(value.lower())
