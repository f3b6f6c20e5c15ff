from __future__ import annotations

import pytest

from probe.aliases import (
    AliasResult,
    build_alias_table,
    canonical_model_family,
    canonical_model_id,
    normalize_model_id,
    recommend_models,
    resolve_requested_model,
)

# Model ids as providers and relays publish them, grouped by the family they must share. The
# key is the expected family; every id under it must map to it, and no two keys may collide.
FAMILIES: dict[str, list[str]] = {
    # --- DeepSeek (official API, SiliconFlow "Pro/" + org ids, OpenRouter, Volcengine Ark) ---
    "deepseek-chat": ["deepseek-chat", "DeepSeek-Chat", "deepseek/deepseek-chat"],
    "deepseek-reasoner": ["deepseek-reasoner", "DeepSeek-Reasoner"],
    "deepseek-v3": [
        "deepseek-v3",
        "DeepSeek-V3",
        "deepseek-ai/DeepSeek-V3",
        "Pro/deepseek-ai/DeepSeek-V3",
        "deepseek/deepseek-v3",
        "deepseek-v3-250324",
        "deepseek-ai/DeepSeek-V3-0324",
    ],
    "deepseek-chat-v3": ["deepseek/deepseek-chat-v3-0324", "deepseek/deepseek-chat-v3-0324:free"],
    "deepseek-v3.1": [
        "deepseek-v3.1",
        "DeepSeek-V3.1",
        "deepseek-ai/DeepSeek-V3.1",
        "Pro/deepseek-ai/DeepSeek-V3.1",
        "deepseek-v3-1-250821",
    ],
    "deepseek-v3.1-terminus": ["deepseek-ai/DeepSeek-V3.1-Terminus", "deepseek-v3.1-terminus"],
    "deepseek-v3.2-exp": ["deepseek-ai/DeepSeek-V3.2-Exp", "deepseek/deepseek-v3.2-exp"],
    "deepseek-v4-pro": ["deepseek-v4-pro", "deepseek-ai/DeepSeek-V4-Pro", "deepseek v4 pro"],
    "deepseek-v2.5": ["deepseek-ai/DeepSeek-V2.5", "deepseek-v2.5"],
    "deepseek-r1": [
        "deepseek-r1",
        "DeepSeek-R1",
        "deepseek-ai/DeepSeek-R1",
        "Pro/deepseek-ai/DeepSeek-R1",
        "deepseek/deepseek-r1",
        "deepseek/deepseek-r1:free",
        "deepseek-r1-250120",
        "deepseek-r1-250528",
        "deepseek/deepseek-r1-0528:free",
    ],
    "deepseek-r1-distill-qwen-32b": [
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        "deepseek/deepseek-r1-distill-qwen-32b",
    ],
    "deepseek-r1-distill-llama-70b": [
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        "deepseek/deepseek-r1-distill-llama-70b:free",
    ],
    # --- Moonshot / Kimi ---
    "kimi-k2.6": [
        "kimi-k2.6",
        "Kimi-K2.6",
        "kimi 2.6",
        "kimi-2.6",
        "KIMI K2.6",
        "kimi_k2.6",
        "moonshotai/kimi-k2.6",
    ],
    "kimi-k2.5": ["kimi-k2.5", "Kimi K2.5", "moonshotai/Kimi-K2.5"],
    "kimi-k2": ["kimi-k2", "Kimi-K2", "kimi 2", "moonshotai/kimi-k2", "kimi-k2-250711"],
    "kimi-k2-instruct": [
        "moonshotai/Kimi-K2-Instruct",
        "Pro/moonshotai/Kimi-K2-Instruct",
        "kimi-k2-instruct",
        "moonshotai/Kimi-K2-Instruct-0905",
    ],
    "kimi-k2-0711-preview": ["kimi-k2-0711-preview"],
    "kimi-k2-0905-preview": ["kimi-k2-0905-preview"],
    "kimi-k2-turbo-preview": ["kimi-k2-turbo-preview"],
    "kimi-k2-thinking": ["kimi-k2-thinking", "moonshotai/Kimi-K2-Thinking"],
    "kimi-k2-thinking-turbo": ["kimi-k2-thinking-turbo"],
    "kimi-thinking-preview": ["kimi-thinking-preview"],
    "kimi": ["kimi-latest"],
    "moonshot-v1-8k": ["moonshot-v1-8k", "Moonshot-V1-8K"],
    "moonshot-v1-32k": ["moonshot-v1-32k"],
    "moonshot-v1-128k": ["moonshot-v1-128k"],
    "moonshot-v1-8k-vision-preview": ["moonshot-v1-8k-vision-preview"],
    # --- Qwen (DashScope, ModelScope/SiliconFlow org ids, OpenRouter) ---
    "qwen3-32b": ["qwen3-32b", "Qwen3-32B", "Qwen/Qwen3-32B", "qwen/qwen3-32b", "qwen 3 32b"],
    "qwen3-235b-a22b": ["qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B", "qwen/qwen3-235b-a22b:free"],
    "qwen3-235b-a22b-instruct": [
        "qwen3-235b-a22b-instruct-2507",
        "Qwen/Qwen3-235B-A22B-Instruct-2507",
    ],
    "qwen3-235b-a22b-thinking": [
        "qwen3-235b-a22b-thinking-2507",
        "Qwen/Qwen3-235B-A22B-Thinking-2507",
        "qwen/qwen3-235b-a22b-thinking-2507",
    ],
    "qwen3-30b-a3b": ["qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B"],
    "qwen3-coder-480b-a35b-instruct": [
        "qwen3-coder-480b-a35b-instruct",
        "Qwen/Qwen3-Coder-480B-A35B-Instruct",
    ],
    "qwen3-coder-plus": ["qwen3-coder-plus", "qwen3-coder-plus-2025-07-22"],
    "qwen2.5-72b-instruct": [
        "qwen2.5-72b-instruct",
        "Qwen/Qwen2.5-72B-Instruct",
        "qwen/qwen-2.5-72b-instruct",
        "qwen2_5-72b-instruct",
    ],
    "qwen2.5-7b-instruct": ["Qwen/Qwen2.5-7B-Instruct", "Pro/Qwen/Qwen2.5-7B-Instruct"],
    "qwen-max": ["qwen-max", "qwen-max-latest", "qwen-max-2025-01-25", "Qwen-Max", "qwen/qwen-max"],
    "qwen-plus": ["qwen-plus", "qwen-plus-latest", "qwen-plus-2025-07-28", "qwen-plus-0919"],
    "qwen-turbo": ["qwen-turbo", "qwen-turbo-latest", "qwen-turbo-2024-11-01"],
    "qwen-long": ["qwen-long"],
    "qwen-vl-max": ["qwen-vl-max", "qwen-vl-max-latest"],
    "qwq-32b": ["qwq-32b", "Qwen/QwQ-32B", "qwen/qwq-32b"],
    "qwq-32b-preview": ["Qwen/QwQ-32B-Preview", "qwq-32b-preview"],
    "qwq-plus": ["qwq-plus", "qwq-plus-latest"],
    # --- Zhipu GLM (bigmodel.cn, zai-org / THUDM org ids, OpenRouter z-ai) ---
    "glm-4.5": ["glm-4.5", "GLM-4.5", "zai-org/GLM-4.5", "z-ai/glm-4.5", "glm4.5", "GLM 4.5"],
    "glm-4.5-air": ["glm-4.5-air", "GLM-4.5-Air", "zai-org/GLM-4.5-Air", "z-ai/glm-4.5-air:free"],
    "glm-4.5v": ["glm-4.5v", "zai-org/GLM-4.5V"],
    "glm-4.6": ["glm-4.6", "zai-org/GLM-4.6", "z-ai/glm-4.6"],
    "glm-4-plus": ["glm-4-plus", "GLM-4-Plus"],
    "glm-4-flash": ["glm-4-flash", "glm-4-flash-250414"],
    "glm-4-air": ["glm-4-air", "glm-4-air-250414"],
    "glm-4": ["glm-4", "glm-4-0520"],
    "glm-4-9b-chat": ["THUDM/glm-4-9b-chat", "glm-4-9b-chat"],
    "glm-4-32b": ["THUDM/GLM-4-32B-0414", "thudm/glm-4-32b"],
    "glm-z1-air": ["glm-z1-air"],
    # --- MiniMax ---
    "minimax-m2": ["MiniMax-M2", "minimax-m2", "MiniMaxAI/MiniMax-M2", "minimax/minimax-m2"],
    "minimax-m2.1": ["MiniMax-M2.1", "minimax/minimax-m2.1"],
    "minimax-m1": ["MiniMax-M1", "minimax/minimax-m1"],
    "minimax-m1-80k": ["MiniMaxAI/MiniMax-M1-80k", "minimax-m1-80k"],
    "minimax-text-01": ["MiniMax-Text-01", "minimax-text-01"],
    "abab6.5s-chat": ["abab6.5s-chat"],
    # --- Doubao (Volcengine Ark: hyphenated versions + YYMMDD stamps) ---
    "doubao-seed-1.6": ["doubao-seed-1.6", "doubao-seed-1-6-250615", "Doubao-Seed-1.6"],
    "doubao-seed-1.6-thinking": ["doubao-seed-1-6-thinking-250715", "doubao-seed-1.6-thinking"],
    "doubao-seed-1.6-flash": ["doubao-seed-1-6-flash-250715", "doubao-seed-1.6-flash"],
    "doubao-1.5-pro-32k": [
        "doubao-1.5-pro-32k",
        "doubao-1-5-pro-32k-250115",
        "Doubao-1.5-pro-32k",
        "doubao-1.5-pro-32k-250115",
    ],
    "doubao-1.5-pro-256k": ["doubao-1-5-pro-256k-250115", "doubao-1.5-pro-256k"],
    "doubao-1.5-lite-32k": ["doubao-1-5-lite-32k-250115", "doubao-1.5-lite-32k"],
    "doubao-1.5-thinking-pro": ["doubao-1-5-thinking-pro-250415", "doubao-1.5-thinking-pro"],
    "doubao-pro-32k": ["doubao-pro-32k", "Doubao-pro-32k", "doubao-pro-32k-241215"],
    # --- StepFun ---
    "step-1-8k": ["step-1-8k"],
    "step-1-32k": ["step-1-32k"],
    "step-2-16k": ["step-2-16k"],
    "step-2-mini": ["step-2-mini"],
    "step-1v-8k": ["step-1v-8k"],
    "step-3": ["step-3", "stepfun-ai/step3", "step3"],
    # --- Baichuan ---
    "baichuan4": ["Baichuan4", "baichuan4", "baichuan-4"],
    "baichuan4-turbo": ["Baichuan4-Turbo", "baichuan4-turbo"],
    "baichuan4-air": ["Baichuan4-Air"],
    "baichuan3-turbo": ["Baichuan3-Turbo"],
    "baichuan3-turbo-128k": ["Baichuan3-Turbo-128k"],
    "baichuan-m2-32b": ["baichuan-inc/Baichuan-M2-32B", "baichuan-m2-32b"],
    # --- Tencent Hunyuan ---
    "hunyuan-turbos": ["hunyuan-turbos", "hunyuan-turbos-latest", "hunyuan-turbos-20250313"],
    "hunyuan-turbo": ["hunyuan-turbo", "hunyuan-turbo-latest"],
    "hunyuan-t1": ["hunyuan-t1-latest", "hunyuan-t1-20250321"],
    "hunyuan-lite": ["hunyuan-lite"],
    "hunyuan-standard": ["hunyuan-standard"],
    "hunyuan-standard-256k": ["hunyuan-standard-256K"],
    "hunyuan-large": ["hunyuan-large"],
    "hunyuan-a13b-instruct": ["tencent/Hunyuan-A13B-Instruct", "hunyuan-a13b-instruct"],
    # --- Baidu ERNIE ---
    "ernie-4.0-8k": ["ernie-4.0-8k", "ERNIE-4.0-8K", "ernie-4.0-8k-latest"],
    "ernie-4.0-turbo-8k": ["ernie-4.0-turbo-8k", "ERNIE-4.0-Turbo-8K", "ernie-4.0-turbo-8k-latest"],
    "ernie-3.5-8k": ["ernie-3.5-8k", "ERNIE-3.5-8K"],
    "ernie-3.5-128k": ["ernie-3.5-128k"],
    "ernie-speed-128k": ["ernie-speed-128k", "ERNIE-Speed-128K"],
    "ernie-lite-8k": ["ernie-lite-8k"],
    "ernie-x1-turbo-32k": ["ernie-x1-turbo-32k"],
    "ernie-4.5-turbo-128k": ["ernie-4.5-turbo-128k"],
    "ernie-4.5-300b-a47b": ["baidu/ERNIE-4.5-300B-A47B", "baidu/ernie-4.5-300b-a47b"],
    # --- 01.AI Yi ---
    "yi-large": ["yi-large", "01-ai/yi-large"],
    "yi-large-turbo": ["yi-large-turbo"],
    "yi-lightning": ["yi-lightning"],
    "yi-medium": ["yi-medium"],
    "yi-vision": ["yi-vision"],
    "yi-1.5-34b-chat": ["01-ai/Yi-1.5-34B-Chat", "yi-1.5-34b-chat"],
    # --- OpenAI ---
    "gpt-4o": [
        "gpt-4o",
        "GPT-4o",
        "openai/gpt-4o",
        "gpt-4o-2024-08-06",
        "gpt-4o-2024-05-13",
        "gpt-4o-2024-11-20",
        "openai/gpt-4o-2024-08-06",
        "gpt4o",
    ],
    "gpt-4o-mini": ["gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"],
    "chatgpt-4o": ["chatgpt-4o-latest", "openai/chatgpt-4o-latest"],
    "gpt-4.1": ["gpt-4.1", "gpt-4.1-2025-04-14", "openai/gpt-4.1"],
    "gpt-4.1-mini": ["gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"],
    "gpt-4.1-nano": ["gpt-4.1-nano"],
    "gpt-4-turbo": ["gpt-4-turbo", "gpt-4-turbo-2024-04-09"],
    "gpt-4-turbo-preview": ["gpt-4-turbo-preview"],
    "gpt-4": ["gpt-4", "gpt-4-0613", "gpt-4-0314"],
    "gpt-4-32k": ["gpt-4-32k"],
    "gpt-3.5-turbo": ["gpt-3.5-turbo", "gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106", "gpt-35-turbo"],
    "gpt-3.5-turbo-16k": ["gpt-3.5-turbo-16k", "gpt-3.5-turbo-16k-0613"],
    "gpt-3.5-turbo-instruct": ["gpt-3.5-turbo-instruct"],
    "o1": ["o1", "o1-2024-12-17", "openai/o1"],
    "o1-mini": ["o1-mini", "o1-mini-2024-09-12"],
    "o1-preview": ["o1-preview", "o1-preview-2024-09-12"],
    "o3": ["o3", "o3-2025-04-16"],
    "o3-mini": ["o3-mini", "o3-mini-2025-01-31", "openai/o3-mini"],
    "o4-mini": ["o4-mini", "o4-mini-2025-04-16"],
    "gpt-5": ["gpt-5", "gpt-5-2025-08-07", "openai/gpt-5"],
    "gpt-5-mini": ["gpt-5-mini", "gpt-5-mini-2025-08-07"],
    "gpt-5-chat": ["gpt-5-chat-latest", "openai/gpt-5-chat"],
    "gpt-oss-120b": ["gpt-oss-120b", "openai/gpt-oss-120b"],
    "gpt-oss-20b": ["gpt-oss-20b", "openai/gpt-oss-20b:free"],
    # --- Anthropic (API ids, Vertex "@" snapshots, OpenRouter dotted ids and tiers) ---
    "claude-3.5-sonnet": [
        "claude-3-5-sonnet-20241022",
        "claude-3-5-sonnet-20240620",
        "claude-3-5-sonnet-latest",
        "claude-3-5-sonnet@20240620",
        "anthropic/claude-3.5-sonnet",
        "anthropic/claude-3.5-sonnet:beta",
    ],
    "claude-3.5-haiku": [
        "claude-3-5-haiku-20241022",
        "claude-3-5-haiku-latest",
        "anthropic/claude-3.5-haiku",
    ],
    "claude-3.7-sonnet": [
        "claude-3-7-sonnet-20250219",
        "claude-3-7-sonnet-latest",
        "anthropic/claude-3.7-sonnet",
    ],
    "claude-3.7-sonnet-thinking": ["anthropic/claude-3.7-sonnet:thinking"],
    "claude-3-opus": ["claude-3-opus-20240229", "claude-3-opus-latest", "anthropic/claude-3-opus"],
    "claude-3-haiku": ["claude-3-haiku-20240307", "anthropic/claude-3-haiku"],
    "claude-sonnet-4": [
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-0",
        "claude-sonnet-4@20250514",
        "anthropic/claude-sonnet-4",
    ],
    "claude-sonnet-4.5": [
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5",
        "anthropic/claude-sonnet-4.5",
    ],
    "claude-opus-4": ["claude-opus-4-20250514", "claude-opus-4-0", "anthropic/claude-opus-4"],
    "claude-opus-4.1": ["claude-opus-4-1-20250805", "claude-opus-4-1", "anthropic/claude-opus-4.1"],
    "claude-haiku-4.5": ["claude-haiku-4-5-20251001", "anthropic/claude-haiku-4.5"],
    # --- Google Gemini (API ids, "models/" prefix of the OpenAI-compatible endpoint) ---
    "gemini-2.5-pro": ["gemini-2.5-pro", "google/gemini-2.5-pro", "models/gemini-2.5-pro"],
    "gemini-2.5-pro-preview": [
        "gemini-2.5-pro-preview-05-06",
        "gemini-2.5-pro-preview-06-05",
        "google/gemini-2.5-pro-preview",
    ],
    "gemini-2.5-flash": ["gemini-2.5-flash", "google/gemini-2.5-flash", "models/gemini-2.5-flash"],
    "gemini-2.5-flash-lite": ["gemini-2.5-flash-lite", "google/gemini-2.5-flash-lite"],
    "gemini-2.0-flash": ["gemini-2.0-flash", "gemini-2.0-flash-001", "google/gemini-2.0-flash-001"],
    "gemini-2.0-flash-lite": ["gemini-2.0-flash-lite", "gemini-2.0-flash-lite-001"],
    "gemini-2.0-flash-exp": ["gemini-2.0-flash-exp", "google/gemini-2.0-flash-exp:free"],
    "gemini-1.5-pro": [
        "gemini-1.5-pro",
        "gemini-1.5-pro-latest",
        "gemini-1.5-pro-001",
        "gemini-1.5-pro-002",
        "models/gemini-1.5-pro",
    ],
    "gemini-1.5-flash": ["gemini-1.5-flash", "gemini-1.5-flash-latest", "gemini-1.5-flash-002"],
    "gemini-1.5-flash-8b": ["gemini-1.5-flash-8b", "gemini-1.5-flash-8b-latest"],
    # --- Other OpenRouter / SiliconFlow style ids ---
    "llama-3.3-70b-instruct": [
        "meta-llama/llama-3.3-70b-instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/llama-3.3-70b-instruct:free",
    ],
    "llama-3.1-8b-instruct": [
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "meta-llama/llama-3.1-8b-instruct",
    ],
    "llama-3.1-8b": ["llama3.1-8b", "llama-3.1-8b"],
    "mistral-large": ["mistral-large-latest", "mistral-large-2411", "mistralai/mistral-large-2411"],
    "grok-4": ["grok-4", "x-ai/grok-4", "grok-4-0709"],
    "internlm2.5-7b-chat": ["internlm/internlm2_5-7b-chat", "internlm2.5-7b-chat"],
}

