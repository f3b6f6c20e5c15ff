"""The host simulator's indexed tables: the answers of a scan, without the scan."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx

from hosts.simulator.rows import SimAccount, SimChannel, SimKey, SimSubscription
from hosts.simulator.tables import AccountTable, ChannelTable, KeyTable, SubscriptionTable
from hosts.sub2api import OpenAICredentials
from tests.hosts.test_simulator import client_for, provision

TOUCHED: list[str] = []
OPS = ("add", "move", "rename", "priority", "delete")


class Tripwire:
    """A row that notes every attribute read once armed."""

    def __getattribute__(self, name: str):
        if not name.startswith("__") and object.__getattribute__(self, "__dict__").get("armed"):
            TOUCHED.append(name)
        return object.__getattribute__(self, name)


class TripwireAccount(Tripwire, SimAccount):
    pass


class TripwireChannel(Tripwire, SimChannel):
    pass


class TripwireSubscription(Tripwire, SimSubscription):
    pass


def account(account_id: int, name: str = "a", groups=(), priority: int = 0) -> SimAccount:
    return SimAccount(
        id=account_id,
        name=name,
        platform="openai",
        type="apikey",
        credentials={},
        group_ids=list(groups),
        priority=priority,
    )


def assert_like_a_scan(table: AccountTable, groups, searches) -> None:
    for group_id in groups:
        scanned = [a for a in table.values() if group_id in a.group_ids]
        assert {a.id for a in table.in_group(group_id)} == {a.id for a in scanned}
        assert table.count_in_group(group_id) == len(scanned)
        by_order = sorted(scanned, key=lambda a: (a.priority, a.id))
        assert [a.id for a in table.by_gateway_order(group_id)] == [a.id for a in by_order]
    for search in searches:
        scanned_ids = sorted(a.id for a in table.values() if search in a.name.lower())
        assert sorted(a.id for a in table.named(search)) == scanned_ids


def test_account_table_answers_like_a_scan_after_any_edit():
    """Adds, replacements, deletes, renames, moves and priority changes, in any order."""
    rng, table = random.Random(17), AccountTable()
    groups, searches = [1, 2, 3], ["acc", "b-1", "x", "c-1\x00", "-"]
    for step in range(1500):
        row_id, op = rng.randint(1, 40), rng.choice(OPS)
        row = table.get(row_id)
        if op == "add" or row is None:
            picked = rng.sample(groups, rng.randint(0, 2)) * rng.choice([1, 2])  # duplicates too
            table[row_id] = account(row_id, f"Acc-{rng.choice('abc')}-{step}", picked)
        elif op == "move":
            row.group_ids = rng.sample(groups, rng.randint(0, 3))
        elif op == "rename":
            row.name = rng.choice(["ACC-b-1", "x", f"c-{step}"])
        elif op == "priority":
            row.priority = rng.randint(-2, 2)
        else:
            del table[row_id]
        assert_like_a_scan(table, groups, searches)


def test_account_table_leaves_copies_and_removed_rows_alone():
    table = AccountTable()
    table[1] = row = account(1, "kept", [1])
    table.pop(1)
    row.group_ids, row.name = [2], "gone"  # no longer held: no index learns of it
    table[2] = account(2, "other", [1])
    assert [a.id for a in table.in_group(1)] == [2]
    assert table.count_in_group(2) == 0 and list(table.named("gone")) == []


def test_account_table_offers_the_models_of_a_scan_after_any_edit():
    """What /v1/models answers from: assignments, in-place credential edits, moves, deletes."""
    rng, table, groups = random.Random(23), AccountTable(), [1, 2, 3]
    mappings = [{}, {"a": "x"}, {"a": "x", "b": "y"}, {"c": "z"}, "not a mapping"]
    ops = ("add", "move", "status", "schedulable", "credentials", "in place", "delete")
    for step in range(1500):
        row_id, op = rng.randint(1, 30), rng.choice(ops)
        row = table.get(row_id)
        if op == "add" or row is None:
            table[row_id] = account(row_id, groups=rng.sample(groups, rng.randint(0, 2)))
        elif op == "move":
            row.group_ids = rng.sample(groups, rng.randint(0, 3)) * rng.choice([1, 2])
        elif op == "status":
            row.status = rng.choice(["active", "error", "inactive"])
        elif op == "schedulable":
            row.schedulable = rng.choice([True, False])
        elif op == "credentials":
            row.credentials = {"api_key": "k", "model_mapping": rng.choice(mappings)}
        elif op == "in place":
            edit = rng.choice(["set", "pop", "update", "setdefault", "del", "clear"])
            if edit == "set":
                row.credentials["model_mapping"] = rng.choice(mappings)
            elif edit == "pop":
                row.credentials.pop("model_mapping", None)
            elif edit == "update":
                row.credentials.update(model_mapping=rng.choice(mappings))
            elif edit == "setdefault":
                row.credentials.setdefault("model_mapping", rng.choice(mappings))
            elif edit == "del" and "model_mapping" in row.credentials:
                del row.credentials["model_mapping"]
            else:
                row.credentials.clear()
        else:
            del table[row_id]
        for group_id in groups:
            scanned = set()
            for a in table.values():
                if group_id in a.group_ids and a.status == "active" and a.schedulable:
                    scanned.update(a.model_mapping)
            assert sorted(table.offered_models(group_id)) == sorted(scanned), (step, op)


def test_account_table_counts_no_copy_or_removed_row():
    table = AccountTable()
    table[1] = row = account(1, "kept", [1])
    row.credentials["model_mapping"] = {"a": "x"}
    copy = replace(row)
    table.pop(1)
    row.credentials["model_mapping"] = {"b": "y"}  # no longer held: not counted
    copy.status = "error"
    assert table.offered_models(1) == []
    table[2] = account(2, "other", [1])
    table[2].credentials = {"model_mapping": {"c": "z"}}
    assert table.offered_models(1) == ["c"]


def test_key_table_finds_a_key_by_its_current_value():
    keys = KeyTable()
    keys[1] = SimKey(id=1, user_id=1, key="sk-one", name="k")
    keys[2] = SimKey(id=2, user_id=1, key="sk-two", name="k")
    keys[1].key = "sk-renamed"
    keys[3] = SimKey(id=3, user_id=1, key="sk-two", name="twin")  # a duplicate: the first wins
    del keys[2]
    assert keys.by_value("sk-one") is None
    assert keys.by_value("sk-renamed").id == 1
    assert keys.by_value("sk-two").id == 3


def test_simulator_gateway_reads_no_account_of_another_group(host_simulator, fake_upstream):
    """Chat, the model list, the list by name and the group's count cost the same however
    many accounts other groups hold: none of them is read."""
    setup = provision(host_simulator, fake_upstream)
    with host_simulator.state.lock:
        other = TripwireAccount(id=10_000, name="zz-other", platform="openai", type="apikey",
                         credentials={}, group_ids=[setup.group.id + 1])  # fmt: skip
        host_simulator.state.accounts[other.id] = other
        object.__setattr__(other, "armed", True)
    TOUCHED.clear()
    assert setup.client.gateway.chat_completion(setup.key.key, model="canon").ok
    assert [m.id for m in setup.client.gateway.models(setup.key.key)] == ["canon"]
    assert [a.id for a in setup.client.accounts.search("acc")] == [setup.account.id]
    group = httpx.get(
        f"{host_simulator.url}/api/v1/admin/groups/{setup.group.id}",
        headers={"x-api-key": host_simulator.admin_key},
    ).json()["data"]
    assert group["account_count"] == 1
    assert TOUCHED == []


def test_simulator_model_list_reads_no_account_row(host_simulator, fake_upstream):
    """/v1/models costs the same however many accounts the key's group holds."""
    setup = provision(host_simulator, fake_upstream)
    with host_simulator.state.lock:
        peer = TripwireAccount(id=10_000, name="zz-peer", platform="openai", type="apikey",
                               credentials={"model_mapping": {"peer": "raw"}},
                               group_ids=[setup.group.id])  # fmt: skip
        host_simulator.state.accounts[peer.id] = peer
        object.__setattr__(peer, "armed", True)
    TOUCHED.clear()
    models = setup.client.gateway.models(setup.key.key)
    assert sorted(m.id for m in models) == ["canon", "peer"]
    assert TOUCHED == []


