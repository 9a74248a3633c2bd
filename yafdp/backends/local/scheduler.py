"""The local backend's scheduler: a virtual clock and what is due on it, run in time order.

Things due at the same moment run in an order drawn from a seeded generator (as EventBridge promises no
order), so a run is reproducible from its seed. The bus and the Step Functions runner both compose it.
"""

from __future__ import annotations

import heapq
import random
from typing import Callable, Iterable


class Timer:
    """An action due at a virtual time that can be cancelled before it runs (:meth:`Scheduler.timer`): a cancelled
    timer neither runs nor moves the clock, so a deadline that was called off leaves no trace on the run."""

    __slots__ = ("fn", "args", "cancelled")

    def __init__(self, fn: Callable, args: tuple):
        self.fn, self.args, self.cancelled = fn, args, False

    def __call__(self) -> None:
        self.fn(*self.args)

    def cancel(self) -> None:
        """Call the action off (nothing happens when it is due)."""
        self.cancelled = True


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

    __slots__ = ("vt", "running", "_heap", "_timers", "_seq", "_order")

    def __init__(self, order: random.Random):
        self.vt = 0.0  # the virtual clock: the due time of the latest action run
        self.running = False  # whether run() is running actions now
        self._heap: list[tuple] = []
        # Timers wait in a heap of their own: most are cancelled long before they are due (a saga's deadline), and
        # in the actions' heap they would make every push and pop of the run's deliveries dearer. Both heaps'
        # entries compare alike, and run() takes the smaller head, so the order is the one a single heap gives.
        self._timers: list[tuple] = []
        self._seq = 0
        self._order = order

    def push(self, due: float, fn: Callable, args: tuple = ()) -> None:
        """Run ``fn(*args)`` when the virtual clock reaches ``due``."""
        self._seq += 1
        heapq.heappush(self._heap, (due, self._order.random(), self._seq, fn, args))

    def timer(self, due: float, fn: Callable, args: tuple = ()) -> Timer:
        """Run ``fn(*args)`` when the virtual clock reaches ``due``, unless the returned :class:`Timer` is cancelled
        first. Timers draw nothing from the order generator (a tie with another action runs after it), so arming one
        changes no other choice of a seeded run."""
        self._seq += 1
        timer = Timer(fn, args)
        heapq.heappush(self._timers, (due, 1.0, self._seq, timer, ()))
        return timer

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
        """Whether nothing is due any more (a cancelled timer is nothing)."""
        return not self._heap and all(entry[3].cancelled for entry in self._timers)

    def run(self, until: float | None = None, every: int = 0, tick: Callable[[], None] | None = None) -> None:
        """Run what is due, in time order, until nothing is (or the next is due after ``until``); call
        ``tick()`` after every ``every`` actions (e.g. to commit)."""
        heap, timers, pop, since = self._heap, self._timers, heapq.heappop, 0
        self.running = True
        try:
            while heap or timers:
                if timers and timers[0][3].cancelled:
                    pop(timers)
                    continue
                # An action runs before a timer due at the same time (its order key is below a timer's 1.0): the
                # due times alone say which head comes first.
                first = timers if timers and (not heap or heap[0][0] > timers[0][0]) else heap
                if until is not None and first[0][0] > until:
                    break
                due, _, _, fn, args = pop(first)
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