CASES = [(raw, family) for family, ids in FAMILIES.items() for raw in ids]
ALL_IDS = [raw for raw, _family in CASES]

# Neighbours that must never merge: versions, sizes, variants and product names.
CONFUSABLE = [
    ("kimi-k2", "kimi-k2.6"),
    ("kimi-k2.5", "kimi-k2.6"),
    ("kimi-k2-instruct", "kimi-k2-thinking"),
    ("kimi-k2-0711-preview", "kimi-k2-0905-preview"),
    ("qwen3-32b", "qwen3-235b-a22b"),
    ("Qwen/Qwen3-235B-A22B-Instruct-2507", "Qwen/Qwen3-235B-A22B-Thinking-2507"),
    ("qwen3-235b-a22b", "qwen3-235b-a22b-instruct-2507"),
    ("qwq-32b", "qwq-32b-preview"),
    ("qwen2.5-72b-instruct", "qwen2.5-7b-instruct"),
    ("glm-4.5", "glm-4.5-air"),
    ("glm-4.5", "glm-4.5v"),
    ("glm-4.5", "glm-4.6"),
    ("deepseek-chat", "deepseek-reasoner"),
    ("deepseek-chat", "deepseek-v3"),
    ("deepseek-v3", "deepseek-v3.1"),
    ("deepseek-v3.1", "deepseek-v3.1-terminus"),
    ("deepseek-r1", "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B"),
    ("minimax-m1", "minimax-m1-80k"),
    ("doubao-seed-1.6", "doubao-seed-1-6-thinking-250715"),
    ("doubao-1.5-pro-32k", "doubao-1.5-pro-256k"),
    ("hunyuan-turbo", "hunyuan-turbos"),
    ("moonshot-v1-8k", "moonshot-v1-32k"),
    ("step-1-8k", "step-1-32k"),
    ("baichuan4", "baichuan4-turbo"),
    ("ernie-4.0-8k", "ernie-4.0-turbo-8k"),
    ("yi-large", "yi-large-turbo"),
    ("gpt-4o", "gpt-4o-mini"),
    ("gpt-4o", "chatgpt-4o-latest"),
    ("gpt-4", "gpt-4-turbo"),
    ("gpt-3.5-turbo", "gpt-3.5-turbo-16k"),
    ("o1", "o1-preview"),
    ("o3", "o3-mini"),
    ("claude-3-5-sonnet-20241022", "claude-3-7-sonnet-20250219"),
    ("claude-3-7-sonnet-20250219", "anthropic/claude-3.7-sonnet:thinking"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929"),
    ("claude-opus-4-20250514", "claude-opus-4-1-20250805"),
    ("gemini-2.5-pro", "gemini-2.5-pro-preview-05-06"),
    ("gemini-2.5-flash", "gemini-2.5-flash-lite"),
    ("gemini-1.5-flash", "gemini-1.5-flash-8b"),
]


def test_alias_table_covers_at_least_150_real_ids() -> None:
    assert len(set(ALL_IDS)) == len(ALL_IDS) >= 150


@pytest.mark.parametrize(("raw", "family"), CASES, ids=[raw for raw, _ in CASES])
def test_canonical_model_family_groups_equivalent_ids(raw: str, family: str) -> None:
    assert canonical_model_family(raw) == family


@pytest.mark.parametrize(("raw", "family"), CASES, ids=[raw for raw, _ in CASES])
def test_resolve_requested_model_never_crosses_families(raw: str, family: str) -> None:
    """Against every id of every other class, a name resolves to nothing."""
    others = [other for other, other_family in CASES if other_family != family]
    assert resolve_requested_model(raw, others) is None


@pytest.mark.parametrize(("first", "second"), CONFUSABLE)
def test_canonical_model_family_keeps_neighbours_apart(first: str, second: str) -> None:
    assert canonical_model_family(first) != canonical_model_family(second)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("MiniMax-M2", "minimax-m2"),
        ("deepseek-ai/DeepSeek-V4-Pro", "deepseek-ai/deepseek-v4-pro"),
        ("kimi 2.6", "kimi-2.6"),
        ("Kimi_K2.6 ", "kimi-k2.6"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet-20240620"),
        ("Qwen / Qwen3-32B", "qwen/qwen3-32b"),
        ("ｋｉｍｉ－ｋ２．６", "kimi-k2.6"),
        ("deepseek/deepseek-r1:free", "deepseek/deepseek-r1:free"),
        ("glm--4.5__air", "glm-4.5-air"),
    ],
)
def test_normalize_model_id_lowercases_and_unifies_separators(raw: str, normalized: str) -> None:
    assert normalize_model_id(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("deepseek-ai/DeepSeek-V4-Pro", "deepseek-v4-pro"),
        ("Pro/deepseek-ai/DeepSeek-V3", "deepseek-v3"),
        ("moonshotai/Kimi-K2-Instruct", "kimi-k2-instruct"),
        ("openai/gpt-4o", "gpt-4o"),
        ("anthropic/claude-3.5-sonnet", "claude-3.5-sonnet"),
        ("kimi 2.6", "kimi-k2.6"),
        ("MiniMax-M2", "minimax-m2"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("claude-3-5-sonnet-20241022", "claude-3.5-sonnet-20241022"),
        ("doubao-1-5-pro-32k-250115", "doubao-1.5-pro-32k-250115"),
        ("deepseek/deepseek-r1:free", "deepseek-r1:free"),
        ("anthropic/claude-3.7-sonnet:thinking", "claude-3.7-sonnet-thinking"),
        ("qwen-max-latest", "qwen-max-latest"),
        ("models/gemini-2.0-flash-001", "gemini-2.0-flash-001"),
        ("gpt-35-turbo", "gpt-3.5-turbo"),
        ("claude-sonnet-4-0", "claude-sonnet-4"),
        ("glm4.5", "glm-4.5"),
        ("step3", "step-3"),
    ],
)
def test_canonical_model_id_drops_vendor_and_unifies_spelling(raw: str, canonical: str) -> None:
    assert canonical_model_id(raw) == canonical


