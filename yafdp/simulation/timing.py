"""Simulated AWS time for the local backend: hop latencies, cold starts, concurrency and quotas on a virtual clock.

:class:`SimulatedTiming` implements the bus's timing hooks (:class:`yafdp.runtime.interfaces.TimingModel`) on
virtual time with a latency profile (:mod:`yafdp.simulation.profiles`) and the account's quotas
(:mod:`yafdp.simulation.quotas`), so 100,000 orders simulate in well under a minute.
"""

from __future__ import annotations

import heapq
import random

from yafdp.errors import RefusedError
from yafdp.simulation.profiles import Distribution, LatencyProfile
from yafdp.simulation.quotas import Quotas, TokenBucket, load_quotas

ENTRIES_PER_PUT_EVENTS = 10


class _Function:
    """One Lambda function's execution environments as the model sees them."""

    __slots__ = ("busy", "idle", "ramp_start", "last_busy", "creations", "peak", "cap", "handler")

    def __init__(self, creations: TokenBucket, cap: int, handler: Distribution):
        self.busy: list[float] = []  # heap: when each environment in use is free again (all its work assigned)
        self.idle: list[float] = []  # stack: when each idle environment became free, the most recent on top
        self.ramp_start: float | None = None  # when the SQS event source mapping started scaling up
        self.last_busy = 0.0
        self.creations = creations
        self.peak = 0
        self.cap = cap  # the most it may ever run at once: reserved (or account) concurrency, the mapping's maximum
        self.handler = handler

    def release(self, t: float) -> int:
        """Environments whose work ended by ``t`` become idle; returns how many."""
        busy, idle = self.busy, self.idle
        count = 0
        while busy and busy[0] <= t:
            idle.append(heapq.heappop(busy))
            count += 1
        return count


