from __future__ import annotations

import logging

import pytest
from django.db import connection

from hosts.models import Host
from relay_project import crypto
from relay_project.crypto import Secret, display_fingerprint, matching_digest
from relay_project.logging import RedactSecretsFilter
from tests.factories import HostFactory


def test_secret_never_shows_its_value():
    secret = Secret("admin-0123456789abcdef")
    shown = [str(secret), repr(secret), f"{secret}", " ".join([str(secret)]), f"{secret!r}"]
    assert all("0123456789" not in text for text in shown)
    assert secret.reveal() == "admin-0123456789abcdef"


def test_exception_message_with_a_secret_stays_masked():
    secret = Secret("sk-abcdef123456")
    error = ValueError(f"login failed for {secret}")
    assert "abcdef" not in str(error)


def test_fingerprint_display_is_short_and_digest_is_keyed():
    assert display_fingerprint("sk-one") == display_fingerprint(Secret("sk-one"))
    assert display_fingerprint("sk-one") != display_fingerprint("sk-two")
    assert len(matching_digest("sk-one")) == 64
    import hashlib

    assert matching_digest("sk-one") != hashlib.sha256(b"sk-one").hexdigest()


@pytest.mark.django_db
def test_host_credential_round_trips_encrypted():
    host = HostFactory(admin_credential="admin-" + "f" * 64)
    with connection.cursor() as cursor:
        cursor.execute("SELECT admin_credential FROM hosts_host WHERE id = %s", [host.pk])
        (raw,) = cursor.fetchone()
    assert "ffffffff" not in raw
    assert Host.objects.get(pk=host.pk).admin_credential.reveal() == "admin-" + "f" * 64


def test_log_filter_masks_key_shaped_text():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "key=%s", ("sk-abcdef123456",), None)
    RedactSecretsFilter().filter(record)
    assert "abcdef" not in record.getMessage()


@pytest.mark.django_db
def test_a_stored_secret_is_decrypted_when_first_revealed_only(monkeypatch):
    """Reading a row does not decrypt its secrets; revealing one does, once, and the value
    then behaves as any Secret (masked, equal to the same value, registered for redaction)."""
    from relay_project import crypto

    host = HostFactory(admin_credential="admin-" + "e" * 64)
    calls = []
    monkeypatch.setattr(crypto, "decrypt", lambda token: calls.append(token) or "admin-" + "e" * 64)
    loaded = Host.objects.get(pk=host.pk).admin_credential
    assert calls == []
    assert loaded and str(loaded) == crypto.MASK and "eeee" not in repr(loaded)
    assert loaded == Secret("admin-" + "e" * 64)
    assert loaded.reveal() == "admin-" + "e" * 64
    assert len(calls) == 1
    record = logging.LogRecord("x", logging.INFO, "f", 1, "cred %s", ("admin-" + "e" * 64,), None)
    RedactSecretsFilter().filter(record)
    assert "eeee" not in record.getMessage()


@pytest.mark.django_db
def test_an_empty_stored_secret_reads_as_an_empty_secret():
    host = HostFactory(admin_credential="")
    loaded = Host.objects.get(pk=host.pk).admin_credential
    assert not loaded and loaded.reveal() == ""


def test_a_token_is_decrypted_once_per_process_and_keys(monkeypatch, settings):
    token = crypto.encrypt("sk-upstream-" + "d" * 40)
    decryptions = []
    real = crypto._fernet

    def counting(setting):
        fernet = real(setting)

        class Counting:
            def decrypt(self, data):
                decryptions.append(setting)
                return fernet.decrypt(data)

        return Counting()

    monkeypatch.setattr(crypto, "_fernet", counting)
    crypto._decrypted.cache_clear()
    assert [crypto.decrypt(token) for _ in range(3)] == ["sk-upstream-" + "d" * 40] * 3
    assert len(decryptions) == 1
    new_key = crypto.Fernet.generate_key().decode()
    settings.RELAY_ENCRYPTION_KEY = (
        f"{new_key},{settings.RELAY_ENCRYPTION_KEY or crypto._dev_key()}"
    )
    assert crypto.decrypt(token) == "sk-upstream-" + "d" * 40  # rotated keys: decrypted anew
    assert len(decryptions) == 2