def test_canonical_model_family_kimi_variants_collapse_to_same_family() -> None:
    variants = ["kimi 2.6", "kimi-2.6", "kimi-k2.6", "Kimi-K2.6"]
    assert {canonical_model_family(raw) for raw in variants} == {"kimi-k2.6"}


def test_build_alias_table_keys_by_raw_id() -> None:
    table = build_alias_table(["deepseek-ai/DeepSeek-V4-Pro", "kimi-k2.6", "", "kimi-k2.6"])
    assert list(table) == ["deepseek-ai/DeepSeek-V4-Pro", "kimi-k2.6"]
    assert table["deepseek-ai/DeepSeek-V4-Pro"] == AliasResult(
        raw="deepseek-ai/DeepSeek-V4-Pro",
        normalized="deepseek-ai/deepseek-v4-pro",
        canonical="deepseek-v4-pro",
        family="deepseek-v4-pro",
    )


def test_resolve_requested_model_uses_normalized_alias() -> None:
    assert resolve_requested_model("kimi 2.6", ["moonshot-v1-8k", "Kimi-K2.6"]) == "Kimi-K2.6"


def test_resolve_requested_model_returns_the_raw_vendor_prefixed_id() -> None:
    raw = ["deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-V4-Pro"]
    assert resolve_requested_model("deepseek-v4-pro", raw) == "deepseek-ai/DeepSeek-V4-Pro"


