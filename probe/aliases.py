"""Model id normalisation, canonical ids, families, alias resolution and recommendations.

Three views of one upstream model id (seed 001 §4.2):

``normalized``
    NFKC, lower case, every run of separators (spaces, ``_``, ``@``, punctuation other than
    ``/ . :``) replaced by one ``-``. Nothing is dropped: ``deepseek-ai/DeepSeek-V4-Pro`` →
    ``deepseek-ai/deepseek-v4-pro``.

``canonical`` (the name the host exposes)
    The normalized id with the vendor/org path dropped (everything up to the last ``/``:
    ``Pro/deepseek-ai/``, ``moonshotai/``, ``openai/``, ``models/``) and the spelling unified:

    * version numbers written with a hyphen become dotted when both parts are one or two digits
      (``claude-3-5-sonnet`` → ``claude-3.5-sonnet``, ``doubao-1-5-pro-32k`` →
      ``doubao-1.5-pro-32k``, ``deepseek-v3-1`` → ``deepseek-v3.1``); the dotted spelling is the
      one most providers and relays publish;
    * vendor spellings: the Moonshot ``k`` before a Kimi version is optional (``kimi 2.6``,
      ``kimi-2.6``, ``kimi-k2.6`` → ``kimi-k2.6``); ``glm4.5`` → ``glm-4.5``; ``qwen-3`` →
      ``qwen3``; ``baichuan-4`` → ``baichuan4``; ``step3`` → ``step-3``; ``gpt4o`` → ``gpt-4o``;
      Azure's ``gpt-35-turbo`` → ``gpt-3.5-turbo``; ``meta-llama-3.1`` / ``llama3.1`` →
      ``llama-3.1``; Anthropic's ``claude-sonnet-4-0`` → ``claude-sonnet-4``;
    * a ``:tag`` suffix: OpenRouter routing tiers (``:free :beta :nitro :floor :extended
      :online :exacto``) are kept as ``:tier``; ``:latest`` becomes ``-latest``; any other tag is
      a variant and becomes ``-tag`` (``claude-3.7-sonnet:thinking`` →
      ``claude-3.7-sonnet-thinking``, ``qwen2.5:7b`` → ``qwen2.5-7b``).

``family`` (the grouping key for "the same model under another alias")
    The canonical id without its routing tier and without one trailing *snapshot stamp*:
    ``-latest``, a date (``-2024-08-06``, ``-20241022``, ``-250615`` YYMMDD, ``-0613`` MMDD,
    ``-2411`` YYMM, ``-05-06`` MM-DD) or a Gemini revision (``-001``). Decision: a dated
    snapshot keeps its own canonical id (it is a distinct, pinned model) but shares the family
    of the undated id, so ``gpt-4o-2024-08-06``, ``gpt-4o-latest``-style pointers and ``gpt-4o``
    are one family. A stamp is only recognised at the end: ``kimi-k2-0905-preview`` is its own
    family, distinct from ``kimi-k2-0711-preview`` and from ``kimi-k2``.

Everything else stays different: sizes (``qwen3-32b`` / ``qwen3-235b-a22b``), variants
(``-instruct`` / ``-thinking`` / ``-air`` / ``-preview`` / ``-turbo`` / ``-mini``), versions
(``kimi-k2`` / ``kimi-k2.6``) and product names (``deepseek-chat`` / ``deepseek-v3``).

Resolution (``resolve_requested_model``) never crosses a family: a requested name resolves to
the raw upstream id with the same raw id, normalized id, canonical id or — unless the request
pins a dated snapshot — family. Anything else, typos included, resolves to None and the caller
shows ``recommend_models`` (raw ids ranked by similarity) instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

__all__ = [
    "AliasResult",
    "build_alias_table",
    "canonical_model_family",
    "canonical_model_id",
    "normalize_model_id",
    "recommend_models",
    "resolve_requested_model",
]

# OpenRouter-style routing tiers: the same model, served on another price/latency tier.
ROUTE_TIERS = frozenset({"free", "beta", "nitro", "floor", "extended", "online", "exacto"})

# How many recommendations one unresolved name contributes, and how similar they must be.
RECOMMENDATIONS_PER_NAME = 3
RECOMMENDATION_CUTOFF = 50.0

_SEPARATORS = re.compile(r"[^\w./:]+|_+")
_DASH_AROUND = re.compile(r"-*([/.:])-*")
_VERSION_HEAD = re.compile(r"[a-z]*\d{1,2}")
_VERSION_TAIL = re.compile(r"\d{1,2}")

# (pattern, replacement) applied in order to the vendor-free name; see the module docstring.
_SPELLINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^kimi-?k?-?(?=\d)", "kimi-k"),
        (r"^glm(?=\d)", "glm-"),
        (r"^qwen-(?=\d)", "qwen"),
        (r"^baichuan-(?=\d)", "baichuan"),
        (r"^step(?=\d)", "step-"),
        (r"^deepseek(?=[vr]\d)", "deepseek-"),
        (r"^gpt-?35(?=-|$)", "gpt-3.5"),
        (r"^(chat)?gpt(?=\d)", r"\1gpt-"),
        (r"^minimax-?m(?=\d)", "minimax-m"),
        (r"^(ernie|doubao|claude|gemini|yi)(?=\d)", r"\1-"),
        (r"^meta-llama-", "llama-"),
        (r"^llama(?=\d)", "llama-"),
        (r"^claude-(opus|sonnet|haiku)-(\d+)\.0(?=-|$)", r"claude-\1-\2"),
    )
)


@dataclass(frozen=True)
class AliasResult:
    raw: str
    normalized: str
    canonical: str
    family: str


@dataclass(frozen=True)
class _Parsed:
    normalized: str
    base: str  # the family
    stamp: str  # "" | "latest" | a date or revision token, as written
    tier: str  # "" | an OpenRouter routing tier

    @property
    def canonical(self) -> str:
        name = f"{self.base}-{self.stamp}" if self.stamp else self.base
        return f"{name}:{self.tier}" if self.tier else name

    @property
    def pins_snapshot(self) -> bool:
        return bool(self.stamp) and self.stamp != "latest"


def normalize_model_id(raw: str) -> str:
    """Lower case, NFKC, separators unified to ``-``; vendor prefixes and versions are kept."""
    text = unicodedata.normalize("NFKC", str(raw)).strip().lower()
    text = _SEPARATORS.sub("-", text)
    text = _DASH_AROUND.sub(r"\1", text)
    return re.sub(r"-{2,}", "-", text).strip("-/")


def canonical_model_id(raw: str) -> str:
    """The vendor-free id in unified spelling; dated snapshots and tiers stay distinct."""
    return _parse(raw).canonical


def canonical_model_family(raw: str) -> str:
    """The grouping key: the canonical id without routing tier and trailing snapshot stamp."""
    return _parse(raw).base


def build_alias_table(raw_models: Iterable[str]) -> dict[str, AliasResult]:
    """One ``AliasResult`` per distinct non-empty raw id, in the upstream's order."""
    table: dict[str, AliasResult] = {}
    for raw in raw_models:
        if not raw or not raw.strip() or raw in table:
            continue
        parsed = _parse(raw)
        table[raw] = AliasResult(raw, parsed.normalized, parsed.canonical, parsed.base)
    return table


