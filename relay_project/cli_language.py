"""The language of a management command's human output (#20).

``--language`` when given, else the operator's locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``, in
POSIX order: ``zh_CN.UTF-8`` reads as zh-hans), else ``settings.LANGUAGE_CODE``. JSON output
and exit codes do not depend on it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG")


def language_codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def language_of_locale(locale_name: str) -> str | None:
    """``zh_CN.UTF-8`` → ``zh-hans``, ``en_US`` → ``en``; None for ``C``, ``POSIX`` and any
    language the catalogs do not have."""
    code = locale_name.split(".", 1)[0].split("@", 1)[0].replace("_", "-").lower()
    if not code or code in ("c", "posix"):
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None


def command_language(option: str | None, environ: Mapping[str, str] = os.environ) -> str:
    if option:
        return option
    for variable in LOCALE_VARIABLES:
        value = environ.get(variable, "")
        if value:  # the first one set decides, as for any POSIX program
            return language_of_locale(value) or settings.LANGUAGE_CODE
    return settings.LANGUAGE_CODE


class OperatorLanguageMixin:
    """Command mixin (before ``BaseCommand``): ``--language`` and the locale pick the language
    the command writes in."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            "--language",
            choices=language_codes(),
            help=_("language of the output (default: LC_ALL / LC_MESSAGES / LANG, else %(d)s)")
            % {"d": settings.LANGUAGE_CODE},
        )
        return parser

    def execute(self, *args, **options):
        with translation.override(command_language(options.get("language"))):
            return super().execute(*args, **options)
