"""One set of rules for pasted URLs and keys: every hostile or broken value is named."""

from __future__ import annotations

import pytest

from relay_project.inputs import key_problem, text_problem, url_problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://relay.example.com/v1", None),
        ("http://127.0.0.1:8080", None),
        ("https://中文.example.com/v1", None),  # IDNA
        ("https://[2001:db8::1]:8443/v1", None),
        ("", "is required"),
        (None, "is required"),
        ("relay.example.com", "must start with http:// or https://"),
        ("ftp://relay.example.com", "must start with http:// or https://"),
        ("https://", "has no host name"),
        ("https://relay.example.com:99999", "port must be a number between 1 and 65535"),
        ("https://relay.example.com:abc", "port must be a number between 1 and 65535"),
        ("https://relay.example.com:0", "port must be a number between 1 and 65535"),
        ("https://[::1", "is not a valid URL"),
        ("https://" + "a" * 480 + ".com", "has a host name that is not valid"),
        ("https://" + "a" * 600 + ".com", "is longer than 500 characters"),
        ("https://x..example.com", "has a host name that is not valid"),
        ("https://A*", "has a host name that is not valid"),  # schemathesis found it accepted
        ("https://relay_1.example.com", "has a host name that is not valid"),
        ("https://-relay.example.com", "has a host name that is not valid"),
        ("https://xn--fiq228c.example.com/v1", None),  # the ASCII form of an IDN
        ("https://user:sk-secret@relay.example.com/v1", "must not contain user:password@"),
        ("https://sk-secret@relay.example.com/v1", "must not contain user:password@"),
        ("https://relay.example.com/v1?key=1", "must not have a query string or fragment"),
        ("https://relay.example.com/v1#x", "must not have a query string or fragment"),
        ("https://relay.example.com/\x00v1", "contains an invisible control character (U+0000)"),
        ("https://relay.exa mple.com", "contains white space"),
        ("https://relay.example.com\u200b/v1", "contains an invisible control character (U+200B)"),
    ],
)
def test_url_rules(value, problem):
    found = url_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sk-abc123", None),
        ("  sk-abc123  ", None),  # surrounding white space is trimmed, not an error
        ("", "is required"),
        ("   ", "is required"),
        (None, "is required"),
        ("sk-abc é", "contains white space at position 7"),
        ("sk-abcé", "contains a non-ASCII character (U+00E9) at position 7"),
        ("sk-\u0430bc", "contains a non-ASCII character (U+0430) at position 4"),  # Cyrillic а
        ("sk-abc\u200b", "contains an invisible control character (U+200B) at position 7"),
        ("sk-ab\x00cd", "contains an invisible control character (U+0000) at position 6"),
        ("sk-ab\tcd", "contains white space at position 6"),
        ("k" * 513, "is longer than 512 characters"),
    ],
)
def test_key_rules(value, problem):
    found = key_problem(value)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem), found
        assert "sk-ab" not in found  # the key is never echoed


def test_text_rules():
    assert text_problem("kimi-k2.6", max_length=200) is None
    assert text_problem("m" * 201, max_length=200) == "is longer than 200 characters"
    assert text_problem("gpt\x00-4", max_length=200) == "contains a control character"