def resolve_requested_model(requested: str, raw_models: Sequence[str]) -> str | None:
    """The raw upstream id that serves ``requested``, or None.

    Tried in order: the exact raw id; the same normalized id; the same canonical id (first in
    the upstream's order); the same snapshot on another routing tier; the same family — unless
    ``requested`` pins a dated snapshot, which only that snapshot may serve. Among family
    matches the same tier wins, then the undated id, then a ``-latest`` pointer, then the
    newest snapshot.
    """
    if not requested or not requested.strip():
        return None
    raws = [raw for raw in dict.fromkeys(raw_models) if raw and raw.strip()]
    if requested in raws:
        return requested
    wanted = _parse(requested)
    parsed = [(raw, _parse(raw)) for raw in raws]
    for raw, item in parsed:
        if item.normalized == wanted.normalized:
            return raw
    for raw, item in parsed:
        if item.canonical == wanted.canonical:
            return raw
    for raw, item in parsed:  # the same snapshot on another routing tier
        if (item.base, item.stamp) == (wanted.base, wanted.stamp):
            return raw
    if wanted.pins_snapshot:
        return None
    family = [(index, raw, item) for index, (raw, item) in enumerate(parsed)]
    family = [entry for entry in family if entry[2].base == wanted.base]
    if not family:
        return None
    return min(family, key=lambda entry: _preference(entry[0], entry[2], wanted))[1]


def recommend_models(requested: Sequence[str], raw_models: Sequence[str]) -> list[str]:
    """Raw ids most similar to the requested names that do not resolve, best first.

    Each unresolved name contributes its ``RECOMMENDATIONS_PER_NAME`` closest raw ids scoring
    at least ``RECOMMENDATION_CUTOFF`` (see ``_similarity``); a raw id suggested for several
    names keeps its best score. Names that resolve contribute nothing, so an empty list means
    "nothing to correct" or "nothing close enough".
    """
    raws = [raw for raw in dict.fromkeys(raw_models) if raw and raw.strip()]
    if not raws:
        return []
    choices = [_fuzzy_key(raw) for raw in raws]
    best: dict[int, float] = {}
    for name in dict.fromkeys(requested):
        if not name or not name.strip() or resolve_requested_model(name, raws) is not None:
            continue
        matches = process.extract(
            _fuzzy_key(name),
            choices,
            scorer=_similarity,
            limit=RECOMMENDATIONS_PER_NAME,
            score_cutoff=RECOMMENDATION_CUTOFF,
        )
        for _choice, score, index in matches:
            best[index] = max(score, best.get(index, 0.0))
    ranked = sorted(best, key=lambda index: (-best[index], index))
    return [raws[index] for index in ranked]