def test_resolve_requested_model_prefers_the_exact_raw_id() -> None:
    raw = ["Pro/deepseek-ai/DeepSeek-V3", "deepseek-ai/DeepSeek-V3"]
    assert resolve_requested_model("deepseek-ai/DeepSeek-V3", raw) == "deepseek-ai/DeepSeek-V3"
    assert resolve_requested_model("deepseek-v3", raw) == "Pro/deepseek-ai/DeepSeek-V3"


def test_resolve_requested_model_prefers_undated_then_latest_then_newest() -> None:
    dated = ["gpt-4o-2024-05-13", "gpt-4o-2024-11-20", "gpt-4o-2024-08-06"]
    assert resolve_requested_model("gpt-4o", dated) == "gpt-4o-2024-11-20"
    assert resolve_requested_model("gpt-4o", [*dated, "gpt-4o-latest"]) == "gpt-4o-latest"
    assert resolve_requested_model("gpt-4o", [*dated, "openai/gpt-4o"]) == "openai/gpt-4o"


def test_resolve_requested_model_pinned_snapshot_needs_its_own_id() -> None:
    """A dated request names one snapshot; another snapshot would be another version."""
    raw = ["gpt-4o", "gpt-4o-2024-11-20"]
    assert resolve_requested_model("gpt-4o-2024-08-06", raw) is None
    assert resolve_requested_model("openai/gpt-4o-2024-11-20", raw) == "gpt-4o-2024-11-20"


