"""Tokens issued before hashing (DRF's ``authtoken_token``, plain keys) become hashed ones; the
plain rows are deleted, so no database dump holds a usable key any more."""

from __future__ import annotations

import hashlib

from django.db import migrations


def hash_plain_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    api_token = apps.get_model("relay_project", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id FROM authtoken_token")
        rows = cursor.fetchall()
        for key, user_id in rows:
            api_token.objects.update_or_create(
                user_id=user_id,
                defaults={"digest": hashlib.sha256(key.encode()).hexdigest(), "prefix": key[:8]},
            )
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    dependencies = [("relay_project", "0001_api_tokens")]

    operations = [migrations.RunPython(hash_plain_tokens, migrations.RunPython.noop)]
