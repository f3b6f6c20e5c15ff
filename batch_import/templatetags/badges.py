"""``{% badge some_badge %}``: a ``projection.Badge`` as the page shows it, nothing for None.

A tag rather than an included template: a run page shows six badges per item row, and an
``{% include %}`` each (its template looked up, its context pushed) was about a fifth of the
page's CPU."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def badge(shown) -> SafeString | str:
    """``shown``: a ``Badge`` (its colour class, kind, value and label), or None."""
    if not shown:
        return ""
    return format_html(
        '<span class="{}" data-kind="{}" data-value="{}">{}</span>',
        shown.css_class,
        shown.kind,
        shown.value,
        shown.label,
    )
