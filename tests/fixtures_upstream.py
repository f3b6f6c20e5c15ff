"""Fixtures that start the upstream (OpenAI-compatible provider) simulator on loopback."""

from __future__ import annotations
