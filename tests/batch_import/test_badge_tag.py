"""``{% badge %}`` writes a projection badge as the pages show it (it replaced an include)."""

from __future__ import annotations

from django.template import engines
from pytest_django.asserts import assertHTMLEqual

from batch_import.projection import Badge

PAGE = engines["django"].from_string("{% load badges %}[{% badge shown %}]")


def test_a_badge_is_its_span_with_kind_value_and_label():
    shown = Badge(kind="access", value="active", label="active", color="green")
    assertHTMLEqual(
        PAGE.render({"shown": shown}),
        '[<span class="badge badge-green" data-kind="access" data-value="active">active</span>]',
    )


def test_a_badge_label_is_escaped_and_none_shows_nothing():
    shown = Badge(kind="stage", value='"x"', label="<b>&", color="red")
    assert PAGE.render({"shown": shown}) == (
        '[<span class="badge badge-red" data-kind="stage" data-value="&quot;x&quot;">'
        "&lt;b&gt;&amp;</span>]"
    )
    assert PAGE.render({"shown": None}) == "[]"
