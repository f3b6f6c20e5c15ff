"""One reading of a pasted base URL per purpose (relay_project.base_urls), as a table."""

from __future__ import annotations

import pytest

from relay_project.base_urls import host_root, upstream_endpoint, upstream_root

ZHIPU = "https://open.bigmodel.cn/api/paas/v4"


@pytest.mark.parametrize(
    ("pasted", "root"),
    [
        ("https://x.com", "https://x.com"),
        ("https://x.com/", "https://x.com"),
        ("https://x.com//", "https://x.com"),
        ("https://x.com/v1", "https://x.com"),
        ("https://x.com/v1/", "https://x.com"),
        (" https://x.com/V1 ", "https://x.com"),
        ("HTTPS://X.Com/v1", "https://x.com"),
        ("https://x.com:443/v1", "https://x.com"),
        ("http://x.com:80", "http://x.com"),
        ("http://x.com:443", "http://x.com:443"),
        ("https://x.com:8443/v1", "https://x.com:8443"),
        ("http://127.0.0.1:8081/v1", "http://127.0.0.1:8081"),
        ("http://[::1]:8081/v1/", "http://[::1]:8081"),
        ("https://x.com/openai/v1/?key=sk-abc#part", "https://x.com/openai"),
        ("https://user:secret@x.com/v1", "https://x.com"),
        ("https://x.com/Openai/V1", "https://x.com/Openai"),
        ("https://x.com/apiv1", "https://x.com/apiv1"),
        ("https://x.com/v1/v1", "https://x.com/v1"),
        ("https://例子.测试/v1", "https://xn--fsqu00a.xn--0zwm56d"),
        ("https://XN--FSQU00A.xn--0zwm56d/", "https://xn--fsqu00a.xn--0zwm56d"),
        (ZHIPU, ZHIPU),
        (f"{ZHIPU}/", ZHIPU),
        ("https://open.bigmodel.cn/api/anthropic", "https://open.bigmodel.cn/api/anthropic"),
    ],
)
def test_upstream_root(pasted: str, root: str) -> None:
    assert upstream_root(pasted) == root


@pytest.mark.parametrize(
    "pasted",
    ["ftp://x.com/?key=sk-secret-value", "https://?key=sk-secret-value", "x.com/v1", "", "  "],
)
def test_upstream_root_refuses_what_is_not_http_without_echoing_it(pasted: str) -> None:
    with pytest.raises(ValueError, match="http") as caught:
        upstream_root(pasted)
    assert "sk-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("root", "path", "url"),
    [
        ("https://x.com", "/v1/models", "https://x.com/v1/models"),
        ("https://x.com", "v1/models", "https://x.com/v1/models"),
        (
            "https://x.com/openai",
            "/v1/chat/completions",
            "https://x.com/openai/v1/chat/completions",
        ),
        (ZHIPU, "/v1/models", f"{ZHIPU}/models"),
        (ZHIPU, "/v1/chat/completions", f"{ZHIPU}/chat/completions"),
        ("https://x.com/v1beta", "/v1/models", "https://x.com/v1beta/models"),
        ("https://x.com/api/v2.1", "/v1/models", "https://x.com/api/v2.1/models"),
        ("https://x.com/version", "/v1/models", "https://x.com/version/v1/models"),
        ("https://x.com/v", "/v1/models", "https://x.com/v/v1/models"),
        ("https://x.com/api/anthropic", "/v1/messages", "https://x.com/api/anthropic/v1/messages"),
    ],
)
def test_upstream_endpoint(root: str, path: str, url: str) -> None:
    assert upstream_endpoint(root, path) == url


@pytest.mark.parametrize(
    ("typed", "root"),
    [
        (" https://host.example.com/ ", "https://host.example.com"),
        ("https://host.example.com/sub2api//", "https://host.example.com/sub2api"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://Host.Example.com/api/v1", "https://Host.Example.com/api/v1"),
        ("", ""),
    ],
)
def test_host_root_is_the_address_as_typed(typed: str, root: str) -> None:
    assert host_root(typed) == root
