"""Simulated AWS time: hop latencies, cold starts, concurrency and quotas on a virtual clock.

:class:`SimulatedTiming` implements the bus's timing hooks (:class:`yafdp.runtime.interfaces.TimingModel`) on
virtual time with a latency profile (:mod:`yafdp.simulation.profiles`), the account's quotas
(:mod:`yafdp.simulation.quotas`) and a model of the event bus (:mod:`yafdp.simulation.buses`). It is the one
implementation of these rules: the local bus's full simulation calls it as its handlers run, and the replay
(:mod:`yafdp.simulation.replay`) calls it with recorded sagas and no handler at all.
"""

from __future__ import annotations

import random
from functools import partial
from heapq import heappop, heappush, heapreplace
from typing import Callable

from yafdp.errors import RefusedError
from yafdp.simulation.buses import NO_BUS, ClassicEventBus, EventBusModel
from yafdp.simulation.profiles import Distribution, LatencyProfile
from yafdp.simulation.quotas import Quotas, TokenBucket, load_quotas

# Lambda's asynchronous invocation (EventBridge invoking a function directly): a function error is retried twice,
# one then two minutes later, then the event is discarded ("How Lambda handles errors and retries with
# asynchronous invocation", https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
LAMBDA_ASYNC_RETRY_DELAYS = (60.0, 120.0)


class _Function:
    """One Lambda function's execution environments as the model sees them."""

    __slots__ = ("busy", "idle", "ramp_start", "last_busy", "creations", "peak", "cap", "draw")

    def __init__(self, creations, cap: int, draw: Callable[[], float]):
        self.busy: list[float] = []  # heap: when each environment in use is free again (all its work assigned)
        self.idle: list[float] = []  # stack: when each idle environment became free, the most recent on top
        self.ramp_start: float | None = None  # when the SQS event source mapping started scaling up
        self.last_busy = 0.0
        self.creations = creations
        self.peak = 0
        self.cap = cap  # the most it may ever run at once: reserved (or account) concurrency, the mapping's maximum
        self.draw = draw  # one handler call's duration (seconds)

    def release(self, t: float) -> int:
        """Environments whose work ended by ``t`` become idle; returns how many."""
        busy, idle = self.busy, self.idle
        count = 0
        while busy and busy[0] <= t:
            idle.append(heappop(busy))
            count += 1
        return count


