"""Installing packs: read safely, validate, store; the same pack twice is a no-op."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from hosts.models import Host
from model_packs.archive import PackArchiveError, read_folder, read_zip
from model_packs.models import Pack, PackProvider
from model_packs.validation import (
    PackConflict,
    PackNotFound,
    PackRejected,
    ValidatedPack,
    parse_version,
    validate_pack,
)


def packs_root() -> Path:
    return Path(settings.RELAY_PACKS_DIR)


def pack_files(*, zip_bytes: bytes | None = None, folder: Path | None = None) -> dict[str, bytes]:
    """A pack's files from exactly one source; unsafe content is a PackRejected."""
    try:
        if zip_bytes is not None:
            return read_zip(zip_bytes)
        if folder is not None:
            return read_folder(folder)
    except PackArchiveError as exc:
        raise PackRejected({exc.field: exc.message}) from None
    raise PackRejected({"file": "give a zip archive or a folder"})


def resolve_pack_folder(name: str) -> Path:
    """An API client names a folder under RELAY_PACKS_DIR; it never reaches outside it."""
    root = packs_root().resolve()
    folder = (root / name).resolve()
    if not name or folder == root or not folder.is_relative_to(root):
        raise PackRejected({"folder": f"must name a folder inside the packs directory ({root})"})
    if not folder.is_dir():
        raise PackNotFound({"folder": f"no pack folder named {name!r}"})
    return folder


def install_pack(
    *, files: dict[str, bytes], host: Host | None = None, installed_by: str = ""
) -> tuple[Pack, bool]:
    """Validate and store a pack; returns ``(pack, created)``. The same pack_id + version with
    the same content is returned as it is; with other content it is refused (a changed pack is
    a new version). The highest installed version of a pack_id becomes the current one."""
    validated = validate_pack(
        files,
        host_version=host.version if host is not None else None,
        host_name=host.name if host is not None else "",
    )
    existing = Pack.objects.filter(pack_id=validated.pack_id, version=validated.version).first()
    if existing is not None:
        return _same_or_refuse(existing, validated), False
    try:
        with transaction.atomic():
            pack = _store(validated, installed_by)
    except IntegrityError:  # installed concurrently by someone else
        existing = Pack.objects.get(pack_id=validated.pack_id, version=validated.version)
        return _same_or_refuse(existing, validated), False
    return pack, True


def _same_or_refuse(existing: Pack, validated: ValidatedPack) -> Pack:
    if existing.content_digest != validated.content_digest:
        raise PackConflict(
            {
                "pack.json.version": _(
                    "%(pack_id)s %(version)s is already installed with other content; "
                    "a changed pack needs a new version"
                )
                % {"pack_id": validated.pack_id, "version": validated.version}
            }
        )
    return existing


def _store(validated: ValidatedPack, installed_by: str) -> Pack:
    pack = Pack.objects.create(
        pack_id=validated.pack_id,
        version=validated.version,
        name=validated.name,
        description=validated.description,
        notes=validated.notes,
        host_versions=validated.host_versions,
        content_digest=validated.content_digest,
        installed_by=installed_by,
    )
    PackProvider.objects.bulk_create(
        PackProvider(pack=pack, **asdict(spec)) for spec in validated.providers
    )
    _elect_current(validated.pack_id)
    pack.refresh_from_db()
    return pack


def _elect_current(pack_id: str) -> None:
    versions = list(Pack.objects.select_for_update().filter(pack_id=pack_id))
    newest = max(versions, key=lambda p: parse_version(p.version))
    Pack.objects.filter(pack_id=pack_id).exclude(pk=newest.pk).update(is_current=False)
    Pack.objects.filter(pk=newest.pk).update(is_current=True)
