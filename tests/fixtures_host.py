"""Fixtures that start the sub2api host simulator on loopback."""

from __future__ import annotations
