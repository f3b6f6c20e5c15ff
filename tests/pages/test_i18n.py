from __future__ import annotations

import shutil
from pathlib import Path

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
            if field in ("msgctxt", "msgid") and any(k.startswith("msgstr") for k in entry):
                entries.append(entry)  # an entry not separated by a blank line
                entry = {"fuzzy": False}
            entry[field] = rest.strip()[1:-1]
    return entries


@pytest.mark.skipif(not shutil.which("xgettext"), reason="gettext not installed")
def test_every_source_msgid_is_in_the_chinese_catalog(tmp_path, settings, monkeypatch):
    """makemessages into an empty directory lists every string the code and templates mark
    for translation; each must have a Chinese text in locale/zh_Hans."""
    from django.core.management import call_command

    # A copy of the sources: makemessages writes next to the nearest locale directory, and
    # the real catalog must stay as it is.
    source = tmp_path / "src"
    skip = {".git", ".venv", "var", "locale", "tests", "docs", "static", "benchmarks", "deploy"}
    shutil.copytree(
        settings.BASE_DIR,
        source,
        ignore=lambda directory, names: [n for n in names if n in skip or n.endswith(".pyc")],
        symlinks=True,
    )
    monkeypatch.chdir(source)
    settings.LOCALE_PATHS = [str(tmp_path / "out")]
    (tmp_path / "out").mkdir()
    call_command("makemessages", locale=["zh_Hans"], verbosity=0)
    fresh = tmp_path / "out" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    catalog = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    translated = {
        (e.get("msgctxt"), e["msgid"])
        for e in po_entries(catalog.read_text(encoding="utf-8"))
        if (e.get("msgstr") or e.get("msgstr[0]")) and not e["fuzzy"]
    }
    extracted = po_entries(fresh.read_text(encoding="utf-8"))
    assert len(extracted) > 300
    missing = [
        (e.get("msgctxt"), e["msgid"])
        for e in extracted
        if (e.get("msgctxt"), e["msgid"]) not in translated
    ]
    assert missing == []


def test_rows_stored_before_translatable_messages_render_as_stored(client, staff, rich_run):
    """An event and a last error written without a message id show their stored text."""
    from batch_import.transitions import record_event
    from relay_project.messages import Msg

    first, broken = rich_run.items.order_by("position")[:2]
    record_event(item=first, event_type="patched", message=Msg("channel %(c)s", c=7))
    page = f"/batch-import/runs/{rich_run.run_id}/items/{first.item_id}"
    html = client.get(page, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "initial 503, retry scheduled" in html and "channel 7" in html
    html = client.get(
        f"/batch-import/runs/{rich_run.run_id}/items/{broken.item_id}",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    ).content.decode()
    assert "gateway refused: HTTP 403" in html
