from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from model_packs.models import Pack
from tests.model_packs.builders import pack_files, zipped
from tests.pages.conftest import staff  # noqa: F401

pytestmark = pytest.mark.django_db
URL = "/admin/model_packs/pack/install/"


def test_admin_installs_a_zip_and_lists_it(client, staff):  # noqa: F811
    upload = SimpleUploadedFile("p.zip", zipped(pack_files()), "application/zip")
    response = client.post(URL, {"file": upload})
    assert response.status_code == 302
    assert Pack.objects.get().pack_id == "test-pack"
    assert b"test-pack" in client.get("/admin/model_packs/pack/").content


def test_admin_shows_the_rejection(client, staff):  # noqa: F811
    upload = SimpleUploadedFile("p.zip", zipped(pack_files(providers=[])), "application/zip")
    response = client.post(URL, {"file": upload})
    assert response.status_code == 200 and b"no provider" in response.content
    assert not Pack.objects.exists()
