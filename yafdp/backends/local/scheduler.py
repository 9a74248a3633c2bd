"""The local backend's scheduler: a virtual clock and what is due on it, run in time order.

Things due at the same moment run in an order drawn from a seeded generator (as EventBridge promises no
order), so a run is reproducible from its seed. The bus and the Step Functions runner both compose it.
"""

from __future__ import annotations

import heapq
import random
from typing import Callable, Iterable


class Scheduler:
    """Actions ``fn(*args)`` due at virtual times (seconds), run in time order by :meth:`run`.

    Examples
    --------
    >>> done = []
    >>> scheduler = Scheduler(random.Random(1))
    >>> scheduler.push(2.0, done.append, ("later",)); scheduler.schedule(1.0, lambda: done.append("first"))
    >>> scheduler.run(); done, scheduler.vt
    (['first', 'later'], 2.0)
    """

    __slots__ = ("vt", "running", "_heap", "_seq", "_order")

    def __init__(self, order: random.Random):
        self.vt = 0.0  # the virtual clock: the due time of the latest action run
        self.running = False  # whether run() is running actions now
        self._heap: list[tuple] = []
        self._seq = 0
        self._order = order

    def push(self, due: float, fn: Callable, args: tuple = ()) -> None:
        """Run ``fn(*args)`` when the virtual clock reaches ``due``."""
        self._seq += 1
        heapq.heappush(self._heap, (due, self._order.random(), self._seq, fn, args))

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action()`` when the virtual clock reaches ``at`` seconds."""
        self.push(at, action)

    def schedule_all(self, actions: Iterable[tuple[float, Callable[[], object]]]) -> None:
        """Run each ``(at, action)`` when the virtual clock reaches ``at``; ``actions`` must come in time
        order and are taken one at a time, so a workload of any length is never all queued at once."""
        stream = iter(actions)

        def next_action() -> None:
            for at, action in stream:
                def run(action=action) -> None:
                    action()
                    next_action()
                self.push(at, run)
                return
        next_action()

    @property
    def idle(self) -> bool:
        """Whether nothing is due any more."""
        return not self._heap

    def run(self, until: float | None = None, every: int = 0, tick: Callable[[], None] | None = None) -> None:
        """Run what is due, in time order, until nothing is (or the next is due after ``until``); call
        ``tick()`` after every ``every`` actions (e.g. to commit)."""
        heap, pop, since = self._heap, heapq.heappop, 0
        self.running = True
        try:
            while heap:
                if until is not None and heap[0][0] > until:
                    break
                due, _, _, fn, args = pop(heap)
                if due > self.vt:
                    self.vt = due
                fn(*args)
                if every:
                    since += 1
                    if since >= every:
                        since = 0
                        tick()
        finally:
            self.running = False
