"""The admin speaks the operator's language (#20): apps, models and fields have translated
verbose names; the language comes from Accept-Language (or the language cookie) as on the
pages."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.conf import settings
from django.utils import translation
from django.utils.text import capfirst

pytestmark = pytest.mark.django_db
PROJECT_APPS = ("batch_import", "hosts", "model_packs", "providers", "relay_project")
MODEL_NAMES_ZH = (
    "导入批次",
    "导入条目",
    "条目事件",
    "批次回滚",
    "宿主",
    "托管资源",
    "模型包",
    "上游",
    "对账运行",
    "API 令牌",
)


def english_names() -> set[str]:
    with translation.override("en"):
        names = set()
        for app in PROJECT_APPS:
            config = apps.get_app_config(app)
            names.add(str(config.verbose_name))
            for model in config.get_models():
                names.add(capfirst(str(model._meta.verbose_name_plural)))
        return names


def test_every_model_and_field_has_a_chinese_verbose_name():
    untranslated = []
    for app in PROJECT_APPS:
        for model in apps.get_app_config(app).get_models():
            texts = [model._meta.verbose_name, model._meta.verbose_name_plural]
            texts += [
                f.verbose_name
                for f in model._meta.get_fields()
                if hasattr(f, "verbose_name") and f.model is model and not f.auto_created
            ]
            for text in texts:
                with translation.override("en"):
                    english = str(text)
                with translation.override("zh-hans"):
                    if str(text) == english:
                        untranslated.append(f"{model.__name__}: {english}")
    assert untranslated == []


@pytest.mark.parametrize("how", ["accept_language", "cookie"])
def test_admin_index_and_changelist_in_chinese(client, staff, rich_run, how):
    if how == "cookie":
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
        headers = {}
    else:
        headers = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
    index = client.get("/admin/", **headers).content.decode()
    for name in MODEL_NAMES_ZH:
        assert f">{name}<" in index, name
    for english in english_names():
        assert f">{english}<" not in index, english
    listing = client.get("/admin/batch_import/importrunitem/", **headers).content.decode()
    for text in ("导入条目", "当前阶段", "确认状态", "账号处理", "上游 ID"):
        assert text in listing, text
    for english in ("Import item", "Current stage", "Confirmation status", "Provider ID"):
        assert english not in listing, english


def test_admin_index_in_english_by_default(client, staff):
    index = client.get("/admin/").content.decode()
    assert ">Import runs<" in index and ">Hosts<" in index and "导入批次" not in index
