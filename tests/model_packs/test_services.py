from __future__ import annotations

import pytest

from model_packs.models import Pack, PackProvider
from model_packs.selectors import pack_profile_for
from model_packs.services import install_pack, resolve_pack_folder
from model_packs.validation import PackRejected
from tests.factories import HostFactory
from tests.model_packs.builders import pack_files, provider

pytestmark = pytest.mark.django_db


def test_install_pack_stores_pack_and_providers():
    pack, created = install_pack(files=pack_files(), installed_by="ops")
    assert created and pack.is_current and pack.installed_by == "ops"
    stored = PackProvider.objects.get(pack=pack)
    assert (stored.provider_id, stored.hostname) == ("deepseek", "deepseek.example.com")


def test_install_pack_twice_is_harmless():
    first, _ = install_pack(files=pack_files())
    again, created = install_pack(files=pack_files())
    assert again.pk == first.pk and created is False
    assert Pack.objects.count() == 1 and PackProvider.objects.count() == 1


def test_install_pack_refuses_changed_content_under_the_same_version():
    install_pack(files=pack_files())
    with pytest.raises(PackRejected) as caught:
        install_pack(files=pack_files(name="Renamed"))
    assert "needs a new version" in caught.value.errors["pack.json.version"]


def test_an_upgrade_is_a_new_version_and_becomes_current():
    old, _ = install_pack(files=pack_files(version="1.0.0"))
    new, _ = install_pack(files=pack_files(version="1.10.0"))
    install_pack(files=pack_files(version="1.9.0"))  # an older one installed later
    current = Pack.objects.get(is_current=True)
    assert current.pk == new.pk and Pack.objects.count() == 3
    old.refresh_from_db()
    assert old.is_current is False


def test_install_pack_checks_the_host_version():
    host = HostFactory(version="2.0.0", name="prod")
    with pytest.raises(PackRejected) as caught:
        install_pack(files=pack_files(), host=host)
    assert "prod runs 2.0.0" in caught.value.errors["host_versions"]
    assert not Pack.objects.exists()


def test_resolve_pack_folder_stays_inside_the_packs_dir(settings, tmp_path):
    settings.RELAY_PACKS_DIR = tmp_path
    (tmp_path / "mine").mkdir()
    assert resolve_pack_folder("mine") == (tmp_path / "mine").resolve()
    for name in ("../", "../../etc", "/etc", ""):
        with pytest.raises(PackRejected):
            resolve_pack_folder(name)


def test_pack_profile_for_matches_the_upstream_host_and_converts_prices():
    install_pack(files=pack_files())
    profile = pack_profile_for("https://DeepSeek.example.com/v1/", host_version="0.1.126")
    assert profile.provider_id == "deepseek"
    assert profile.token_prices("model-a") == pytest.approx(
        {"input_price": 5e-7, "output_price": 2e-6, "cache_read_price": 1e-7}
    )
    assert pack_profile_for("https://other.example.com/v1") is None
    assert pack_profile_for("https://deepseek.example.com", host_version="5.0") is None


def test_pack_profile_for_prefers_the_same_path():
    install_pack(
        files=pack_files(
            providers=[
                provider("a", base_url="https://api.example.com/compatible/v1"),
                provider("b", base_url="https://api.example.com/v1"),
            ]
        )
    )
    assert pack_profile_for("https://api.example.com/compatible").provider_id == "a"
    assert pack_profile_for("https://api.example.com/v1").provider_id == "b"
