"""Stored capability profiles take seed 004's shape: a model feature is true/false once settled,
"unknown" otherwise (rows written before stored "yes"/"no")."""

from django.db import migrations

FEATURES = ("supports_stream", "supports_tools", "supports_reasoning_fields")
TO_SEED = {"yes": True, "no": False}
FROM_SEED = {True: "yes", False: "no"}


def _convert(profile, mapping):
    changed = False
    for model in (profile or {}).get("model_profiles") or []:
        if not isinstance(model, dict):
            continue
        for name in FEATURES:
            value = model.get(name)
            if isinstance(value, bool | str) and value in mapping:
                model[name] = mapping[value]
                changed = True
    return changed


def _rewrite(apps, mapping):
    Item = apps.get_model("batch_import", "ImportRunItem")
    items = Item.objects.exclude(capability_profile=None).only("pk", "capability_profile")
    for item in items.iterator(chunk_size=500):
        if _convert(item.capability_profile, mapping):
            Item.objects.filter(pk=item.pk).update(capability_profile=item.capability_profile)


def to_seed_shape(apps, schema_editor):
    _rewrite(apps, TO_SEED)


def to_yes_no(apps, schema_editor):
    _rewrite(apps, FROM_SEED)


class Migration(migrations.Migration):
    dependencies = [("batch_import", "0008_verbose_names")]

    operations = [migrations.RunPython(to_seed_shape, to_yes_no)]
