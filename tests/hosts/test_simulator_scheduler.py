"""The host simulator's background calls (``hosts.simulator.scheduler``): the Responses probe
settles at its time, beside a slower one, on threads that end with the simulator."""

from __future__ import annotations

import threading
import time

from hosts.simulator.scheduler import Scheduler
from hosts.sub2api import OpenAICredentials, Sub2ApiClient

VERDICT = "openai_responses_supported"


def create_account(sim, upstream, name: str) -> int:
    client = Sub2ApiClient(sim.url, admin_api_key=sim.admin_key, timeout=5, retries=0)
    credentials = OpenAICredentials(api_key=upstream.api_key or "sk-any", base_url=upstream.url)
    with client:
        return client.accounts.create_openai_apikey(name=name, credentials=credentials).id


def settled(sim, account_id: int) -> bool:
    with sim.state.lock:
        return VERDICT in sim.state.accounts[account_id].extra


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_scheduler_runs_calls_in_due_order_on_kept_threads_and_drops_the_rest_on_stop():
    """New behaviour (no such module before)."""
    scheduler, ran = Scheduler("test-scheduler"), []
    for n in reversed(range(10)):
        scheduler.call_later(0.05 + n * 0.02, ran.append, n)
    scheduler.call_later(30, ran.append, "dropped")
    assert wait_for(lambda: len(ran) == 10, timeout=3)
    assert ran == list(range(10))
    # One thread runs a call while another waits for the next: not a thread per call.
    assert len(scheduler.threads) <= 2
    scheduler.stop()
    assert scheduler.threads == [] and ran == list(range(10))


def test_scheduler_runs_calls_asked_in_due_order_each_at_its_time():
    """New behaviour: a call later than the earliest wakes no thread, and still runs on time."""
    scheduler, ran, started = Scheduler("test-scheduler"), [], time.monotonic()
    for n in range(5):
        scheduler.call_later(0.1 + n * 0.1, lambda n=n: ran.append((n, time.monotonic())))
    assert wait_for(lambda: len(ran) == 5, timeout=5)
    scheduler.stop()
    assert [n for n, _ in ran] == list(range(5))
    assert all(0 <= at - started - (0.1 + n * 0.1) < 0.5 for n, at in ran)


def test_simulator_probe_settles_after_its_delay_while_a_slower_one_is_under_way(
    host_simulator_factory, upstream_factory
):
    """What a Timer per probe (and the host's goroutine per probe) also did."""
    sim = host_simulator_factory(responses_probe_seconds=0.2)
    slow, fast = upstream_factory(latency=2.5), upstream_factory()
    started = time.monotonic()
    slow_id = create_account(sim, slow, "slow")
    fast_id = create_account(sim, fast, "fast")
    assert not settled(sim, fast_id)  # the answer came before the probe
    assert wait_for(lambda: settled(sim, fast_id), timeout=5)
    assert 0.2 <= time.monotonic() - started < 2.0
    assert not settled(sim, slow_id)  # still waiting for its upstream
    assert wait_for(lambda: settled(sim, slow_id), timeout=5)


def test_simulator_stop_leaves_no_thread_of_a_pending_probe_behind(
    host_simulator_factory, upstream_factory
):
    """Fails on a Timer per probe: its thread outlived the simulator until the probe's time."""
    upstream = upstream_factory()
    before = set(threading.enumerate())
    sim = host_simulator_factory(responses_probe_seconds=30)
    account_id = create_account(sim, upstream, "pending")
    sim.stop()
    assert wait_for(lambda: not set(threading.enumerate()) - before, timeout=3), [
        t.name for t in set(threading.enumerate()) - before
    ]
    assert not settled(sim, account_id)
