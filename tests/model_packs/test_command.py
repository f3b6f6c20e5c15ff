from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from model_packs.models import Pack
from tests.model_packs.builders import pack_files, zipped

pytestmark = pytest.mark.django_db
CN_COMMON = Path(__file__).resolve().parents[2] / "packs" / "cn-common"


def test_install_pack_from_the_shipped_folder_twice():
    out = StringIO()
    call_command("install_pack", str(CN_COMMON), stdout=out)
    call_command("install_pack", str(CN_COMMON), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("installed: cn-common") and "deepseek" in lines[0]
    assert lines[1].startswith("already installed: cn-common")
    assert Pack.objects.count() == 1


def test_install_pack_from_a_zip(tmp_path):
    path = tmp_path / "p.zip"
    path.write_bytes(zipped(pack_files()))
    call_command("install_pack", str(path), stdout=StringIO())
    assert Pack.objects.get().pack_id == "test-pack"


def test_install_pack_reports_the_rule(tmp_path):
    path = tmp_path / "p.zip"
    path.write_bytes(zipped(pack_files(providers=[])))
    with pytest.raises(CommandError, match="providers: no provider"):
        call_command("install_pack", str(path))
    with pytest.raises(CommandError, match="--host"):
        call_command("install_pack", str(path), host="nope")
