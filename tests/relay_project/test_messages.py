"""Stored messages render in the reader's language (relay_project.messages, #20)."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.translation import gettext_lazy, gettext_noop

from relay_project.messages import Msg, english, render, stored


def in_language(language: str, text: str | None, data) -> str:
    with translation.override(language):
        return render(text, data)


def test_a_message_is_stored_in_english_and_read_in_chinese():
    message = Msg(gettext_noop("account test failed: %(error)s"), error="HTTP 403: Forbidden")
    assert english(message) == "account test failed: HTTP 403: Forbidden"
    data = stored(message)
    assert in_language("zh-hans", english(message), data) == "账号测试失败:HTTP 403: Forbidden"
    assert in_language("en", english(message), data) == english(message)


def test_nested_messages_and_stage_words_are_translated_on_their_own():
    inner = Msg(gettext_noop("every account for %(model)s is rate-limited — "), model="glm-4.5")
    outer = Msg(gettext_noop("gateway refused: %(why)s%(error)s"), why=inner, error="HTTP 503")
    retry = Msg(gettext_noop("retry from %(stage)s"), stage=Msg.word("stage", "probe"))
    assert english(outer) == "gateway refused: every account for glm-4.5 is rate-limited — HTTP 503"
    assert english(retry) == "retry from probe"
    assert in_language("zh-hans", "", stored(outer)) == (
        "网关拒绝:glm-4.5 的所有账号均被限流 — HTTP 503"
    )
    assert in_language("zh-hans", "", stored(retry)) == "从「探测」阶段重试"


def test_a_list_parameter_reads_as_its_translated_parts():
    group = Msg.label(gettext_lazy("group"))
    gone = Msg(gettext_noop("%(kind)s %(id)s is gone from the host"), kind=group, id="7")
    message = Msg("%(findings)s", findings=[gone, "plain text"])
    assert english(message) == "group 7 is gone from the host; plain text"
    assert in_language("zh-hans", "", stored(message)) == "分组 7 已从主机上消失; plain text"


def test_english_is_the_text_with_no_language_active_whatever_the_readers(monkeypatch):
    """Made without switching the language (every event's message is made so)."""
    group = Msg.label(gettext_lazy("group"))
    inner = Msg(gettext_noop("every account for %(model)s is rate-limited — "), model="glm-4.5")
    messages = [
        Msg(gettext_noop("gateway refused: %(why)s%(error)s"), why=inner, error="HTTP 503"),
        Msg(gettext_noop("retry from %(stage)s"), stage=Msg.word("stage", "probe")),
        Msg("%(findings)s", findings=[Msg("%(kind)s gone", kind=group), "plain"]),
        Msg.word("stage", "probe"),
        Msg(gettext_noop("entry accepted")),
        Msg("100%% done: %(n)s", n=3),
    ]
    with translation.override(None):
        expected = [message.render() for message in messages]
    with translation.override("zh-hans"):
        monkeypatch.setattr(translation, "override", None)  # any switch fails
        assert [english(message) for message in messages] == expected
    assert expected[2] == "group gone; plain" and expected[5] == "100% done: 3"


@pytest.mark.parametrize(
    "data",
    [None, {}, {"msgid": 3}, {"msgid": "x", "params": "bad"}, "text", {"msgid": "%(a)s"}],
)
def test_rows_without_a_usable_message_render_as_stored(data):
    assert in_language("zh-hans", "entry accepted (stored)", data) == "entry accepted (stored)"


def test_a_plain_text_is_stored_without_a_message():
    assert (english("as typed"), stored("as typed")) == ("as typed", None)
    assert in_language("zh-hans", None, None) == ""
