from __future__ import annotations

import io
import stat
import zipfile

import pytest

from model_packs import archive
from model_packs.archive import PackArchiveError, read_folder, read_zip
from tests.model_packs.builders import pack_files, zipped


def test_read_zip_reads_a_zipped_folder_like_its_content():
    files = pack_files()
    assert read_zip(zipped(files, prefix="cn-common/")) == files


@pytest.mark.parametrize("name", ["../evil.json", "providers/../../evil", "/etc/passwd", "C:/x"])
def test_read_zip_refuses_paths_that_leave_the_pack(name):
    with pytest.raises(PackArchiveError) as caught:
        read_zip(zipped({**pack_files(), name: b"x"}))
    assert caught.value.field == name


def test_read_zip_refuses_links():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        info = zipfile.ZipInfo("providers/link.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(PackArchiveError, match="links"):
        read_zip(buffer.getvalue())


def test_read_zip_refuses_a_bomb_by_its_declared_size(monkeypatch):
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 1000)
    bomb = zipped({"pack.json": b"0" * 5000})  # compresses to a few bytes
    assert len(bomb) < 1000
    with pytest.raises(PackArchiveError, match="at most 1000 bytes"):
        read_zip(bomb)


def test_read_zip_refuses_too_large_archives_and_too_many_files(monkeypatch):
    monkeypatch.setattr(archive, "MAX_FILES", 3)
    with pytest.raises(PackArchiveError, match="at most 3 files"):
        read_zip(zipped({f"f{i}": b"x" for i in range(4)}))
    monkeypatch.setattr(archive, "MAX_ARCHIVE_BYTES", 10)
    with pytest.raises(PackArchiveError, match="larger than 10 bytes"):
        read_zip(zipped(pack_files()))


def test_read_zip_refuses_what_is_not_a_zip():
    with pytest.raises(PackArchiveError, match="not a zip"):
        read_zip(b"PK nope")


def test_read_folder_refuses_links(tmp_path):
    (tmp_path / "pack.json").write_text("{}")
    (tmp_path / "leak.json").symlink_to("/etc/hostname")
    with pytest.raises(PackArchiveError, match="links"):
        read_folder(tmp_path)
