"""Backfill the inventory from the import runs that existed before it (ARCHITECTURE §9).

Historical models only, so the rules are restated here in their simplest form: the same
outcome the services would reach for runs that nothing reconciled yet.
"""

from __future__ import annotations

from django.db import migrations

GONE = ("removed", "missing")


def backfill(apps, schema_editor) -> None:
    Item = apps.get_model("batch_import", "ImportRunItem")
    Provider = apps.get_model("providers", "Provider")
    Account = apps.get_model("providers", "ProviderAccount")
    Check = apps.get_model("providers", "ProviderCheck")
    Event = apps.get_model("providers", "ProviderEvent")
    items = (
        Item.objects.filter(current_stage="done", run__is_preview=False)
        .select_related("run")
        .order_by("updated_at", "position")
    )
    touched = {}
    for item in items.iterator():
        provider, _ = Provider.objects.get_or_create(
            host_id=item.run.host_id,
            provider_id=item.provider_id,
            defaults={"base_url": item.base_url},
        )
        provider.base_url = item.base_url
        provider.families = sorted(set(provider.families) | set(item.canonical_model_families))
        if item.raw_models:
            provider.upstream_models = list(item.raw_models)
        provider.last_import_run_id = item.run_id
        provider.save()
        touched[provider.pk] = provider
        if item.account_id is None:
            continue
        ok = item.access_status == "active"
        account, _ = Account.objects.get_or_create(
            provider=provider, host_account_id=item.account_id
        )
        account.key_fingerprint = item.api_key_fingerprint
        account.api_key_digest = item.api_key_digest
        account.status = "removed" if item.rolled_back_at else ("active" if ok else "failing")
        if item.access_status != "unknown":
            account.last_test_ok = ok
            account.last_test_at = item.updated_at
            account.last_failure_transient = item.access_status == "degraded"
            account.last_latency_ms = (item.validation_evidence or {}).get("latency_ms")
        account.save()
        if item.last_error_stage in (None, "validate") and item.access_status != "unknown":
            Check.objects.update_or_create(
                import_item_id=item.item_id,
                defaults={
                    "provider": provider,
                    "account": account,
                    "kind": "gateway",
                    "access_mode": item.run.access_mode,
                    "ok": ok,
                    "transient": item.access_status == "degraded",
                    "latency_ms": account.last_latency_ms,
                    "message": "" if ok else (item.last_error or "")[:2000],
                    "created_at": item.updated_at,
                },
            )
    for provider in touched.values():
        accounts = [a for a in Account.objects.filter(provider=provider) if a.status not in GONE]
        passing = [a for a in accounts if a.status == "active" and a.last_test_ok]
        if not accounts:
            state = "validated" if provider.families else "failed"
        elif passing and len(passing) == len(accounts):
            state = "active"
        elif passing or any(a.last_failure_transient for a in accounts):
            state = "degraded"
        elif all(a.last_test_ok is None for a in accounts):
            state = "installed"
        else:
            state = "failed"
        latest = {}
        for mode in ("subscription", "self_service"):
            check = (
                Check.objects.filter(provider=provider, kind="gateway", access_mode=mode)
                .order_by("-created_at", "-id")
                .first()
            )
            if check is not None:
                latest[mode] = check.ok
        sub, self_service = latest.get("subscription"), latest.get("self_service")
        if not latest:
            access = "not_configured"
        elif sub and self_service:
            access = "fully_ready"
        elif sub:
            access = "subscription_ready"
        elif self_service:
            access = "self_service_ready"
        else:
            access = "broken"
        Provider.objects.filter(pk=provider.pk).update(
            state=state, access_status=access, state_reason="backfilled from import runs"
        )
        Event.objects.create(
            provider=provider,
            event_type="state_changed",
            from_state="discovered",
            to_state=state,
            message="backfilled from import runs",
            actor="migration",
            payload={"access_status": access},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0001_initial"),
        ("batch_import", "0005_item_validation_evidence"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
