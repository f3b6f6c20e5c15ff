"""The host's gateway (``/v1/...``, §9) seen through a user's ``sk-`` key.

These are the calls a real client makes, so the validation stage can prove that a key reaches
a model end to end. Gateway answers are not wrapped in the admin envelope.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hosts.sub2api.errors import parse_error_body, protocol_error
from hosts.sub2api.types import ChatCompletion, HostModel
from relay_project.crypto import Secret, reveal

if TYPE_CHECKING:
    from hosts.sub2api.client import HostHTTP

DEFAULT_PROMPT = "Reply with the single word: pong"


def _content_text(content: Any) -> str:
    """``message.content`` is a string, or (some providers) a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(str(part.get("text") or "") for part in content if isinstance(part, Mapping))
    return ""


MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: str | None) -> float:
    """``Retry-After`` in seconds (the host sends whole seconds); 0 when absent or a date."""
    try:
        seconds = float((value or "").strip())
    except ValueError:
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class GatewayAPI:
    def __init__(self, http: HostHTTP) -> None:
        self._http = http

    @staticmethod
    def _headers(api_key: Secret | str) -> dict[str, str]:
        return {"Authorization": f"Bearer {reveal(api_key)}"}

    def models(self, api_key: Secret | str) -> list[HostModel]:
        """``GET /v1/models``: [NEW] the union of the mapping keys of the group's schedulable
        accounts, or platform defaults when there are none; [OLD] always the defaults."""
        path = "/v1/models"
        response = self._http.send("GET", path, headers=self._headers(api_key))
        if response.status_code != 200:
            raise parse_error_body(response.status_code, response.content, method="GET", path=path)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
            raise protocol_error("not a model list", status=200, method="GET", path=path)
        return [HostModel.from_api(m) for m in body["data"] if isinstance(m, Mapping)]

    def chat_completion(
        self,
        api_key: Secret | str,
        *,
        model: str,
        messages: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int = 16,
    ) -> ChatCompletion:
        """One non-streaming ``POST /v1/chat/completions``.

        Any HTTP answer becomes a ``ChatCompletion`` (check ``.ok``; ``.no_available_accounts``
        is the warm-up 503); only a missing answer (timeout, refused connection) raises
        ``HostError``. An [OLD] host has no such route and answers 404.
        """
        path = "/v1/chat/completions"
        body = {
            "model": model,
            "messages": list(messages or [{"role": "user", "content": DEFAULT_PROMPT}]),
            "max_tokens": max_tokens,
            "stream": False,
        }
        response = self._http.send("POST", path, headers=self._headers(api_key), json=body)
        status = response.status_code
        if status != 200:
            error = parse_error_body(status, response.content, method="POST", path=path)
            return ChatCompletion(
                status=status,
                error_type=error.reason or f"http_{status}",
                error_message=error.message,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        try:
            data = response.json()
            choice = data["choices"][0]
            return ChatCompletion(
                status=status,
                content=_content_text(choice.get("message", {}).get("content")),
                model=str(data.get("model") or ""),
                finish_reason=str(choice.get("finish_reason") or ""),
            )
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return ChatCompletion(
                status=status,
                error_type="UNEXPECTED_RESPONSE",
                error_message="200 answer without choices[0].message",
            )
