"""One case per rejection rule of seed 002 §5.2 (plus the schema rules around them)."""

from __future__ import annotations

import json

import pytest

from model_packs.validation import PackRejected, validate_pack
from tests.model_packs.builders import pack_files, provider, with_checksums


def _without(files: dict[str, bytes], name: str) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k != name}


def _tampered(files: dict[str, bytes]) -> dict[str, bytes]:
    return {**files, "providers/deepseek.json": files["providers/deepseek.json"] + b" "}


CASES = [
    ("missing pack.json", lambda: _without(pack_files(), "pack.json"), "pack.json", "missing"),
    (
        "pack.json without a version",
        lambda: with_checksums(pack_files(version="")),
        "pack.json.version",
        "required",
    ),
    (
        "pack.json not JSON",
        lambda: with_checksums({**pack_files(), "pack.json": b"{not json"}),
        "pack.json",
        "JSON",
    ),
    (
        "bad host range",
        lambda: pack_files(host_versions="around 1"),
        "pack.json.host_versions",
        "not a version range",
    ),
    ("no provider", lambda: pack_files(providers=[]), "providers", "no provider"),
    (
        "duplicate provider_id",
        lambda: with_checksums(
            {
                **pack_files(),
                "providers/other.json": json.dumps(provider("deepseek")).encode(),
            }
        ),
        "providers/other.json.provider_id",
        "duplicate provider_id",
    ),
    (
        "missing checksums.txt",
        lambda: _without(pack_files(), "checksums.txt"),
        "checksums.txt",
        "missing",
    ),
    ("bad checksum", lambda: _tampered(pack_files()), "checksums.txt", "bad checksum"),
    (
        "file not in checksums",
        lambda: {**pack_files(), "extra.md": b"hi"},
        "checksums.txt",
        "extra.md is not listed",
    ),
    (
        "non-https base_url",
        lambda: pack_files(providers=[provider(base_url="http://api.example.com/v1")]),
        "providers/deepseek.json.base_url",
        "https",
    ),
    (
        "empty default_models",
        lambda: pack_files(providers=[provider(default_models=[])]),
        "providers/deepseek.json.default_models",
        "must not be empty",
    ),
    (
        "smoke model not in default_models",
        lambda: pack_files(providers=[provider(smoke_test_model="model-z")]),
        "providers/deepseek.json.smoke_test_model",
        "not in default_models",
    ),
    (
        "a value longer than its column",
        lambda: pack_files(providers=[provider(display_name="x" * 201)]),
        "providers/deepseek.json.display_name",
        "at most 200 characters",
    ),
    (
        "negative price",
        lambda: pack_files(
            providers=[
                provider(
                    prices={
                        "unit": "usd_per_1m_tokens",
                        "as_of": "x",
                        "models": {"model-a": {"input": -1}},
                    }
                )
            ]
        ),
        "providers/deepseek.json.prices.models.model-a.input",
        ">= 0",
    ),
    (
        "prices in another currency",
        lambda: pack_files(
            providers=[provider(prices={"unit": "cny_per_1m_tokens", "as_of": "x", "models": {}})]
        ),
        "providers/deepseek.json.prices.unit",
        "USD",
    ),
]


@pytest.mark.parametrize(("label", "files", "field", "message"), CASES, ids=[c[0] for c in CASES])
def test_validate_pack_rejects(label, files, field, message):
    with pytest.raises(PackRejected) as caught:
        validate_pack(files())
    assert field in caught.value.errors, caught.value.errors
    assert message in caught.value.errors[field]


def test_validate_pack_rejects_a_host_version_outside_the_range():
    with pytest.raises(PackRejected) as caught:
        validate_pack(pack_files(), host_version="1.2.0", host_name="prod")
    assert "prod runs 1.2.0, outside" in caught.value.errors["host_versions"]


def test_validate_pack_accepts_a_host_inside_the_range_and_reads_everything():
    pack = validate_pack(pack_files(), host_version="0.1.126")
    spec = pack.providers[0]
    assert (pack.pack_id, pack.version, spec.provider_id) == ("test-pack", "1.0.0", "deepseek")
    assert spec.hostname == "deepseek.example.com"
    assert spec.prices == {"model-a": {"input": 0.5, "output": 2.0, "cache_read": 0.1}}


def test_the_shipped_cn_common_pack_is_valid():
    from pathlib import Path

    from model_packs.archive import read_folder

    root = Path(__file__).resolve().parents[2] / "packs" / "cn-common"
    pack = validate_pack(read_folder(root))
    ids = {p.provider_id for p in pack.providers}
    assert {"deepseek", "moonshot", "dashscope-intl", "zai", "minimax"} <= ids
    for spec in pack.providers:
        assert not spec.prices or spec.prices_as_of, spec.provider_id
