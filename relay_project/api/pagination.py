"""Keyset ("cursor") pagination over an ordering with a unique tiebreaker.

A cursor is the sort key of the last row of a page, encoded as opaque url-safe base64 JSON.
The next page is "every row strictly after that key in the ordering", so rows inserted between
two fetches never shift the page boundary: nothing is skipped or repeated. (A row whose sort
key itself changes while a client pages — an item that finishes and moves to a later group —
can appear twice or not at all; that is the price of not holding a snapshot.)

DRF's ``CursorPagination`` keys on a single column plus an offset, which is not enough for the
items' "problems first" order of three keys with mixed directions; this class handles any tuple
of keys.

Every page is an index range scan, however deep (issue #17): "after the cursor" is the union of
one range per key (the keys before it equal, that key strictly after), each range read in index
order and cut at the page size, so the database reads at most ``keys × (limit + 1)`` rows. A
single OR of those ranges, by contrast, makes PostgreSQL walk the index from the top of the list
and filter, reading every row before the cursor. (SQLite cannot order and cut the parts of a
union: it gets the OR.)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.db import connections
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from rest_framework.pagination import BasePagination
from rest_framework.request import Request

from relay_project.api.errors import InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 512
MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True)
class Key:
    """One sort key: a model field or annotation, its direction and its JSON codec."""

    field: str
    descending: bool = False
    kind: type = str  # str, int or datetime

    def dump(self, value: Any) -> Any:
        return value.isoformat() if self.kind is datetime else value

    def load(self, value: Any) -> Any:
        if self.kind is datetime:
            if not isinstance(value, str):
                raise ValueError("not a timestamp")
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("naive timestamp")
            return parsed.astimezone(UTC)  # OverflowError at the edges of the calendar
        if self.kind is int and (
            isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_BIGINT
        ):
            raise ValueError("not a 64-bit integer")
        if self.kind is str and (not isinstance(value, str) or "\x00" in value):
            raise ValueError("not a string")
        return value


@dataclass(frozen=True)
class Keyset:
    """An ordering as a tuple of keys; the last key must be unique (the tiebreaker)."""

    name: str
    keys: tuple[Key, ...]

    def order_by(self) -> list[str]:
        return [f"-{key.field}" if key.descending else key.field for key in self.keys]

    @property
    def cursor_format(self) -> str:
        """The OpenAPI ``format`` of this list's cursor: a cursor only fits its own list."""
        return f"{self.name}-cursor"

    def encode(self, row: Any) -> str:
        return self.encode_values([getattr(row, key.field) for key in self.keys])

    def encode_values(self, values: Sequence[Any]) -> str:
        dumped = [key.dump(value) for key, value in zip(self.keys, values, strict=True)]
        raw = json.dumps({"k": self.name, "v": dumped}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, cursor: str) -> list[Any]:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            if not isinstance(data, dict) or data.get("k") != self.name:
                raise ValueError("cursor of another list")
            values = data.get("v")
            if not isinstance(values, list) or len(values) != len(self.keys):
                raise ValueError("wrong length")
            return [key.load(value) for key, value in zip(self.keys, values, strict=True)]
        except (ValueError, TypeError, OverflowError, binascii.Error):
            raise InvalidInput(
                {"cursor": _("not a cursor of this list; use next_cursor as returned")}
            ) from None

    def reversed(self) -> Keyset:
        """The same order read backwards (the page before a cursor)."""
        return Keyset(
            name=self.name,
            keys=tuple(replace(key, descending=not key.descending) for key in self.keys),
        )

    def ranges_after(self, values: Sequence[Any]) -> list[Q]:
        """Rows strictly after ``values`` as disjoint ranges in list order, the last key's
        first: (k1 = v1 and … and k(n-1) = v(n-1) and kn > vn), …, (k1 > v1), with "after"
        meaning "less than" for descending keys."""
        ranges = []
        equal = Q()
        for key, value in zip(self.keys, values, strict=True):
            lookup = "lt" if key.descending else "gt"
            ranges.append(equal & Q(**{f"{key.field}__{lookup}": value}))
            equal &= Q(**{key.field: value})
        return ranges[::-1]

    def after(self, values: Sequence[Any]) -> Q:
        """Rows strictly after ``values``: (k1 > v1) or (k1 = v1 and k2 > v2) or …"""
        condition = Q(pk__in=[])
        for part in self.ranges_after(values):
            condition |= part
        return condition

    def rows(self, queryset: QuerySet, after: Sequence[Any] | None, limit: int) -> list[Any]:
        """Up to ``limit`` rows of ``queryset`` in this order, after the key ``after`` (from
        the top when None): one query, an index range per key (module docstring)."""
        ordered = queryset.order_by(*self.order_by())
        if after is None:
            return list(ordered[:limit])
        if not connections[queryset.db].features.supports_slicing_ordering_in_compound:
            return list(ordered.filter(self.after(after))[:limit])
        first, *others = [ordered.filter(part)[:limit] for part in self.ranges_after(after)]
        if not others:
            return list(first)
        return list(first.union(*others, all=True).order_by(*self.order_by())[:limit])


@dataclass(frozen=True)
class KeysetPage:
    """A page of a keyset-paged list and the cursors of its neighbours (None at an end)."""

    rows: list[Any]
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


def keyset_page(
    queryset: QuerySet, keyset: Keyset, *, after: str | None, before: str | None, size: int
) -> KeysetPage:
    """The page after the cursor ``after`` or, given ``before``, the page just before that
    cursor (read backwards along the same index): one query either way, however deep.

    Raises ``InvalidInput`` for a cursor this keyset did not write."""
    if before:
        rows = keyset.reversed().rows(queryset, keyset.decode(before), size + 1)
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        return KeysetPage(
            rows=rows,
            next_cursor=keyset.encode(rows[-1]) if rows else None,
            previous_cursor=keyset.encode(rows[0]) if more_before else None,
        )
    rows = keyset.rows(queryset, keyset.decode(after) if after else None, size + 1)
    more_after = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows=rows,
        next_cursor=keyset.encode(rows[-1]) if more_after else None,
        previous_cursor=(keyset.encode(rows[0]) if rows else after) if after else None,
    )


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit():
        raise InvalidInput(
            {"limit": _("must be an integer between 1 and %(n)d") % {"n": MAX_LIMIT}}
        )
    limit = int(raw)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            {"limit": _("must be an integer between 1 and %(n)d") % {"n": MAX_LIMIT}}
        )
    return limit


class KeysetPagination(BasePagination):
    """``limit`` (default 50, at most 200) and ``cursor`` in; a page and ``next_cursor`` out.

    Subclasses set ``keyset``; the view's queryset must provide every key (annotations
    included). One query per page, whatever its size: ``limit + 1`` rows tell whether another
    page follows.
    """

    keyset: Keyset
    next_cursor: str | None = None

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list[Any]:
        limit = parse_limit(request.query_params.get("limit"))
        cursor = request.query_params.get("cursor")
        after = None
        if cursor:
            if len(cursor) > MAX_CURSOR_LENGTH:
                raise InvalidInput({"cursor": _("too long")})
            after = self.keyset.decode(cursor)
        rows = self.keyset.rows(queryset, after, limit + 1)
        self.next_cursor = self.keyset.encode(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit]

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": "limit",
                "required": False,
                "in": "query",
                "description": f"Page size (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": (
                    "`next_cursor` of the previous page, as returned (opaque; a cursor of "
                    "another list is refused); omit for the first page."
                ),
                "schema": {
                    "type": "string",
                    "format": self.keyset.cursor_format,
                    "maxLength": MAX_CURSOR_LENGTH,
                },
            },
        ]