# --- internals ------------------------------------------------------------------------------


def _fuzzy_key(raw: str) -> str:
    return re.sub(r"[-/:]+", " ", _parse(raw).base)


def _similarity(first: str, second: str, **_options: object) -> float:
    """rapidfuzz similarity (0–100) of two families, separators read as spaces.

    Plain edit similarity, or the same after sorting words (``sonnet claude 3.5``). Not
    ``WRatio``: its partial matching rates ``kimi k2 instruct`` as close to ``kimi k3`` as
    ``kimi k2`` is, because one contains a near-copy of the other.
    """
    return max(fuzz.ratio(first, second), fuzz.token_sort_ratio(first, second))


def _preference(
    index: int, item: _Parsed, wanted: _Parsed
) -> tuple[int, int, tuple[int, ...], int]:
    stamp_rank = 0 if not item.stamp else 1 if item.stamp == "latest" else 2
    revision = (int(item.stamp),) if re.fullmatch(r"00\d", item.stamp) else ()
    newest_first = tuple(-part for part in _stamp_date(item.stamp) or revision)
    return (int(item.tier != wanted.tier), stamp_rank, newest_first, index)


@lru_cache(maxsize=8192)
def _parse(raw: str) -> _Parsed:
    normalized = normalize_model_id(raw)
    name = normalized.rstrip("/").rsplit("/", 1)[-1] or normalized
    name, tier = _split_tag(name)
    tokens = [token for token in name.split("-") if token]
    tokens, stamp = _split_stamp(tokens)
    base = _unify_spelling("-".join(_merge_versions(tokens)))
    return _Parsed(normalized=normalized, base=base or name, stamp=stamp, tier=tier)


def _split_tag(name: str) -> tuple[str, str]:
    """Split an OpenRouter/Ollama ``:tag``: (name without a routing tier, tier)."""
    head, _, tag = name.partition(":")
    tag = tag.replace(":", "-").strip("-.")
    if not tag or not head:
        return (head or name.replace(":", "-")), ""
    if tag in ROUTE_TIERS:
        return head, tag
    return f"{head}-{tag}", ""


def _split_stamp(tokens: list[str]) -> tuple[list[str], str]:
    """Drop one trailing snapshot stamp from the tokens; keep at least one token."""
    for width, check in _STAMP_SHAPES:
        if len(tokens) > width and check(tokens[-width:]):
            return tokens[:-width], "-".join(tokens[-width:])
    return tokens, ""


def _valid_date(year: int, month: int, day: int) -> bool:
    return 2000 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31


def _is_ymd(parts: list[str]) -> bool:
    year, month, day = parts
    return (
        len(year) == 4
        and len(month) == len(day) == 2
        and all(part.isdigit() for part in parts)
        and _valid_date(int(year), int(month), int(day))
    )


def _is_md(parts: list[str]) -> bool:
    month, day = parts
    return (
        len(month) == len(day) == 2
        and month.isdigit()
        and day.isdigit()
        and _valid_date(2000, int(month), int(day))
    )


def _is_single_stamp(parts: list[str]) -> bool:
    (token,) = parts
    return token == "latest" or bool(_stamp_date(token)) or bool(re.fullmatch(r"00\d", token))


def _stamp_date(stamp: str) -> tuple[int, ...]:
    """(year, month, day) of a date stamp, 0 where unknown; () when it is not a date."""
    digits = stamp.replace("-", "")
    if not digits.isdigit():
        return ()
    if len(digits) == 8 and _valid_date(int(digits[:4]), int(digits[4:6]), int(digits[6:])):
        return (int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    if len(digits) == 6:
        year, month, day = 2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:])
        return (year, month, day) if year >= 2020 and _valid_date(year, month, day) else ()
    if len(digits) == 4:
        head, tail = int(digits[:2]), int(digits[2:])
        if "-" in stamp:  # MM-DD
            return (0, head, tail) if _valid_date(2000, head, tail) else ()
        if _valid_date(2000, head, tail):  # MMDD (gpt-4-0613, qwen-plus-0919)
            return (0, head, tail)
        if 23 <= head <= 29 and 1 <= tail <= 12:  # YYMM (mistral-large-2411, qwen3-…-2507)
            return (2000 + head, tail, 0)
    return ()


_STAMP_SHAPES = ((3, _is_ymd), (2, _is_md), (1, _is_single_stamp))


def _merge_versions(tokens: list[str]) -> list[str]:
    """``3-5`` → ``3.5``, ``v3-1`` → ``v3.1``: a hyphenated minor version becomes dotted."""
    merged: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if (
            index + 1 < len(tokens)
            and _VERSION_HEAD.fullmatch(token)
            and _VERSION_TAIL.fullmatch(tokens[index + 1])
        ):
            merged.append(f"{token}.{tokens[index + 1]}")
            index += 2
            continue
        merged.append(token)
        index += 1
    return merged


def _unify_spelling(name: str) -> str:
    for pattern, replacement in _SPELLINGS:
        name = pattern.sub(replacement, name)
    return name
