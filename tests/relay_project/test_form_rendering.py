"""Forms render through the project's templates (``FORM_RENDERER``): a select's options are
written inline by ``templates/django/forms/widgets/select.html``, as Django writes them."""

from __future__ import annotations

from django import forms
from django.forms.renderers import DjangoTemplates
from django.test.signals import template_rendered
from django.test.utils import override_settings
from pytest_django.asserts import assertHTMLEqual


class Choices(forms.Form):
    plain = forms.ChoiceField(choices=[("", "---"), ("a", "A & <B>"), ("b", "B")], required=False)
    grouped = forms.ChoiceField(choices=[("Group", [("x", "X"), ("y", "Y")]), ("z", "Z")])
    many = forms.MultipleChoiceField(choices=[(str(n), f"#{n}") for n in range(5)])
    flag = forms.NullBooleanField()
    named = forms.CharField()


class OtherOption(forms.Select):
    option_template_name = "django/forms/widgets/radio_option.html"


DATA = {"plain": "a", "grouped": "y", "many": ["1", "3"], "flag": "true", "named": "n"}


def test_select_widgets_render_as_djangos_own():
    assertHTMLEqual(Choices(DATA).as_div(), Choices(DATA, renderer=DjangoTemplates()).as_div())
    unbound, theirs = Choices(), Choices(renderer=DjangoTemplates())
    assertHTMLEqual(unbound.as_div(), theirs.as_div())


def test_an_option_of_another_template_is_still_included():
    field = forms.ChoiceField(choices=[("a", "A"), ("b", "B")], widget=OtherOption)
    ours = field.widget.render("pick", "b")
    assertHTMLEqual(ours, field.widget.render("pick", "b", renderer=DjangoTemplates()))
    assert "<input" in ours  # the option's own template


def _templates_rendered(render) -> list[str]:
    names: list[str] = []

    def note(sender, template, **kwargs):
        names.append(template.name)

    template_rendered.connect(note)
    try:
        render()
    finally:
        template_rendered.disconnect(note)
    return names


def test_a_select_renders_its_options_without_a_template_each():
    field = forms.ChoiceField(choices=[(str(n), f"#{n}") for n in range(20)])
    names = _templates_rendered(lambda: field.widget.render("pick", "3"))
    assert names.count("django/forms/widgets/select_option.html") == 0
    assert len(names) <= 2  # the select and its attributes
    with override_settings(FORM_RENDERER="django.forms.renderers.DjangoTemplates"):
        names = _templates_rendered(lambda: field.widget.render("pick", "3"))
    assert names.count("django/forms/widgets/select_option.html") == 20  # the control
