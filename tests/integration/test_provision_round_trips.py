"""Round trips on the provision stage's critical path, counted by logical clocks instead of
timed: each host call ends one round trip after everything its caller had waited for (its own
earlier calls, and the branches it took a result from), so independent calls that go together
share a round whatever the machine's speed."""

from __future__ import annotations

import contextvars
import threading

import httpx
import pytest

from batch_import.models import ImportRunItem
from batch_import.stages import StageContext
from batch_import.tasks import advance_item
from hosts.sub2api import client_for_host
from relay_project import branches
from relay_project.crypto import Secret
from relay_project.logging import _context
from tests.integration.pipeline import entry, register, start

pytestmark = [pytest.mark.django_db, pytest.mark.integration]
_round: contextvars.ContextVar[int] = contextvars.ContextVar("round_trips", default=0)


class ClockedTransport(httpx.BaseTransport):
    """Sends each request on, and notes it with its stage and the round it ended in."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.calls: list[tuple[str, int, str]] = []
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        ends_in = _round.get() + 1
        response = self.inner.handle_request(request)
        _round.set(ends_in)
        with self.lock:
            stage = _context.get().get("stage", "")
            self.calls.append((stage, ends_in, f"{request.method} {request.url.path}"))
        return response

    def rounds(self, stage: str) -> dict[int, list[str]]:
        """Round (1 = the stage's first) → the stage's calls that ended in it, sorted."""
        calls = [(n, call) for s, n, call in self.calls if s == stage]
        first = min(n for n, _ in calls)
        out: dict[int, list[str]] = {}
        for n, call in sorted(calls):
            out.setdefault(n - first + 1, []).append(call)
        return out


@pytest.fixture
def clocked(monkeypatch) -> ClockedTransport:
    """A branch starts at its starter's round (``copy_context``); taking its result moves
    the taker to the later of both rounds."""
    run_branch, result = branches._run_branch, branches.Branch.result

    def run_and_tell_round(baton, fn, args, kwargs):
        return run_branch(baton, fn, args, kwargs), _round.get()

    def join(self):
        value, ended_in = result(self)
        _round.set(max(_round.get(), ended_in))
        return value

    monkeypatch.setattr(branches, "_run_branch", run_and_tell_round)
    monkeypatch.setattr(branches.Branch, "result", join)
    return ClockedTransport()


def advance(item_id: str, transport: ClockedTransport) -> None:
    context = StageContext(worker_id="test-worker", host_transport=transport)
    for _ in range(10):
        if advance_item(item_id, worker_id="test-worker", context=context) == "done":
            return


def test_a_first_item_provisions_in_five_round_trips(clocked, host_simulator, upstream_factory):
    """One call after another, this took 19 round trips: group, channel, account and each
    user's access waited for each other though none needs more than the group (and the
    channel and each subscription were looked up twice)."""
    with client_for_host(host := register(host_simulator)) as client:  # a user not ours
        client.users.create(email="alice@example.com", password=Secret("their-own-pw"))
    upstream = upstream_factory(models=("kimi-k2.6",))
    users = ["ops@example.com", "alice@example.com"]
    run = start(host, [entry(upstream)], subscription_users=users)

    advance(run.items.get().item_id, clocked)

    item = run.items.get()
    assert item.access_status == "active", list(item.events.values_list("message", flat=True))
    rounds = clocked.rounds("provision")
    assert len(rounds) == 5, rounds
    # Round 1: the group, the channel and both users are looked up at once (a key new to the
    # host has no account of ours to look for).
    assert rounds[1] == [
        "GET /api/v1/admin/channels",
        "GET /api/v1/admin/groups",
        "GET /api/v1/admin/users",
        "GET /api/v1/admin/users",
    ]
    # The managed user is made while the group is; its key waits for its subscription.
    assert {"POST /api/v1/admin/groups", "POST /api/v1/admin/users"} <= set(rounds[2])
    assert "POST /api/v1/keys" in rounds[5]
    assert sum(map(len, rounds.values())) == 15


def test_a_later_key_of_a_settled_provider_provisions_in_one_round_trip(
    clocked, host_simulator, upstream_factory
):
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    run = start(register(host_simulator), [entry(upstream, key=f"sk-key-{n}") for n in (1, 2)])
    first, later = run.items.order_by("position").values_list("item_id", flat=True)
    advance(first, ClockedTransport())
    advance(later, clocked)

    assert clocked.rounds("provision") == {1: ["POST /api/v1/admin/accounts"]}


def test_a_key_provisioned_beside_its_providers_first_takes_what_the_run_made_from_records(
    clocked, host_simulator, upstream_factory
):
    """The first key made the group, the user and its key but has not settled yet: the
    second asks the host for none of them again (no group, user or key listing, no login)."""
    upstream = upstream_factory(models=("kimi-k2.6",), api_key=None)
    run = start(register(host_simulator), [entry(upstream, key=f"sk-key-{n}") for n in (1, 2)])
    first, later = run.items.order_by("position").values_list("item_id", flat=True)
    advance(first, ClockedTransport())
    ImportRunItem.objects.filter(item_id=first).update(group_id=None)  # still provisioning

    advance(later, clocked)

    assert clocked.rounds("provision") == {
        1: ["GET /api/v1/admin/channels", "GET /api/v1/admin/subscriptions"],
        2: ["POST /api/v1/admin/accounts", "POST /api/v1/admin/subscriptions/assign"],
    }
    later_item = ImportRunItem.objects.get(item_id=later)
    assert later_item.access_status == "active"
    assert [a["outcome"] for a in later_item.subscription_access] == ["managed"]
