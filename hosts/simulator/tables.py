"""Tables of the host simulator's rows that keep their own indexes current, so a request costs
the same at 100 accounts as at 10,000 (the pipeline asks for accounts by name, the gateway
picks a group's accounts, on every item).

A table is the ``dict`` tests already read and write (``sim.state.accounts[id]``, ``del``,
``== {}``). Rows come and go through its dict methods; an indexed attribute of a row held by
a table (``TableRow.INDEXED``, ``WATCHED``) re-indexes the row when it is assigned. Mutating
such an attribute in place (``account.group_ids.append(…)``) is not seen: assign a new value.
The one exception is an account's ``credentials``, which a table holds as a ``RowDict`` that
reports its own edits (``account.credentials["model_mapping"] = …``); a dict inside it is not
watched.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from hosts.simulator.rows import SimAccount, SimChannel, SimKey, SimSubscription, TableRow

R = TypeVar("R", bound=TableRow)
_MISSING = object()
# Separates the names in ``NameSearch``'s text: a search without it matches inside one name.
_SEPARATOR = "\x00"


class Table(dict[int, R], Generic[R]):
    """Rows by id; ``index``/``unindex`` keep the subclass's indexes in step with the rows."""

    def index(self, row: R) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def unindex(self, row: R) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def changing(self, row: R) -> None:
        """A ``WATCHED`` attribute (or dict) of a held row is about to change."""

    def changed(self, row: R) -> None:
        """…and has changed."""

    def __setitem__(self, row_id: int, row: R) -> None:
        old = super().get(row_id)
        if old is not None:
            self._drop(old)
        super().__setitem__(row_id, row)
        object.__setattr__(row, "_table", self)
        row.watch_dicts()
        self.index(row)

    def __delitem__(self, row_id: int) -> None:
        row = self[row_id]
        super().__delitem__(row_id)
        self._drop(row)

    def pop(self, row_id: int, default: Any = _MISSING) -> Any:
        if row_id in self:
            row = self[row_id]
            del self[row_id]
            return row
        if default is _MISSING:
            raise KeyError(row_id)
        return default

    def popitem(self) -> tuple[int, R]:
        row_id = next(reversed(self))
        return row_id, self.pop(row_id)

    def setdefault(self, row_id: int, row: R) -> R:  # type: ignore[override]
        if row_id not in self:
            self[row_id] = row
        return self[row_id]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for row_id, row in dict(*args, **kwargs).items():
            self[row_id] = row

    def clear(self) -> None:
        for row_id in list(self):
            del self[row_id]

    def __ior__(self, other: Any) -> Table[R]:
        self.update(other)
        return self

    def holds(self, row: TableRow) -> bool:
        """Whether ``row`` is this table's current row for its id (not a copy, not gone)."""
        return super().get(row.id) is row  # type: ignore[attr-defined]

    def forget(self, row: R) -> None:
        """What ``unindex`` leaves behind of a row that left the table."""

    def _drop(self, row: R) -> None:
        self.unindex(row)
        self.forget(row)
        object.__setattr__(row, "_table", None)


class NameSearch:
    """Which ids may have a name containing a lower-case search, found with ``str.find`` over
    one text of every indexed name instead of a loop over the rows.

    Names only ever get appended; a renamed or deleted row leaves its old entry behind, so
    callers check each id's current name, and the text is rebuilt when the old entries
    outnumber the live ones."""

    def __init__(self) -> None:
        self._text = ""
        self._starts: list[int] = []  # where each entry starts in the text
        self._ids: list[int] = []  # whose name each entry is
        self._current: dict[int, str] = {}  # id → its indexed lower-case name

    def add(self, row_id: int, name: str) -> None:
        lowered = name.lower()
        if self._current.get(row_id) == lowered:
            return
        self._current[row_id] = lowered
        if len(self._ids) > 2 * len(self._current) + 1000:
            self._rebuild()
            return
        self._starts.append(len(self._text))
        self._ids.append(row_id)
        self._text += lowered + _SEPARATOR

    def discard(self, row_id: int) -> None:
        self._current.pop(row_id, None)

    def candidates(self, search: str) -> Iterable[int] | None:
        """Ids whose indexed name contains ``search`` (and some stale ones); None when the
        text cannot answer (a search containing the separator)."""
        if _SEPARATOR in search:
            return None
        found: dict[int, None] = {}
        text, starts, position = self._text, self._starts, 0
        while (position := text.find(search, position)) >= 0:
            entry = bisect.bisect_right(starts, position) - 1
            found[self._ids[entry]] = None
            # On to the next name: one match per entry is enough.
            position = starts[entry + 1] if entry + 1 < len(starts) else len(text)
        return found

    def _rebuild(self) -> None:
        self._ids = list(self._current)
        names = [self._current[i] for i in self._ids]
        self._starts, position = [], 0
        for name in names:
            self._starts.append(position)
            position += len(name) + 1
        self._text = "".join(name + _SEPARATOR for name in names)


