from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection

from hosts.models import Host
from relay_project import crypto
from tests.factories import HostFactory

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def _raw_credential(host: Host) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT admin_credential FROM hosts_host WHERE id = %s", [host.pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_rotation_re_encrypts_every_secret_with_the_new_key(settings):
    settings.RELAY_ENCRYPTION_KEY = OLD
    host = HostFactory(admin_credential="admin-rotate-me-0123456789")
    fingerprint = crypto.matching_digest("sk-stable")
    assert Fernet(OLD.encode()).decrypt(_raw_credential(host).encode())

    settings.RELAY_ENCRYPTION_KEY = f"{NEW},{OLD}"
    settings.RELAY_FINGERPRINT_KEY = OLD
    # Both keys read the old rows before the rotation.
    assert Host.objects.get(pk=host.pk).admin_credential.reveal() == "admin-rotate-me-0123456789"
    call_command("rotate_secrets", stdout=__import__("io").StringIO())

    raw = _raw_credential(host)
    assert Fernet(NEW.encode()).decrypt(raw.encode()) == b"admin-rotate-me-0123456789"
    settings.RELAY_ENCRYPTION_KEY = NEW  # old key dropped: everything still reads
    assert Host.objects.get(pk=host.pk).admin_credential.reveal() == "admin-rotate-me-0123456789"
    assert crypto.matching_digest("sk-stable") == fingerprint


@pytest.mark.django_db
def test_rotation_without_a_fixed_fingerprint_key_is_refused(settings):
    settings.RELAY_ENCRYPTION_KEY = f"{NEW},{OLD}"
    settings.RELAY_FINGERPRINT_KEY = ""
    with pytest.raises(CommandError, match="RELAY_FINGERPRINT_KEY"):
        call_command("rotate_secrets")


def test_a_bad_key_in_the_list_is_named_by_position(settings):
    settings.RELAY_ENCRYPTION_KEY = f"{NEW},not-a-key"
    with pytest.raises(Exception, match="key 2 is not a valid Fernet key"):
        crypto.encrypt("x")
