"""The clock a Custom Event Bus runs on: what time it is, and running something later.

The engine never sleeps and never reads the wall clock itself, so the same code runs on a local run's virtual
clock (seconds of simulated time, reproducible) and on the served endpoint's real clock.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Callable, Protocol

log = logging.getLogger(__name__)


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
        self._seq += 1
        heapq.heappush(self._due, (when, self._seq, action))

    def advance(self, seconds: float = 0.0) -> None:
        """Run everything due up to ``now + seconds`` in time order, then stand at that time."""
        end = self._now + seconds
        while self._due and self._due[0][0] <= end:
            when, _, action = heapq.heappop(self._due)
            self._now = max(self._now, when)
            action()
        self._now = end

    def settle(self, limit: float = 86_400.0 * 400) -> None:
        """Run everything due (and whatever that schedules) until nothing is, at most ``limit`` seconds ahead."""
        end = self._now + limit
        while self._due and self._due[0][0] <= end:
            when, _, action = heapq.heappop(self._due)
            self._now = max(self._now, when)
            action()


class RealTimeClock:
    """The wall clock, for a bus served to clients: ``now()`` is epoch seconds (``time.time``), and what is
    scheduled runs in one thread of its own, in time order, each action holding ``lock`` (the lock every caller
    of the bus holds, so the engine is never run by two threads at once).

    Start it with :meth:`start`; :meth:`stop` ends the thread once the action it is running (if any) returns;
    what was still scheduled is dropped. An action that raises is logged and counted in :attr:`failures`; the
    clock keeps going.

    Examples
    --------
    >>> import threading
    >>> clock, done = RealTimeClock(threading.Lock()), threading.Event()
    >>> clock.start().call_at(clock.now(), done.set)
    >>> done.wait(10.0)
    True
    >>> clock.stop(); clock.running
    False
    """

    def __init__(self, lock, now: Callable[[], float] = time.time):
        self.lock, self._now = lock, now
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failures = 0

    def now(self) -> float:
        return self._now()

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        with self._changed:
            self._seq += 1
            heapq.heappush(self._due, (when, self._seq, action))
            self._changed.notify()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "RealTimeClock":
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="custom event bus clock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._due.clear()
            self._changed.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _next(self) -> Callable[[], None] | None:
        """The next action once it is due (None: stop)."""
        with self._changed:
            while not self._stopping:
                if self._due:
                    wait = self._due[0][0] - self._now()
                    if wait <= 0:
                        return heapq.heappop(self._due)[2]
                    self._changed.wait(wait)
                else:
                    self._changed.wait()
            return None

    def _run(self) -> None:
        while (action := self._next()) is not None:
            with self.lock:
                if self._stopping:
                    return
                try:
                    action()
                except Exception:  # one failed action must not stop the bus's clock
                    self.failures += 1
                    log.exception("a scheduled action of the Custom Event Bus failed")
