"""A loopback sub2api host double for tests and the demo (ARCHITECTURE §12).

Only tests and the demo start it; no pipeline module imports it.
"""

from __future__ import annotations

from hosts.simulator.server import HostSimulator
from hosts.simulator.state import FailRule, Quirks, SimState

__all__ = ["FailRule", "HostSimulator", "Quirks", "SimState"]
