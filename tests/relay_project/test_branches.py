from __future__ import annotations

import pytest
from django.db import transaction

from relay_project import limits
from relay_project.branches import together, waiting


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
