"""Run counters are kept incrementally (each item transition adds its change): the two counts
the run state needs besides the shown ones get columns, and existing runs are counted once from
their items (the rule of ``selectors.run_counts`` when this was written), marked ready."""

from django.db import migrations, models
from django.db.models import Count, Q

PRE_VALIDATION_STAGES = ["probe", "provision"]


def count_existing_runs(apps, schema_editor):
    Run = apps.get_model("batch_import", "ImportRun")
    Item = apps.get_model("batch_import", "ImportRunItem")
    done = Q(current_stage="done")
    failed_before_validation = done & Q(access_status="unknown") & Q(last_error_stage__isnull=False)
    rows = (
        Item.objects.values("run_id")
        .order_by()
        .annotate(
            total_items=Count("pk"),
            completed_items=Count("pk", filter=done),
            active_items=Count("pk", filter=Q(access_status="active")),
            degraded_items=Count("pk", filter=Q(access_status="degraded")),
            broken_items=Count("pk", filter=Q(access_status="broken") | failed_before_validation),
            warning_items=Count("pk", filter=Q(has_warning=True)),
            stage_ended_items=Count(
                "pk",
                filter=done
                & ~Q(access_status="active")
                & Q(last_error_stage__in=PRE_VALIDATION_STAGES),
            ),
            advisory_items=Count("pk", filter=Q(confirmation_status="advisory")),
        )
    )
    for row in rows.iterator(chunk_size=500):
        run_id = row.pop("run_id")
        Run.objects.filter(pk=run_id).update(**row, counters_ready=True)
    # Runs without items: every count is 0, which the columns already hold.
    Run.objects.filter(counters_ready=False).exclude(
        run_id__in=Item.objects.values("run_id")
    ).update(
        total_items=0,
        completed_items=0,
        active_items=0,
        degraded_items=0,
        broken_items=0,
        warning_items=0,
        counters_ready=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("batch_import", "0013_items_problems_first_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="importrun",
            name="advisory_items",
            field=models.PositiveIntegerField(default=0, verbose_name="advisory items"),
        ),
        migrations.AddField(
            model_name="importrun",
            name="counters_ready",
            field=models.BooleanField(default=False, verbose_name="counters ready"),
        ),
        migrations.AddField(
            model_name="importrun",
            name="stage_ended_items",
            field=models.PositiveIntegerField(default=0, verbose_name="items ended by a stage"),
        ),
        migrations.RunPython(count_existing_runs, migrations.RunPython.noop, elidable=True),
    ]
