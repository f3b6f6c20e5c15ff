from __future__ import annotations

import re

import pytest

from batch_import.identity import api_key_fingerprint, normalize_provider_id


@pytest.mark.parametrize(
    ("url", "prefix"),
    [
        ("https://kimi.a7m.com.cn/v1", "kimi-a7m"),
        ("https://www.api.deepseek.com", "api-deepseek"),
        ("https://API.SiliconFlow.cn:443/v1/", "api-siliconflow"),
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("http://127.0.0.1:8081", "127-0-0-1"),
    ],
)
def test_normalize_provider_id_basic(url, prefix):
    provider_id = normalize_provider_id(url)
    assert re.fullmatch(rf"{re.escape(prefix)}-[0-9a-f]{{8}}", provider_id)


def test_normalize_provider_id_ignores_trailing_slash_v1_case_and_default_port():
    same = {
        normalize_provider_id(u)
        for u in (
            "https://relay.example.com",
            "https://relay.example.com/",
            "https://Relay.Example.com/v1",
            "https://relay.example.com:443/v1/",
        )
    }
    assert len(same) == 1


def test_normalize_provider_id_different_paths_and_ports_differ():
    ids = {
        normalize_provider_id("https://relay.example.com/a/v1"),
        normalize_provider_id("https://relay.example.com/b/v1"),
        normalize_provider_id("http://127.0.0.1:8081"),
        normalize_provider_id("http://127.0.0.1:8082"),
    }
    assert len(ids) == 4


def test_an_international_host_is_one_provider_however_it_is_spelled():
    """Unicode and its ASCII (IDNA) form name the same host: one provider, not two."""
    unicode_id = normalize_provider_id("https://中转.例子.cn/v1")
    assert unicode_id == normalize_provider_id("https://xn--fiqq40n.xn--fsqu00a.cn")
    assert unicode_id.startswith("xn--fiqq40n-xn--fsqu00a-")


def test_api_key_fingerprint_is_short_display_form():
    assert re.fullmatch(r"sha256:[0-9a-f]{8}", api_key_fingerprint("sk-abc"))
    assert api_key_fingerprint("sk-abc") != api_key_fingerprint("sk-abd")
