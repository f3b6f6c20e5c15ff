from __future__ import annotations

import factory

from batch_import.identity import api_key_digest, api_key_fingerprint
from batch_import.models import (
    RUN_COUNT_COLUMNS,
    ImportRun,
    ImportRunCounterShard,
    ImportRunItem,
    ImportRunItemEvent,
)
from hosts.models import Host


class HostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Host

    name = factory.Sequence(lambda n: f"host-{n}")
    base_url = factory.Sequence(lambda n: f"http://127.0.0.1:{9000 + n}")
    auth_type = Host.AuthType.ADMIN_API_KEY
    admin_credential = "admin-" + "a" * 64
    status = Host.Status.SUPPORTED
    version = "0.1.115.1"


class ImportRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportRun

    host = factory.SubFactory(HostFactory)
    mode = ImportRun.Mode.PARTIAL
    access_mode = ImportRun.AccessMode.SUBSCRIPTION
    subscription_users = factory.LazyFunction(lambda: ["ops@example.com"])
    subscription_days = 30

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Counts given (``total_items=4``) make a counted run whose shards hold them; without
        them the run is never counted (its first transition counts it)."""
        counts = {name: kwargs.pop(name) for name in RUN_COUNT_COLUMNS if name in kwargs}
        run = super()._create(model_class, *args, **kwargs)
        if counts:
            ImportRunCounterShard.objects.bulk_create(
                ImportRunCounterShard(run=run, shard=n, **(counts if n == 0 else {}))
                for n in range(ImportRunCounterShard.SHARDS)
            )
        vars(run).update({name: counts.get(name, 0) for name in RUN_COUNT_COLUMNS})
        return run

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        counts = {name: kwargs.pop(name, 0) for name in RUN_COUNT_COLUMNS}
        run = super()._build(model_class, *args, **kwargs)
        vars(run).update(counts)  # as a run read ``with_counts()``
        return run


class ImportRunItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportRunItem
        exclude = ("key",)

    run = factory.SubFactory(ImportRunFactory)
    position = factory.Sequence(int)
    base_url = factory.Sequence(lambda n: f"https://relay{n}.example.com/v1")
    provider_id = factory.Sequence(lambda n: f"relay{n}-example-0000{n:04d}")
    key = factory.Sequence(lambda n: f"sk-upstream-{n:06d}")
    api_key = factory.LazyAttribute(lambda o: o.key)
    api_key_fingerprint = factory.LazyAttribute(lambda o: api_key_fingerprint(o.key))
    api_key_digest = factory.LazyAttribute(lambda o: api_key_digest(o.key))


class ImportRunItemEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImportRunItemEvent

    item = factory.SubFactory(ImportRunItemFactory)
    run = factory.LazyAttribute(lambda o: o.item.run)
    event_type = ImportRunItemEvent.EventType.STAGE_STARTED
    stage = ImportRunItem.Stage.PROBE


def item_row(run: ImportRun, position: int, key: str, **fields) -> ImportRunItem:
    """An unsaved item of ``run`` with ``key`` and its fingerprint and digest, for the tests
    that seed thousands of rows with one ``bulk_create``."""
    fields.setdefault("base_url", "https://relay.example.com/v1")
    fields.setdefault("provider_id", "relay-example-com")
    return ImportRunItem(
        run=run,
        position=position,
        api_key=key,
        api_key_fingerprint=api_key_fingerprint(key),
        api_key_digest=api_key_digest(key),
        **fields,
    )