def test_resolve_requested_model_pinned_snapshot_on_another_tier() -> None:
    raw = ["deepseek/deepseek-r1", "deepseek/deepseek-r1-0528:free"]
    assert resolve_requested_model("deepseek-r1-0528", raw) == "deepseek/deepseek-r1-0528:free"


def test_resolve_requested_model_prefers_the_newest_gemini_revision() -> None:
    raw = ["gemini-1.5-pro-001", "gemini-1.5-pro-002"]
    assert resolve_requested_model("gemini-1.5-pro", raw) == "gemini-1.5-pro-002"


def test_resolve_requested_model_prefers_the_same_routing_tier() -> None:
    raw = ["deepseek/deepseek-r1:free", "deepseek/deepseek-r1"]
    assert resolve_requested_model("deepseek-r1", raw) == "deepseek/deepseek-r1"
    assert resolve_requested_model("deepseek-r1:free", raw) == "deepseek/deepseek-r1:free"


@pytest.mark.parametrize("requested", ["kimi-k2.5", "kimi-k2.7", "kimi-k3", "kimmi-k2.6"])
def test_resolve_requested_model_typo_or_other_version_is_not_resolved(requested: str) -> None:
    assert resolve_requested_model(requested, ["kimi-k2.6", "kimi-k2"]) is None