def test_simulator_gateway_follows_edits_of_priority_group_and_rows(
    host_simulator, fake_upstream_factory
):
    first, second = fake_upstream_factory(), fake_upstream_factory(api_key="sk-second")
    setup = provision(host_simulator, first)
    client, key = setup.client, setup.key.key

    def served_by() -> list[int]:
        before = (len(first.calls), len(second.calls))
        assert client.gateway.chat_completion(key, model="canon").ok
        return [len(first.calls) - before[0], len(second.calls) - before[1]]

    other = client.accounts.create_openai_apikey(
        name="second",
        credentials=OpenAICredentials(second.api_key, second.url, {"canon": "raw-model"}),
        group_ids=[setup.group.id],
        priority=60,  # the first has the client's 50
    )
    host_simulator.settle_responses_probes()
    assert served_by() == [1, 0]
    client.accounts.update(other.id, priority=40)  # now tried first
    assert served_by() == [0, 1]
    client.accounts.update(other.id, group_ids=[client.groups.create(name="rm-b").id])
    assert served_by() == [1, 0]  # gone from the key's group
    client.accounts.update(other.id, group_ids=[setup.group.id])
    with host_simulator.state.lock:  # a test deletes a row by hand
        del host_simulator.state.accounts[other.id]
    assert served_by() == [1, 0]


