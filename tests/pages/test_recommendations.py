"""Recommended models read as canonical family names with the raw id beside them."""

from __future__ import annotations

import pytest

from batch_import import cli
from batch_import.projection import recommendation_labels
from tests.factories import ImportRunItemFactory

pytestmark = pytest.mark.django_db


def test_labels_put_the_family_first_and_the_raw_id_beside_it():
    assert recommendation_labels(["moonshotai/Kimi-K2.6", "glm-4.5"]) == [
        "kimi-k2.6 (moonshotai/Kimi-K2.6)",
        "glm-4.5",
    ]


def test_item_page_and_cli_line_show_the_family_and_the_raw_id(client, staff):
    item = ImportRunItemFactory(recommended_models=["moonshotai/Kimi-K2.6"])
    html = client.get(f"/batch-import/runs/{item.run_id}/items/{item.item_id}").content.decode()
    assert "kimi-k2.6 (moonshotai/Kimi-K2.6)" in html
    assert "recommended=kimi-k2.6 (moonshotai/Kimi-K2.6)" in cli._item_line(item)
