from __future__ import annotations

import pytest
from django.utils import translation

from batch_import.projection import BADGES

pytestmark = pytest.mark.django_db


def test_run_page_in_simplified_chinese(client, staff, rich_run):
    html = client.get(
        f"/batch-import/runs/{rich_run.run_id}", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    for label in ("已弃用", "已损坏", "已启用", "已停用", "已快速启用", "已替换", "复用", "新建"):
        assert label in html, label
    assert "导入批次" in html and 'lang="zh-hans"' in html


def test_run_page_in_english(client, staff, rich_run):
    html = client.get(
        f"/batch-import/runs/{rich_run.run_id}", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert ">enabled<" in html and ">reactivated<" in html and "已启用" not in html


def test_language_switcher_sets_the_language(client, staff, rich_run):
    answer = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/batch-import/runs"})
    assert answer.status_code == 302
    assert "导入批次" in client.get("/batch-import/runs").content.decode()


def test_every_badge_label_has_a_chinese_translation():
    for kind, table in BADGES.items():
        for value, (_color, label) in table.items():
            with translation.override("en"):
                english = str(label)
            with translation.override("zh-hans"):
                assert str(label) != english, (kind, value)


def test_the_chinese_catalog_has_no_untranslated_or_fuzzy_entry():
    """Every msgid in locale/zh_Hans has a Chinese text (makemessages adds new msgids with an
    empty msgstr: this fails until someone translates them)."""
    from pathlib import Path

    from django.conf import settings

    catalog = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    entries = po_entries(catalog.read_text(encoding="utf-8"))
    assert len(entries) > 300
    untranslated = [e["msgid"] for e in entries if not (e.get("msgstr") or e.get("msgstr[0]"))]
    fuzzy = [e["msgid"] for e in entries if e["fuzzy"]]
    assert untranslated == [] and fuzzy == []


def po_entries(text: str) -> list[dict]:
    """A PO file's entries (the header aside): each field's joined string, and fuzzy flags."""
    entries: list[dict] = []
    entry: dict = {"fuzzy": False}
    field = ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if entry.get("msgid"):
                entries.append(entry)
            entry, field = {"fuzzy": False}, ""
        elif line.startswith("#,"):
            entry["fuzzy"] = entry["fuzzy"] or "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[field] = entry.get(field, "") + line[1:-1]
        else:
            field, _, rest = line.partition(" ")
            entry[field] = rest.strip()[1:-1]
    return entries
