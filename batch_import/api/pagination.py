"""The orderings of seed 004 §8 as keysets; see ``relay_project.api.pagination``."""

from __future__ import annotations

from datetime import datetime

from relay_project.api.pagination import Key, Keyset, KeysetPagination

# §8.1: started_at DESC, run_id breaking ties (ids are unique).
RUNS_NEWEST_FIRST = Keyset(
    name="runs",
    keys=(Key("started_at", descending=True, kind=datetime), Key("run_id", descending=True)),
)

# §8.2: unfinished first, broken/degraded next, then updated_at DESC; item_id breaks ties.
# The stored ``ImportRunItem.problem_rank`` holds the first two rules (one index serves it).
ITEMS_PROBLEMS_FIRST = Keyset(
    name="items",
    keys=(
        Key("problem_rank", kind=int),
        Key("updated_at", descending=True, kind=datetime),
        Key("item_id"),
    ),
)

LEGACY_BATCHES_NEWEST_FIRST = Keyset(
    name="import-batches",
    keys=(Key("created_at", descending=True, kind=datetime), Key("id", descending=True, kind=int)),
)


class RunPagination(KeysetPagination):
    keyset = RUNS_NEWEST_FIRST


class ItemPagination(KeysetPagination):
    keyset = ITEMS_PROBLEMS_FIRST


class LegacyBatchPagination(KeysetPagination):
    keyset = LEGACY_BATCHES_NEWEST_FIRST