def test_channel_and_subscription_tables_answer_like_a_scan_after_any_edit():
    rng, channels, subscriptions = random.Random(5), ChannelTable(), SubscriptionTable()
    for step in range(1500):
        row_id, op = rng.randint(1, 12), rng.choice(OPS)
        channel, sub = channels.get(row_id), subscriptions.get(row_id)
        if op == "add" or channel is None or sub is None:
            groups = rng.sample([1, 2, 3], rng.randint(0, 2))
            channels[row_id] = SimChannel(id=row_id, name=f"c{step}", group_ids=groups)
            subscriptions[row_id] = subscription(row_id, rng.randint(1, 2), rng.randint(1, 3))
        elif op == "move":
            channel.group_ids = rng.sample([1, 2, 3], rng.randint(0, 2))
            sub.group_id = rng.randint(1, 3)
        elif op == "rename":
            channel.status = rng.choice(["active", "disabled"])
            sub.user_id = rng.randint(1, 2)
        elif op == "delete":
            del channels[row_id]
            subscriptions.pop(row_id)
        for group_id in (1, 2, 3):
            scanned = [
                c for c in channels.values() if c.status == "active" and group_id in c.group_ids
            ]
            assert channels.for_group(group_id) is next(iter(scanned), None)
            for user_id in (1, 2):
                pair = [
                    s
                    for s in subscriptions.values()
                    if (s.user_id, s.group_id) == (user_id, group_id)
                ]
                assert {s.id for s in subscriptions.of(user_id, group_id)} == {s.id for s in pair}


def subscription(sub_id: int, user_id: int, group_id: int, cls=SimSubscription):
    now = datetime.now(UTC)
    return cls(
        id=sub_id,
        user_id=user_id,
        group_id=group_id,
        starts_at=now,
        expires_at=now + timedelta(days=1),
    )


def test_simulator_gateway_reads_no_channel_or_subscription_of_another_group(
    host_simulator, fake_upstream
):
    client = client_for(host_simulator)
    group = client.groups.create(name="rm-sub", subscription_type="subscription")
    client.channels.create(name="rm-ch", group_ids=[group.id], model_mapping={"openai": {}})
    credentials = OpenAICredentials(fake_upstream.api_key, fake_upstream.url, {"canon": "raw"})
    client.accounts.create_openai_apikey(name="acc", credentials=credentials, group_ids=[group.id])
    user = client.users.create(email="u@example.com", password="secret-1")
    client.subscriptions.assign(user_id=user.id, group_id=group.id)
    key = client.keys.create(client.login(user.email, "secret-1"), name="k", group_id=group.id)
    state = host_simulator.state
    with state.lock:
        channel = TripwireChannel(id=900, name="other", group_ids=[group.id + 1])
        sub = subscription(900, user.id, group.id + 1, cls=TripwireSubscription)
        state.channels[channel.id], state.subscriptions[sub.id] = channel, sub
        for row in (channel, sub):
            object.__setattr__(row, "armed", True)
    TOUCHED.clear()
    assert client.gateway.chat_completion(key.key, model="canon").ok
    assert [m.id for m in client.gateway.models(key.key)] == ["canon"]
    assert TOUCHED == []