class SimulatedTiming:
    """The bus's timing hooks on a virtual clock, with AWS latencies, Lambda cold starts and quotas.

    Each delivery waits for its hop (EventBridge to the queue, then the event source mapping's polling), then
    for an execution environment of its service's function: a warm idle one, a new one after a cold start
    (runtime and package init) while the function's concurrency allows it, or the first one to finish. The
    account's concurrency, the SQS event source mapping's scaling (5 batches, +300 a minute, at most 1,000),
    reserved concurrency, the function scaling rate, and EventBridge's PutEvents and invocation rates bound it.
    Environments idle longer than the profile's idle timeout are reclaimed. Recorded times are virtual seconds.

    ``invocation`` is ``"queue"`` for the choreography (SQS event source mapping in front of every function) and
    ``"direct"`` when an orchestrator invokes the functions. :meth:`reserve` decides once where and when a
    delivery runs and for how long: a delivery that must wait is given the start of the first environment to
    free up (first come, first served, as a queue with a fixed number of servers) and keeps that decision.

    Examples
    --------
    >>> from yafdp.simulation.profiles import load_profile
    >>> timing = SimulatedTiming(load_profile(), seed=1)
    >>> start, end = timing.reserve("payment", 0.0)
    >>> start > 0.2 and end > start  # the first call of a function waits for a cold start
    True
    """

    simulated = True

    def __init__(self, profile: LatencyProfile, quotas: Quotas | None = None, *, seed: int = 0,
                 invocation: str = "queue"):
        if invocation not in ("queue", "direct"):
            raise RefusedError(f"invocation must be 'queue' or 'direct', got {invocation!r}")
        self.profile = profile
        self.quotas = q = quotas or load_quotas()
        self.name = profile.name
        self.invocation = invocation
        self._queued = invocation == "queue"
        self._rng = random.Random(f"{seed}:latency")
        hops = profile.hops
        self._bus, self._poll = hops["eventbridge_delivery"], hops["sqs_polling"]
        self._runtime_init, self._package_init = hops["lambda_runtime_init"], hops["lambda_package_init"]
        self._init_estimate = self._runtime_init.quantile(0.5) + self._package_init.quantile(0.5)
        self._idle_timeout = profile.idle_timeout
        self._account = q.lambda_concurrent_executions
        self._ramp_first = q.sqs_event_source_initial_concurrency
        self._ramp_per_second = q.sqs_event_source_scale_up_per_minute / 60
        # Only the choreography goes through EventBridge; an orchestrator's services publish nothing on a bus.
        self._put_events = TokenBucket(q.eventbridge_put_events_per_second) if self._queued else None
        self._invocations = TokenBucket(q.eventbridge_invocations_per_second) if self._queued else None
        self._functions: dict[str, _Function] = {}
        self._running = 0  # environments in use across the account (as of the last release)
        self.cold_starts = self.warm_starts = self.waits = self.account_full = 0

    # -- the hooks the bus calls

    def now(self, virtual: float) -> float:
        return virtual

    def hop_delay(self, rule, rng: random.Random) -> float:
        """Seconds from EventBridge's delivery to the handler's invocation, by the rule's topology: EventBridge
        to the queue, then the event source mapping's poll; a ``"lambda"`` target is EventBridge's hop alone."""
        if getattr(rule.target, "kind", "queue") == "lambda":
            return self._bus.sample(rng)
        return self._bus.sample(rng) + self._poll.sample(rng)

    def admit(self, at: float, entries: int) -> float:
        """When a PutEvents call of ``entries`` entries made at ``at`` is accepted (one request per 10 entries)."""
        if self._put_events is None:
            return at
        for _ in range(max(1, -(-entries // ENTRIES_PER_PUT_EVENTS))):
            at = self._put_events.admit(at)
        return at

    def reserve(self, service: str, virtual: float) -> tuple[float, float | None]:
        """Reserve an environment of ``service``'s function for a handler call asked for at ``virtual``:
        ``(start, end)`` in virtual seconds, the call's duration drawn from the profile. ``end`` is None when
        the account's concurrency is all taken by other functions' work: ask again at ``start``, when the
        first of it ends."""
        t = asked = virtual
        fn = self._functions.get(service) or self._function(service)
        if self._invocations is not None:
            t = self._invocations.admit(t)
        busy, idle = fn.busy, fn.idle
        if busy and busy[0] <= t:
            self._running -= fn.release(t)
        if idle and t - idle[-1] > self._idle_timeout:
            idle.clear()  # the most recently used is too old: every idle environment was reclaimed
        room = len(busy) < self._limit(fn, t)
        if room and not (self._running < self._account or self._account_has_room(t)):
            room = False
            self.account_full += 1
        if room and idle:
            idle.pop()
            self.warm_starts += 1
            return self._assign(fn, asked, t)
        if room:
            return self._cold(fn, asked, t)
        self.waits += 1
        if not busy:  # the account is full of other functions' work: ask again when some of it ends
            return min(other.busy[0] for other in self._functions.values() if other.busy), None
        start = heapq.heappop(busy)
        self._running -= 1
        if self._queued and fn.ramp_start is None:
            fn.ramp_start = t  # messages are waiting: the event source mapping starts scaling up
        grow_at = self._next_capacity(fn, t)
        if grow_at is not None and grow_at + self._init_estimate < start and self._account_has_room(t):
            heapq.heappush(busy, start)
            self._running += 1
            return self._cold(fn, asked, grow_at)
        self.warm_starts += 1
        return self._assign(fn, asked, start)

    # -- helpers

    def _function(self, service: str) -> _Function:
        q = self.quotas
        creations = TokenBucket(q.lambda_new_environments_per_10_seconds / 10, q.lambda_new_environments_per_10_seconds)
        reserved = self.profile.reserved_concurrency.get(service)
        cap = min(self._account, reserved if reserved is not None else self._account)
        if self._queued:
            cap = min(cap, q.sqs_event_source_maximum_concurrency)
        fn = self._functions[service] = _Function(creations, cap, self.profile.handler(service))
        return fn

    def _limit(self, fn: _Function, t: float) -> int:
        """How many environments the function may run at ``t``: its cap, and the SQS mapping's scaling so far."""
        if not self._queued:
            return fn.cap
        if fn.ramp_start is None:
            return min(fn.cap, self._ramp_first)
        if not fn.busy and t - fn.last_busy > self.profile.esm_scale_down_idle:
            fn.ramp_start = None  # quiet again: the mapping scales back to its first batches
            return min(fn.cap, self._ramp_first)
        return min(fn.cap, self._ramp_first + int(self._ramp_per_second * (t - fn.ramp_start)))

    def _next_capacity(self, fn: _Function, t: float) -> float | None:
        """When the event source mapping may run one more batch than it has now (None: not before its cap)."""
        if not self._queued or fn.ramp_start is None:
            return None
        wanted = len(fn.busy) + 2  # the one taken for this delivery, and one more
        if wanted > fn.cap:
            return None
        return max(t, fn.ramp_start + (wanted - self._ramp_first) / self._ramp_per_second)

    def _account_has_room(self, t: float) -> bool:
        """Whether the account runs fewer environments than its concurrency quota at ``t``."""
        for f in self._functions.values():  # free what ended before t everywhere, then count
            self._running -= f.release(t)
        return self._running < self._account

    def _cold(self, fn: _Function, asked: float, t: float) -> tuple[float, float]:
        created = fn.creations.admit(t)
        self.cold_starts += 1
        ready = created + self._runtime_init.sample(self._rng) + self._package_init.sample(self._rng)
        return self._assign(fn, asked, ready)

    def _assign(self, fn: _Function, asked: float, start: float) -> tuple[float, float]:
        start = max(start, asked)
        end = start + fn.handler.sample(self._rng)
        busy = fn.busy
        heapq.heappush(busy, end)
        self._running += 1
        if end > fn.last_busy:
            fn.last_busy = end
        if len(busy) > fn.peak:
            fn.peak = len(busy)
        return start, end

    def report(self) -> dict:
        """What the model did: cold and warm starts, waits for an environment, throttling, peak concurrency."""
        return {
            "latency_model": self.name,
            "invocation": self.invocation,
            "cold_starts": self.cold_starts,
            "warm_starts": self.warm_starts,
            "waited_for_an_environment": self.waits,
            "put_events_throttled": self._put_events.throttled if self._queued else 0,
            "put_events_throttle_delay_s": round(self._put_events.delay, 3) if self._queued else 0.0,
            "invocations_throttled": self._invocations.throttled if self._queued else 0,
            "invocations_throttle_delay_s": round(self._invocations.delay, 3) if self._queued else 0.0,
            "account_concurrency_full": self.account_full,
            "peak_concurrency": {name: fn.peak for name, fn in sorted(self._functions.items())},
        }
