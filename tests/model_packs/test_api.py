from __future__ import annotations

import pytest

from model_packs.models import Pack
from tests.api.conftest import anon, api, token, user  # noqa: F401
from tests.model_packs.builders import pack_files, zipped

pytestmark = pytest.mark.django_db


def _upload(api, data: bytes, **extra):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = {"file": SimpleUploadedFile("pack.zip", data, "application/zip"), **extra}
    return api.post("/api/packs/install", body, format="multipart")


def test_install_from_a_zip_then_again(api):  # noqa: F811
    response = _upload(api, zipped(pack_files()))
    assert response.status_code == 201, response.json()
    assert response.json()["pack"]["provider_ids"] == ["deepseek"]
    again = _upload(api, zipped(pack_files()))
    assert again.status_code == 200 and again.json()["created"] is False


def test_install_refuses_zip_slip_naming_the_member(api):  # noqa: F811
    response = _upload(api, zipped({**pack_files(), "../../evil.py": b"x"}))
    assert response.status_code == 422
    assert "path traversal" in response.json()["error"]["fields"]["../../evil.py"]
    assert not Pack.objects.exists()


def test_install_names_the_failing_rule(api):  # noqa: F811
    response = _upload(api, zipped({k: v for k, v in pack_files().items() if k != "pack.json"}))
    assert response.status_code == 422
    assert "missing" in response.json()["error"]["fields"]["pack.json"]


def test_install_from_a_folder_of_the_packs_dir(api, settings, tmp_path):  # noqa: F811
    settings.RELAY_PACKS_DIR = tmp_path
    folder = tmp_path / "mine"
    for name, data in pack_files().items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert api.post("/api/packs/install", {"folder": "mine"}, format="json").status_code == 201
    outside = api.post("/api/packs/install", {"folder": "../"}, format="json")
    assert outside.status_code == 422 and "folder" in outside.json()["error"]["fields"]
    missing = api.post("/api/packs/install", {"folder": "absent"}, format="json")
    assert missing.status_code == 404 and "folder" in missing.json()["error"]["fields"]


def test_install_needs_exactly_one_source_and_an_existing_host(api):  # noqa: F811
    assert api.post("/api/packs/install", {}, format="json").status_code == 400
    response = _upload(api, zipped(pack_files()), host_id=999)
    assert response.status_code == 404
    assert response.json()["error"]["fields"] == {"host_id": "host 999 does not exist"}


def test_list_detail_and_providers(api):  # noqa: F811
    _upload(api, zipped(pack_files(version="1.0.0")))
    _upload(api, zipped(pack_files(version="1.1.0")))
    listed = api.get("/api/packs").json()["packs"]
    assert [(p["pack_id"], p["version"]) for p in listed] == [("test-pack", "1.1.0")]
    detail = api.get("/api/packs/test-pack").json()
    assert detail["versions"] == ["1.0.0", "1.1.0"] and detail["is_current"]
    providers = api.get("/api/packs/test-pack/providers").json()
    assert providers["providers"][0]["prices"]["model-a"]["input"] == 0.5
    assert api.get("/api/packs/nope").status_code == 404


def test_packs_need_authentication(anon):  # noqa: F811
    response = anon.get("/api/packs")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "packs" not in response.json()


def test_changed_content_under_an_installed_version_is_a_conflict(api):  # noqa: F811
    _upload(api, zipped(pack_files()))
    response = _upload(api, zipped(pack_files(name="Renamed")))
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("language", "missing", "traversal"),
    [
        ("en", "missing: a pack needs pack.json at its root", "(path traversal)"),
        ("zh-hans", "缺失:模型包根目录需要 pack.json", "(路径穿越)"),
    ],
)
def test_pack_rules_answer_in_the_callers_language(api, language, missing, traversal):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload(files):
        body = {"file": SimpleUploadedFile("pack.zip", zipped(files), "application/zip")}
        return api.post(
            "/api/packs/install", body, format="multipart", HTTP_ACCEPT_LANGUAGE=language
        )

    no_manifest = upload({k: v for k, v in pack_files().items() if k != "pack.json"})
    assert no_manifest.json()["error"]["fields"]["pack.json"] == missing
    slip = upload({**pack_files(), "../../evil.py": b"x"})
    assert traversal in slip.json()["error"]["fields"]["../../evil.py"]


def test_an_empty_archive_is_a_422_naming_the_file(api):  # noqa: F811
    from django.core.files.uploadedfile import SimpleUploadedFile

    empty = SimpleUploadedFile("pack.zip", b"", content_type="application/zip")
    response = api.post("/api/packs/install", {"file": empty}, format="multipart")
    assert response.status_code == 422
    assert "file" in response.json()["error"]["fields"]
    assert not Pack.objects.exists()
