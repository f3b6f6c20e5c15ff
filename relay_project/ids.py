"""Opaque, sortable, never-reused identifiers: a type prefix plus a ULID."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def new_run_id() -> str:
    return new_id("run")


def new_item_id() -> str:
    return new_id("item")


def new_event_id() -> str:
    return new_id("evt")


def new_reconcile_id() -> str:
    return new_id("rec")