class AccountTable(Table[SimAccount]):
    """Accounts, indexed by group (with each group's accounts in the gateway's order), by
    name for the list's ``search``, and by the models each group's accounts offer
    (``/v1/models``, asked on every item)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_group: dict[int, dict[int, None]] = {}  # group id → its account ids
        # Group id → its accounts by (priority, id), built on first use; replaced, never
        # changed in place, so a request walking the old list is not disturbed.
        self._ordered: dict[int, list[SimAccount]] = {}
        self.names = NameSearch()
        # Group id → model → how many of its active, schedulable accounts map that model; and
        # what each account is counted for (its groups, its mapping's keys).
        self._offers: dict[int, dict[str, int]] = {}
        self._counted: dict[int, tuple[tuple[int, ...], tuple[str, ...]]] = {}

    def index(self, row: SimAccount) -> None:
        for group_id in dict.fromkeys(row.group_ids):
            self._by_group.setdefault(group_id, {})[row.id] = None
            ordered = self._ordered.get(group_id)
            if ordered is not None:
                ordered = list(ordered)
                bisect.insort(ordered, row, key=_gateway_order)
                self._ordered[group_id] = ordered
        self.names.add(row.id, row.name)
        self.changed(row)

    def unindex(self, row: SimAccount) -> None:
        for group_id in row.group_ids:
            members = self._by_group.get(group_id)
            if members is not None:
                members.pop(row.id, None)
                if not members:
                    del self._by_group[group_id]
            ordered = self._ordered.get(group_id)
            if ordered is not None:
                self._ordered[group_id] = [a for a in ordered if a is not row]
        self.changing(row)

    def changing(self, row: SimAccount) -> None:
        groups, models = self._counted.pop(row.id, ((), ()))
        for group_id in groups:
            offers = self._offers[group_id]
            for model in models:
                offers[model] -= 1
                if not offers[model]:
                    del offers[model]
            if not offers:
                del self._offers[group_id]

    def changed(self, row: SimAccount) -> None:
        if row.status != "active" or not row.schedulable or not row.model_mapping:
            return
        groups, models = tuple(dict.fromkeys(row.group_ids)), tuple(row.model_mapping)
        for group_id in groups:
            offers = self._offers.setdefault(group_id, {})
            for model in models:
                offers[model] = offers.get(model, 0) + 1
        self._counted[row.id] = (groups, models)

    def forget(self, row: SimAccount) -> None:
        self.names.discard(row.id)

    def in_group(self, group_id: int) -> list[SimAccount]:
        """The accounts bound to the group, in no particular order."""
        return [self[i] for i in self._by_group.get(group_id, ())]

    def offered_models(self, group_id: int) -> list[str]:
        """The union of the mapping keys of the group's active, schedulable accounts."""
        return list(self._offers.get(group_id, ()))

    def count_in_group(self, group_id: int) -> int:
        return len(self._by_group.get(group_id, ()))

    def by_gateway_order(self, group_id: int) -> list[SimAccount]:
        """The group's accounts by (priority, id), the order the gateway tries them in."""
        ordered = self._ordered.get(group_id)
        if ordered is None:
            ordered = sorted(self.in_group(group_id), key=_gateway_order)
            self._ordered[group_id] = ordered
        return ordered

    def named(self, search: str) -> Iterator[SimAccount]:
        """Accounts whose lower-case name contains ``search`` (lower-case, not empty)."""
        found = self.names.candidates(search)
        rows = self.values() if found is None else (self[i] for i in found if i in self)
        return (a for a in rows if search in a.name.lower())


def _gateway_order(account: SimAccount) -> tuple[int, int]:
    return account.priority, account.id


class KeyTable(Table[SimKey]):
    """API keys, indexed by their value (the gateway's lookup on every call)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_value: dict[str, dict[int, None]] = {}

    def index(self, row: SimKey) -> None:
        self._by_value.setdefault(row.key, {})[row.id] = None

    def unindex(self, row: SimKey) -> None:
        holders = self._by_value.get(row.key)
        if holders is not None:
            holders.pop(row.id, None)
            if not holders:
                del self._by_value[row.key]

    def by_value(self, raw: str) -> SimKey | None:
        """The first key (in table order) whose value is ``raw``."""
        holders = self._by_value.get(raw)
        if not holders:
            return None
        if len(holders) == 1:
            return self[next(iter(holders))]
        return next(k for k in self.values() if k.key == raw)  # a duplicate: the table's order


class ChannelTable(Table[SimChannel]):
    """Channels, indexed by group (the gateway looks up the key's group's on every call)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_group: dict[int, dict[int, None]] = {}

    def index(self, row: SimChannel) -> None:
        for group_id in dict.fromkeys(row.group_ids):
            self._by_group.setdefault(group_id, {})[row.id] = None

    def unindex(self, row: SimChannel) -> None:
        for group_id in dict.fromkeys(row.group_ids):
            holders = self._by_group.get(group_id)
            if holders is not None:
                holders.pop(row.id, None)
                if not holders:
                    del self._by_group[group_id]

    def for_group(self, group_id: int) -> SimChannel | None:
        """The first active channel (in table order) bound to the group."""
        holders = self._by_group.get(group_id)
        if not holders:
            return None
        if len(holders) == 1:
            channel = self[next(iter(holders))]
            return channel if channel.status == "active" else None
        # Groups are bound to one channel at most, but a test may write more by hand.
        return next(
            (c for c in self.values() if c.status == "active" and group_id in c.group_ids), None
        )


class SubscriptionTable(Table[SimSubscription]):
    """Subscriptions, indexed by (user, group): the gateway checks the caller's on every call
    to a subscription group."""

    def __init__(self) -> None:
        super().__init__()
        self._by_pair: dict[tuple[int, int], dict[int, None]] = {}

    def index(self, row: SimSubscription) -> None:
        self._by_pair.setdefault((row.user_id, row.group_id), {})[row.id] = None

    def unindex(self, row: SimSubscription) -> None:
        pair = (row.user_id, row.group_id)
        holders = self._by_pair.get(pair)
        if holders is not None:
            holders.pop(row.id, None)
            if not holders:
                del self._by_pair[pair]

    def of(self, user_id: int, group_id: int) -> list[SimSubscription]:
        return [self[i] for i in self._by_pair.get((user_id, group_id), ())]
