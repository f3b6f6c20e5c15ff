"""Read a pack's files from a zip or a folder into memory, refusing anything unsafe.

Nothing is ever extracted to disk, so a hostile name cannot write anywhere; names that try
(``../``, absolute paths, drive letters, backslashes) and links are still refused with a clear
message, because a pack carrying them was not built by a well-meaning tool.
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

from django.utils.translation import gettext as _

MAX_ARCHIVE_BYTES = 5 * 1024 * 1024
MAX_TOTAL_BYTES = 20 * 1024 * 1024
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 200


class PackArchiveError(Exception):
    """The archive or folder cannot be read safely. ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def safe_member_name(name: str) -> str:
    """The member's relative posix path, or PackArchiveError for a path that leaves the pack."""
    if "\\" in name or "\x00" in name:
        raise PackArchiveError(name, _("file names must use / and contain no NUL"))
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise PackArchiveError(name, _("absolute paths are not allowed in a pack"))
    if any(part == ".." for part in path.parts):
        raise PackArchiveError(name, _("'..' is not allowed in a pack path (path traversal)"))
    return str(path)


def read_zip(data: bytes) -> dict[str, bytes]:
    if len(data) > MAX_ARCHIVE_BYTES:
        raise PackArchiveError(
            "file",
            _("the archive is larger than %(max_archive_bytes)s bytes")
            % {"max_archive_bytes": MAX_ARCHIVE_BYTES},
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise PackArchiveError("file", _("not a zip archive")) from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        _check_count(len(members))
        # The declared sizes are checked before anything is read (a zip bomb declares small
        # compressed sizes); reading is then capped, should a declared size lie.
        total = 0
        for info in members:
            safe_member_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise PackArchiveError(info.filename, _("links are not allowed in a pack"))
            total += _check_size(info.filename, info.file_size, total)
        files: dict[str, bytes] = {}
        for info in members:
            with archive.open(info) as handle:
                content = handle.read(MAX_FILE_BYTES + 1)
            _check_size(info.filename, len(content), 0)
            files[safe_member_name(info.filename)] = content
    return _strip_top_folder(files)


def read_folder(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        raise PackArchiveError("folder", _("%(root)s is not a folder") % {"root": root})
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            raise PackArchiveError(relative, _("links are not allowed in a pack"))
        if path.is_dir():
            continue
        _check_count(len(files) + 1)
        total += _check_size(relative, path.stat().st_size, total)
        files[relative] = path.read_bytes()
    return files


def _check_count(count: int) -> None:
    if count > MAX_FILES:
        raise PackArchiveError(
            "file", _("a pack holds at most %(max_files)s files") % {"max_files": MAX_FILES}
        )


def _check_size(name: str, size: int, total_so_far: int) -> int:
    if size > MAX_FILE_BYTES:
        raise PackArchiveError(
            name,
            _("a pack file may be at most %(max_file_bytes)s bytes")
            % {"max_file_bytes": MAX_FILE_BYTES},
        )
    if total_so_far + size > MAX_TOTAL_BYTES:
        raise PackArchiveError(
            "file",
            _("a pack may hold at most %(max_total_bytes)s bytes")
            % {"max_total_bytes": MAX_TOTAL_BYTES},
        )
    return size


def _strip_top_folder(files: dict[str, bytes]) -> dict[str, bytes]:
    """A zip of the pack's folder (``cn-common/pack.json``) reads like a zip of its content."""
    if "pack.json" in files or not files:
        return files
    tops = {PurePosixPath(name).parts[0] for name in files}
    if len(tops) == 1 and all(len(PurePosixPath(n).parts) > 1 for n in files):
        top = tops.pop()
        return {str(PurePosixPath(name).relative_to(top)): data for name, data in files.items()}
    return files
