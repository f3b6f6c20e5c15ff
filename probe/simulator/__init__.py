"""Upstream (OpenAI-compatible provider) simulator; only tests and the demo start it."""

from __future__ import annotations

from probe.simulator.config import Fault, SimModel, UpstreamConfig
from probe.simulator.server import RecordedRequest, UpstreamSimulator

__all__ = ["Fault", "RecordedRequest", "SimModel", "UpstreamConfig", "UpstreamSimulator"]
