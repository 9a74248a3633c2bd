"""The clock a Custom Event Bus runs on: what time it is, and running something later.

The engine never sleeps and never reads the wall clock itself, so the same code runs on a local run's virtual
clock (seconds of simulated time, reproducible) and on the served endpoint's real clock.
"""

from __future__ import annotations

from typing import Callable, Protocol


class Clock(Protocol):
    """``now()`` in epoch seconds; ``call_at(when, action)`` runs ``action()`` once the clock reaches ``when``
    (at once, on the next step, when ``when`` is now or past)."""

    def now(self) -> float: ...

    def call_at(self, when: float, action: Callable[[], None]) -> None: ...


class ManualClock:
    """A clock that moves only when told: for tests and examples.

    Examples
    --------
    >>> clock = ManualClock(100.0); done = []
    >>> clock.call_at(105.0, lambda: done.append(clock.now()))
    >>> clock.advance(10.0); done
    [105.0]
    """

    def __init__(self, start: float = 0.0):
        self._now = start
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        import heapq

        self._seq += 1
        heapq.heappush(self._due, (when, self._seq, action))

    def advance(self, seconds: float = 0.0) -> None:
        """Run everything due up to ``now + seconds`` in time order, then stand at that time."""
        import heapq

        end = self._now + seconds
        while self._due and self._due[0][0] <= end:
            when, _, action = heapq.heappop(self._due)
            self._now = max(self._now, when)
            action()
        self._now = end

    def settle(self, limit: float = 86_400.0 * 400) -> None:
        """Run everything due (and whatever that schedules) until nothing is, at most ``limit`` seconds ahead."""
        import heapq

        end = self._now + limit
        while self._due and self._due[0][0] <= end:
            when, _, action = heapq.heappop(self._due)
            self._now = max(self._now, when)
            action()
