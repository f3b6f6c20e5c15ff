"""``import_batches.status`` follows seed 002 §4.2 (succeeded / partially_succeeded / failed and
the rollback states) instead of staying ``running``: existing rows get the status their run's
outcome and rollback give (the rule of ``run_state.legacy_batch_status`` when this was
written)."""

from django.db import migrations, models

# A rollback that left resources behind marks the batch failed (seed 002 §5.5).
ROLLBACK = {
    "rollback_running": "rollback_running",
    "rollback_partial": "failed",
    "rolled_back": "rolled_back",
}


def batch_status(run, rollback_status):
    if rollback_status:
        return ROLLBACK[rollback_status]
    if run is None or run.state == "running":
        return "running"
    if run.state == "failed" or run.active_items == 0:
        return "failed"
    if run.active_items == run.total_items:
        return "succeeded"
    return "partially_succeeded"


def backfill(apps, schema_editor):
    Batch = apps.get_model("batch_import", "LegacyImportBatch")
    Run = apps.get_model("batch_import", "ImportRun")
    Rollback = apps.get_model("batch_import", "RunRollback")
    for batch in Batch.objects.only("pk", "run_id", "status").iterator(chunk_size=500):
        run = Run.objects.filter(pk=batch.run_id).first()
        rollback = Rollback.objects.filter(run_id=batch.run_id).values_list("status", flat=True)
        status = batch_status(run, rollback.first())
        if status != batch.status:
            Batch.objects.filter(pk=batch.pk).update(status=status)


def back_to_v1(apps, schema_editor):
    """The old set had no outcome states: a finished batch read ``completed``."""
    Batch = apps.get_model("batch_import", "LegacyImportBatch")
    Batch.objects.filter(status__in=["succeeded", "partially_succeeded"]).update(status="completed")
    Batch.objects.filter(status__in=["pending", "previewed"]).update(status="running")


class Migration(migrations.Migration):
    dependencies = [("batch_import", "0009_capability_profile_seed_shape")]

    operations = [
        migrations.AlterField(
            model_name="legacyimportbatch",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "pending"),
                    ("previewed", "previewed"),
                    ("running", "running"),
                    ("succeeded", "succeeded"),
                    ("partially_succeeded", "partially succeeded"),
                    ("failed", "failed"),
                    ("rollback_running", "rollback running"),
                    ("rolled_back", "rolled back"),
                ],
                default="running",
                max_length=20,
                verbose_name="status",
            ),
        ),
        migrations.RunPython(backfill, back_to_v1),
    ]