class SimulatedTiming:
    """The bus's timing hooks on a virtual clock, with AWS latencies, Lambda cold starts and quotas.

    An event is accepted by the bus (:meth:`admit`, PutEvents' quota), the bus invokes each matching rule's
    target (:meth:`invoke`, the invocation quota and the target's retry policy), the event reaches the target
    and the SQS event source mapping polls it (:meth:`hop_delay`), then the delivery waits for an execution
    environment of its service's function (:meth:`reserve`): a warm idle one, a new one after a cold start
    (runtime and package init) while the function's concurrency allows it, or the first one to finish. The
    account's concurrency, the SQS event source mapping's scaling (5 batches, +300 a minute, at most 1,000),
    reserved concurrency and the function scaling rate bound it. Environments idle longer than the profile's
    idle timeout are reclaimed. Recorded times are virtual seconds.

    ``invocation`` is ``"queue"`` for the choreography (a bus in front of an SQS queue in front of every
    function) and ``"direct"`` when an orchestrator invokes the functions (no bus). ``bus`` is the model of the
    event bus (:class:`~yafdp.simulation.buses.EventBusModel`; by default EventBridge's
    :class:`~yafdp.simulation.buses.ClassicEventBus` at ``quotas``). :meth:`reserve` decides once where and when
    a delivery runs and for how long: a delivery that must wait is given the start of the first environment to
    free up (first come, first served, as a queue with a fixed number of servers) and keeps that decision.

    ``draws`` makes each distribution's sampler: ``draws(distribution)`` returns a function of no arguments
    giving one latency in seconds. By default each sample is drawn from one seeded generator when it is needed,
    in the order the run asks (a run is reproducible from its seed); the replay passes samplers that draw
    blocks at once (:meth:`~yafdp.simulation.profiles.Distribution.samples`).

    Examples
    --------
    >>> from yafdp.simulation.profiles import load_profile
    >>> timing = SimulatedTiming(load_profile(), seed=1)
    >>> start, end = timing.reserve("payment", 0.0)
    >>> start > 0.2 and end > start  # the first call of a function waits for a cold start
    True
    """

    simulated = True
    __slots__ = ("profile", "quotas", "name", "invocation", "bus", "_queued", "_rng", "_draws", "_delivery", "_poll",
                 "_runtime_init", "_package_init", "_init_estimate", "_idle_timeout", "_account", "_ramp_first",
                 "_ramp_per_second", "_scale_down_idle", "_functions", "_hops", "_running", "cold_starts",
                 "warm_starts", "waits", "account_full")

    def __init__(self, profile: LatencyProfile, quotas: Quotas | None = None, *, seed: int = 0,
                 invocation: str = "queue", bus: EventBusModel | None = None,
                 draws: Callable[[Distribution], Callable[[], float]] | None = None):
        if invocation not in ("queue", "direct"):
            raise RefusedError(f"invocation must be 'queue' or 'direct', got {invocation!r}")
        self.profile = profile
        self.quotas = q = quotas or load_quotas()
        self.name = profile.name
        self.invocation = invocation
        self._queued = invocation == "queue"
        self._rng = random.Random(f"{seed}:latency")
        self._draws = draws or (lambda distribution: partial(distribution.sample, self._rng))
        hops = profile.hops
        # Only the choreography goes through a bus; an orchestrator's services publish on none.
        if bus is None and self._queued:
            bus = ClassicEventBus(q, hops["eventbridge_delivery"], random.Random(f"{seed}:bus"))
        self.bus = bus
        self._delivery = bus.delivery if bus is not None else hops["eventbridge_delivery"]
        self._poll = hops["sqs_polling"]
        self._runtime_init, self._package_init = hops["lambda_runtime_init"], hops["lambda_package_init"]
        self._init_estimate = self._runtime_init.quantile(0.5) + self._package_init.quantile(0.5)
        self._idle_timeout = profile.idle_timeout
        self._account = q.lambda_concurrent_executions
        self._ramp_first = q.sqs_event_source_initial_concurrency
        self._ramp_per_second = q.sqs_event_source_scale_up_per_minute / 60
        self._scale_down_idle = profile.esm_scale_down_idle
        self._functions: dict[str, _Function] = {}
        self._hops: dict[str, tuple[Distribution, ...]] = {}
        self._running = 0  # environments in use across the account (as of the last release)
        self.cold_starts = self.warm_starts = self.waits = self.account_full = 0

    # -- the hooks the bus calls

    def now(self, virtual: float) -> float:
        return virtual

    def admit(self, at: float, entries: int, groups=None) -> float | None:
        """When a PutEvents call of ``entries`` entries first tried at ``at`` is accepted (by the bus model:
        :meth:`~yafdp.simulation.buses.EventBusModel.put_events`, ``groups`` its entries per event group), the
        producer's retries of a throttled request included; None when the producer gives up
        (``ThrottlingException``). Without a bus (an orchestrator's services), at once."""
        if self.bus is None:
            return at
        return self.bus.put_events(at, entries, groups)

    def invoke(self, rule, at: float) -> float | None:
        """When the bus invokes ``rule``'s target for an event it accepted at ``at``; None when the target's
        retry policy gives up on the event first (it goes to the rule's dead-letter queue, or is dropped)."""
        if self.bus is None:
            return at
        return self.bus.invoke(at, rule.target.retry_policy)

    def hop_parts(self, rule) -> tuple[Distribution, ...]:
        """The latencies an event crosses from the bus invoking ``rule``'s target to the handler's invocation,
        by the rule's topology: the bus's delivery to the queue, then the event source mapping's poll; a
        ``"lambda"`` target is the bus's delivery alone."""
        parts = self._hops.get(rule.name)
        if parts is None:
            lambda_target = getattr(rule.target, "kind", "queue") == "lambda"
            parts = self._hops[rule.name] = (self._delivery,) if lambda_target else (self._delivery, self._poll)
        return parts

    def hop_delay(self, rule, rng: random.Random) -> float:
        """Seconds from the bus invoking ``rule``'s target to the handler's invocation (:meth:`hop_parts`), each
        part drawn from ``rng`` in turn."""
        parts = self._hops.get(rule.name) or self.hop_parts(rule)  # known after a rule's first delivery: no call
        if len(parts) == 1:
            return parts[0].sample(rng)
        return parts[0].sample(rng) + parts[1].sample(rng)

    def reserve(self, service: str, virtual: float) -> tuple[float, float | None]:
        """Reserve an environment of ``service``'s function for a handler call asked for at ``virtual``:
        ``(start, end)`` in virtual seconds, the call's duration drawn from the profile. ``end`` is None when
        the account's concurrency is all taken by other functions' work: ask again at ``start``, when the
        first of it ends."""
        t = virtual
        fn = self._functions.get(service) or self._function(service)
        busy, idle = fn.busy, fn.idle
        if busy and busy[0] <= t:
            self._running -= fn.release(t)
        if idle and t - idle[-1] > self._idle_timeout:
            idle.clear()  # the most recently used is too old: every idle environment was reclaimed
        # How many environments the function may run at t: its cap, and the SQS mapping's scaling so far.
        limit, queued, ramp_first, running = fn.cap, self._queued, self._ramp_first, len(busy)
        if queued:
            ramp = fn.ramp_start
            if ramp is not None and not busy and t - fn.last_busy > self._scale_down_idle:
                fn.ramp_start = ramp = None  # quiet again: the mapping scales back to its first batches
            grown = ramp_first if ramp is None else ramp_first + int(self._ramp_per_second * (t - ramp))
            if grown < limit:
                limit = grown
        if running < limit:
            if not (self._running < self._account or self._account_has_room(t)):
                self.account_full += 1
            elif idle:
                idle.pop()
                self.warm_starts += 1
                return self._assign(fn, t, t)
            else:
                return self._cold(fn, t, t)
        self.waits += 1
        if not busy:  # the account is full of other functions' work: ask again when some of it ends
            return min(other.busy[0] for other in self._functions.values() if other.busy), None
        start = busy[0]  # the environment that frees up first (after t: the others were released above)
        if queued:
            if ramp is None:
                fn.ramp_start = ramp = t  # messages are waiting: the event source mapping starts scaling up
            wanted = running + 1  # the environments it runs, and one more
            if wanted <= fn.cap:  # when the growing mapping may run that one more, and whether it is ready sooner
                grow_at = ramp + (wanted - ramp_first) / self._ramp_per_second
                if grow_at < t:
                    grow_at = t
                if grow_at + self._init_estimate < start and self._account_has_room(t, spare=1):
                    return self._cold(fn, t, grow_at)
        self.warm_starts += 1
        end = start + fn.draw()
        heapreplace(busy, end)  # that environment takes the call, from ``start`` on
        if end > fn.last_busy:
            fn.last_busy = end
        return start, end

    # -- helpers

    def _function(self, service: str) -> _Function:
        q = self.quotas
        creations = TokenBucket(q.lambda_new_environments_per_10_seconds / 10, q.lambda_new_environments_per_10_seconds)
        reserved = self.profile.reserved_concurrency.get(service)
        cap = min(self._account, reserved if reserved is not None else self._account)
        if self._queued:
            cap = min(cap, q.sqs_event_source_maximum_concurrency)
        fn = self._functions[service] = _Function(creations, cap, self._draws(self.profile.handler(service)))
        return fn

    def _account_has_room(self, t: float, spare: int = 0) -> bool:
        """Whether the account runs fewer environments than its concurrency quota at ``t``, not counting
        ``spare`` of them (one the caller could take over)."""
        for f in self._functions.values():  # free what ended before t everywhere, then count
            self._running -= f.release(t)
        return self._running - spare < self._account

    def _cold(self, fn: _Function, asked: float, t: float) -> tuple[float, float]:
        created = fn.creations.admit(t)
        self.cold_starts += 1
        ready = created + self._runtime_init.sample(self._rng) + self._package_init.sample(self._rng)
        return self._assign(fn, asked, ready)

    def _assign(self, fn: _Function, asked: float, start: float) -> tuple[float, float]:
        if start < asked:
            start = asked
        end = start + fn.draw()
        busy = fn.busy
        heappush(busy, end)
        self._running += 1
        if end > fn.last_busy:
            fn.last_busy = end
        if len(busy) > fn.peak:
            fn.peak = len(busy)
        return start, end

    def report(self) -> dict:
        """What the model did: cold and warm starts, waits for an environment, peak concurrency, and what the
        bus throttled, refused and gave up on."""
        bus = self.bus.report() if self.bus is not None else NO_BUS
        return {
            "latency_model": self.name,
            "invocation": self.invocation,
            "bus": self.bus.name if self.bus is not None else None,
            "cold_starts": self.cold_starts,
            "warm_starts": self.warm_starts,
            "waited_for_an_environment": self.waits,
            **bus,
            "account_concurrency_full": self.account_full,
            "peak_concurrency": {name: fn.peak for name, fn in sorted(self._functions.items())},
        }
