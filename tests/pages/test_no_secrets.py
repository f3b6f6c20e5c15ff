from __future__ import annotations

import pytest

from tests.pages.conftest import PROBE_KEY, SECRET_KEYS

pytestmark = pytest.mark.django_db


def test_no_key_in_any_page_or_admin_page(client, staff, rich_run):
    item = rich_run.items.first()
    urls = [
        "/batch-import/runs",
        f"/batch-import/runs/{rich_run.run_id}",
        f"/batch-import/runs/{rich_run.run_id}/items/{item.item_id}",
        "/admin/batch_import/importrun/",
        f"/admin/batch_import/importrun/{rich_run.run_id}/change/",
        "/admin/batch_import/importrunitem/",
        f"/admin/batch_import/importrunitem/{item.item_id}/change/",
        "/admin/batch_import/importrunitemevent/",
        "/admin/hosts/host/",
        f"/admin/hosts/host/{rich_run.host_id}/change/",
    ]
    for url in urls:
        answer = client.get(url)
        assert answer.status_code == 200, url
        html = answer.content.decode()
        for secret in (*SECRET_KEYS, PROBE_KEY, "admin-" + "a" * 64):
            assert secret not in html, (url, secret)
