"""Run counts move to counter shards (``ImportRunCounterShard``): each run's counts, as its
columns held them, become its shard 0 (the other shards start at 0), then the columns go."""

import django.db.models.deletion
from django.db import migrations, models

SHARDS = 16
COLUMNS = (
    "total_items",
    "completed_items",
    "active_items",
    "degraded_items",
    "broken_items",
    "warning_items",
    "advisory_items",
    "stage_ended_items",
)


def move_counts_to_shards(apps, schema_editor):
    Run = apps.get_model("batch_import", "ImportRun")
    Shard = apps.get_model("batch_import", "ImportRunCounterShard")
    rows = Run.objects.filter(counters_ready=True).values_list("run_id", *COLUMNS)
    batch = []
    for run_id, *counts in rows.iterator(chunk_size=500):
        for shard in range(SHARDS):
            values = dict(zip(COLUMNS, counts if shard == 0 else [0] * len(COLUMNS), strict=True))
            batch.append(Shard(run_id=run_id, shard=shard, **values))
        if len(batch) >= 1000:
            Shard.objects.bulk_create(batch)
            batch = []
    Shard.objects.bulk_create(batch)
    # A run never counted gets its shards from its first transition's recount.


class Migration(migrations.Migration):
    dependencies = [
        ("batch_import", "0017_item_run_due_idx"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImportRunCounterShard",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("shard", models.PositiveSmallIntegerField(verbose_name="shard")),
                ("total_items", models.IntegerField(default=0, verbose_name="total items")),
                ("completed_items", models.IntegerField(default=0, verbose_name="completed items")),
                ("active_items", models.IntegerField(default=0, verbose_name="active items")),
                ("degraded_items", models.IntegerField(default=0, verbose_name="degraded items")),
                ("broken_items", models.IntegerField(default=0, verbose_name="broken items")),
                ("warning_items", models.IntegerField(default=0, verbose_name="warning items")),
                ("advisory_items", models.IntegerField(default=0, verbose_name="advisory items")),
                (
                    "stage_ended_items",
                    models.IntegerField(default=0, verbose_name="items ended by a stage"),
                ),
                (
                    "run",
                    models.ForeignKey(
                        db_column="run_id",
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="counter_shards",
                        to="batch_import.importrun",
                        verbose_name="run",
                    ),
                ),
            ],
            options={
                "verbose_name": "run counter shard",
                "verbose_name_plural": "run counter shards",
                "db_table": "import_run_counters",
                "constraints": [
                    models.UniqueConstraint(fields=("run", "shard"), name="run_counter_shard_uniq")
                ],
            },
        ),
        migrations.RunPython(move_counts_to_shards, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(
            model_name="importrun",
            name="active_items",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="advisory_items",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="broken_items",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="completed_items",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="counters_ready",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="degraded_items",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="stage_ended_items",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="total_items",
        ),
        migrations.RemoveField(
            model_name="importrun",
            name="warning_items",
        ),
    ]
