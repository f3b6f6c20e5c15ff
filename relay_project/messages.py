"""Stored sentences an operator reads in their own language (#20).

Event messages, an item's last error and a provider's state reason are written by workers that
have no request, hence no language. They are stored twice: the English text (logs, the CLI JSON,
rows written before this existed) and a ``Msg`` as JSON: an English msgid marked with
``gettext_noop`` plus its parameters. Pages and the API render the JSON at read time in the
request's active language (``LocaleMiddleware``: the page's language, or ``Accept-Language``,
default ``settings.LANGUAGE_CODE``). Texts from outside (an upstream's or a host's error body)
are parameters, so they stay verbatim inside the translated sentence.

Writers build ``Msg(gettext_noop("created %(kind)s %(id)s"), kind=..., id=...)``; readers call
``render(text, stored)``. This module is the one place that turns a stored message into text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import translation


@dataclass(frozen=True, init=False)
class Msg:
    """One translatable sentence: an English msgid in ``%(name)s`` form and its parameters,
    plain values or other messages (translated on their own, e.g. a refusal reason inside
    "gateway refused: …")."""

    msgid: str
    params: Mapping[str, Any]
    context: str | None

    def __init__(self, msgid: str, /, **params: Any) -> None:
        object.__setattr__(self, "msgid", msgid)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "context", None)

    @classmethod
    def word(cls, context: str, msgid: str) -> Msg:
        """A stored value read as its label, e.g. ``Msg.word("stage", "probe")`` (the label
        is marked elsewhere with ``pgettext_lazy(context, msgid)``)."""
        message = cls(msgid)
        object.__setattr__(message, "context", context)
        return message

    @classmethod
    def label(cls, text: Any) -> Msg:
        """A label marked with ``gettext_lazy`` (a choice's label), kept as its msgid."""
        with translation.override(None):
            return cls(str(text))

    @property
    def english(self) -> str:
        """The text as stored for logs and the CLI (never translated): what ``render`` gives
        with no language active, made without activating none (every event's message is
        made so, and the switch of language cost more than the text)."""
        values = {name: _render_param(value, english=True) for name, value in self.params.items()}
        if not values and "%(" not in self.msgid:
            return self.msgid
        return self.msgid % values

    def render(self) -> str:
        """The text in the active language; the English msgid when no translation fits."""
        values = {name: _render_param(value) for name, value in self.params.items()}
        if self.context:
            translated = translation.pgettext(self.context, self.msgid)
        else:
            translated = translation.gettext(self.msgid)
        if not values and "%(" not in self.msgid:
            return translated
        try:
            return translated % values
        except (KeyError, ValueError, TypeError):  # a translation that lost a placeholder
            return self.msgid % values

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "msgid": self.msgid,
            "params": {name: _param_json(value) for name, value in self.params.items()},
        }
        if self.context:
            data["context"] = self.context
        return data

    @classmethod
    def from_json(cls, data: Any) -> Msg | None:
        """The stored message, or None when ``data`` is not one (older rows, hand edits)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("msgid"), str):
            return None
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            return None
        if isinstance(data.get("context"), str):
            return cls.word(data["context"], data["msgid"])
        return cls(data["msgid"], **{str(name): _param(value) for name, value in params.items()})

    def __str__(self) -> str:
        return self.english


# A list parameter (several findings in one event) reads as its parts joined by this.
LIST_SEPARATOR = "; "


def _render_param(value: Any, *, english: bool = False) -> Any:
    if isinstance(value, Msg):
        return value.english if english else value.render()
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(_render_param(part, english=english)) for part in value)
    return value


def _param_json(value: Any) -> Any:
    if isinstance(value, Msg):
        return value.as_json()
    if isinstance(value, list | tuple):
        return [_param_json(part) for part in value]
    return value


def _param(data: Any) -> Any:
    if isinstance(data, Mapping):
        return Msg.from_json(data)
    if isinstance(data, list):
        return [_param(part) for part in data]
    return data


def english(text: str | Msg | None) -> str | None:
    """What goes into the stored English column."""
    return text.english if isinstance(text, Msg) else text


def stored(text: str | Msg | None) -> dict[str, Any] | None:
    """What goes into the JSON column beside it (None for a plain text)."""
    return text.as_json() if isinstance(text, Msg) else None


def render(text: str | None, data: Any) -> str:
    """The stored message in the active language; the stored text when there is none."""
    message = Msg.from_json(data)
    if message is None:
        return text or ""
    try:
        return message.render()
    except (KeyError, ValueError, TypeError):  # params that do not fit the msgid
        return text or ""