def test_resolve_requested_model_blank_or_no_models() -> None:
    assert resolve_requested_model("  ", ["kimi-k2.6"]) is None
    assert resolve_requested_model("kimi-k2.6", []) is None


def test_recommend_models_returns_raw_candidates_ranked_by_similarity() -> None:
    raw = ["deepseek-ai/DeepSeek-V3", "moonshotai/Kimi-K2.6", "qwen3-32b", "moonshotai/Kimi-K2"]
    recommended = recommend_models(["kimi-k2.7"], raw)
    assert recommended[0] == "moonshotai/Kimi-K2.6"
    assert set(recommended[:2]) == {"moonshotai/Kimi-K2.6", "moonshotai/Kimi-K2"}
    assert "qwen3-32b" not in recommended


def test_recommend_models_skips_names_that_resolve() -> None:
    raw = ["kimi-k2.6", "deepseek-chat", "deepseek-reasoner"]
    assert recommend_models(["Kimi-K2.6"], raw) == []
    assert recommend_models(["Kimi-K2.6", "deepseek-chta"], raw)[0] == "deepseek-chat"


def test_recommend_models_merges_names_without_duplicates() -> None:
    raw = ["glm-4.5", "glm-4.5-air", "MiniMax-M2"]
    recommended = recommend_models(["glm-4.7", "glm-4.5-airr", "minimax-m3"], raw)
    assert sorted(recommended) == sorted(raw)
    assert len(recommended) == len(set(recommended))


def test_recommend_models_nothing_similar_gives_nothing() -> None:
    assert recommend_models(["zzzz-unrelated-9000"], ["kimi-k2.6", "deepseek-chat"]) == []
    assert recommend_models(["kimi-k2.7"], []) == []
