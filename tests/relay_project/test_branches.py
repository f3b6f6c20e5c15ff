from __future__ import annotations

import threading

import pytest
from django.db import transaction

from relay_project import limits
from relay_project.branches import together, waiting
from relay_project.limits import LocalBackend, Slot


@pytest.mark.django_db
def test_branches_share_the_callers_transaction(django_user_model):
    django_user_model.objects.create(username="made-by-the-caller")

    def seen_then_made(name: str) -> int:
        with waiting():  # as a host call would: the other branch runs meanwhile
            pass
        django_user_model.objects.create(username=name)
        return django_user_model.objects.filter(username="made-by-the-caller").count()

    with together() as start:
        branches = [start(seen_then_made, f"branch-{n}") for n in range(3)]
    assert [branch.result() for branch in branches] == [1, 1, 1]
    assert django_user_model.objects.count() == 4


@pytest.mark.django_db
def test_a_branch_may_not_wait_on_the_network_inside_its_own_transaction():
    def waits_in_a_transaction() -> None:
        with transaction.atomic(), waiting():
            pass

    with together() as start, pytest.raises(RuntimeError, match="inside a transaction"):
        start(waits_in_a_transaction).result()


def test_a_branch_counts_toward_its_starters_run():
    with limits.run_scope("run-7"), together() as start:
        branch = start(limits.current_run)
    assert branch.result() == "run-7"


def test_an_exception_nobody_took_ends_the_block_an_abandoned_one_does_not():
    def fails() -> None:
        raise ValueError("lost")

    with pytest.raises(ValueError, match="lost"), together() as start:
        start(fails)
    with together() as start:
        start(fails).abandon()


@pytest.mark.parametrize("kept", [False, True], ids=["place taken", "place kept"])
def test_branches_exchange_under_a_bound_at_once(kept):
    """A bounded exchange (``Slot``: every host and upstream call) lets the group's other
    branches run while it waits, whether its place was taken from the backend or kept from
    the process's last exchange: each branch here waits inside its exchange for the other
    to be inside its own."""
    bound = Slot("host:branches", 4, using=LocalBackend())
    if kept:
        with bound:  # given back, the place is kept for the process's next holder
            pass
    both_inside = threading.Barrier(2, timeout=5)

    def exchange() -> None:
        with bound:
            both_inside.wait()

    with together() as start:
        branches = [start(exchange), start(exchange)]
    for branch in branches:
        branch.result()  # a barrier broken by the timeout raises here
