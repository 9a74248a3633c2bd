"""Measured time for the local backend: hops and handlers take no virtual time, and the times recorded are the
wall clock's. :class:`yafdp.simulation.timing.SimulatedTiming` is the same interface on virtual time."""

from __future__ import annotations

import random
import time


class MeasuredTiming:
    """The :class:`~yafdp.runtime.interfaces.TimingModel` of a run without a latency model.

    ``offset`` (seconds) continues an earlier session's clock, for a resumed run.
    """

    simulated = False
    name = "none"

    def __init__(self, offset: float = 0.0):
        self._origin = time.perf_counter() - offset

    def now(self, virtual: float) -> float:
        """The time to record for virtual time ``virtual``: here, the wall clock now (seconds since the start)."""
        return time.perf_counter() - self._origin

    def admit(self, at: float, entries: int, groups=None) -> float:
        """When a PutEvents call of ``entries`` entries made at ``at`` (virtual) is accepted: here, at once."""
        return at

    def invoke(self, rule, at: float) -> float:
        """When the bus invokes ``rule``'s target for an event accepted at ``at`` (virtual): at once."""
        return at

    def hop_delay(self, rule, rng: random.Random) -> float:
        """Virtual seconds from the bus invoking ``rule``'s target to its handler being invoked: none."""
        return 0.0

    def reserve(self, service: str, virtual: float) -> tuple[float, float]:
        """A handler call asked for at ``virtual`` starts and ends then: no virtual time passes."""
        return virtual, virtual

    def report(self) -> dict:
        """Nothing was simulated."""
        return {}
