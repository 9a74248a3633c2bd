"""The replay: recorded sagas pushed through the timing model at any arrival rate, without running a handler.

A run on measured time decides *what happens* to each order (which handlers react to which event, what they
publish, how the order ends); :mod:`yafdp.simulation.recording` keeps that as each order's causal graph. The
replay decides *when it happens*: it places orders at the arrival rate asked for, each one a recorded graph (the
recorded orders taken in turn, so the outcomes keep the recorded mix), and walks every graph through the same
:class:`~yafdp.simulation.timing.SimulatedTiming` the full simulation uses (the bus model's PutEvents and
invocation quotas and the target's retry policy, the hop to the queue and the event source mapping's poll,
Lambda's cold starts, concurrency and the mapping's scaling) and, for the orchestration, the same
:class:`~yafdp.simulation.step_functions.StepFunctionsModel` (task latency, StartExecution and state-transition
buckets). A simulated minute at AWS's real quotas takes seconds instead of minutes.

**The assumption.** The handlers' decisions do not depend on timing: the same event makes a handler publish the
same events whenever it runs. This project's handlers decide from the order and the marketplace alone, so it
holds for them; a handler that looked at the clock (a time-out, a price that changes by the hour) would break it,
and its replay would show the recorded decisions at other times.

**Where timing changes outcomes**, the replay does what the full simulation does, with the same rules:

- a PutEvents call throttled past the producer's retries is refused: the handler's delivery fails and its
  queue delivers it again after the visibility timeout, up to ``maxReceiveCount`` receives, then the message
  goes to the queue's dead-letter queue (a ``"lambda"`` target: Lambda's two asynchronous retries, then it is
  dropped); the order's request throttled so is refused;
- an invocation the bus holds past the target's maximum event age is given up on (the rule's dead-letter
  queue, or dropped);

and an order so cut short never reaches its saga's end: :class:`ReplayResult` counts it in ``not_finished``.

**What differs from the full simulation**, by construction: latencies are drawn from other random numbers
(blocks at once, :meth:`~yafdp.simulation.profiles.Distribution.samples`), so the two agree in distribution, not
order by order (``tests/integration/test_replay_validation.py`` says how closely, and why that is close enough);
orders past the recorded ones repeat them in turn; a Task that failed in the recorded run is replayed as one that
succeeded (the saga's handlers report business failures as events, not errors, so a run without faults has
none). Otherwise the replay takes the full simulation's steps in the same order: a delivery asks for an
environment when it reaches its queue, and one that must wait publishes when it has run, on the same clock.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from yafdp.errors import RefusedError
from yafdp.simulation.buses import EventBusModel
from yafdp.simulation.profiles import Distribution, LatencyProfile
from yafdp.simulation.quotas import Quotas
from yafdp.simulation.recording import JOIN, TASK, TRANSITION, Recording
from yafdp.simulation.step_functions import StepFunctionsModel
from yafdp.simulation.timing import LAMBDA_ASYNC_RETRY_DELAYS, SimulatedTiming

BLOCK = 1 << 16  # the most latencies drawn at once per distribution (the first blocks are smaller)
TIE_SECONDS = 1e-9  # at most this much later, so that calls asking at the same instant are taken in a random order


def block_draws(generator) -> Callable[[Distribution], Callable[[], float]]:
    """Samplers for :class:`SimulatedTiming` (its ``draws``) that draw latencies a block at a time from
    ``generator`` (a ``numpy.random.Generator``), blocks of 256 growing to :data:`BLOCK`, and hand them out one
    by one."""
    def draws(distribution: Distribution) -> Callable[[], float]:
        return _blocks(lambda count: distribution.samples(count, generator))
    return draws


def _blocks(fill: Callable) -> Callable[[], float]:
    """``fill(count)`` -> an array of ``count`` values, handed out one per call, in blocks that grow."""
    sizes = itertools.chain((256, 1024, 4096, 16384), itertools.repeat(BLOCK))
    return itertools.chain.from_iterable(map(lambda count: fill(count).tolist(), sizes)).__next__


@dataclass
class ReplayResult:
    """What a replay simulated.

    ``orders``: requests offered; ``placed`` and ``refused`` (the request's PutEvents throttled past the client's
    retries); ``finished`` (the saga's terminal event published) and ``not_finished`` (cut short by a delivery
    the timing dead-lettered or dropped). ``deliveries``: handler runs by outcome (``ok``, ``failed``: the
    delivery's PutEvents refused, so its queue delivers it again; ``dead_lettered``: given up on), and ``total``;
    for the orchestration, Tasks run. ``events_published``: events the bus accepted. ``saga_ms``: the
    end-to-end latency of the finished orders (``Order_Initiated`` accepted to the saga's last terminal event),
    ``orders``, ``p50`` and ``p99`` in milliseconds, interpolated between ranks as pandas and
    :func:`yafdp.runs.lifecycle.saga_latency_ms` do; ``latencies_s`` every finished order's, in seconds.
    ``simulation``: the timing model's report and ``virtual_seconds`` (the last moment simulated);
    ``orchestration``: executions, state transitions and the Step Functions throttles. ``wall_seconds``: how
    long the replay took.
    """

    style: str
    workflow: str | None
    arrival_rate: float | None
    orders: int
    placed: int
    refused: int
    finished: int
    not_finished: int
    deliveries: dict
    events_published: int
    saga_ms: dict
    latencies_s: list[float] = field(repr=False)
    simulation: dict = field(repr=False)
    orchestration: dict = field(default_factory=dict, repr=False)
    wall_seconds: float = 0.0

    @property
    def deliveries_per_second(self) -> float:
        """Handler runs simulated per second of wall time."""
        return self.deliveries["total"] / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def replay(recording: Recording, profile: LatencyProfile, quotas: Quotas, *, arrival_rate: float | None = None,
           seconds: float | None = None, orders: int | None = None, seed: int = 0,
           bus: Callable[[Quotas, Distribution, random.Random], EventBusModel] | None = None) -> ReplayResult:
    """Replay ``recording``'s sagas through the timing model of ``profile`` and ``quotas``.

    With ``arrival_rate`` (orders per second), orders arrive as a Poisson stream for ``seconds`` simulated
    seconds or until ``orders`` have arrived, each the next recorded order's graph in turn; without it, each
    recorded order arrives once, when it arrived in the recorded run. ``seed`` seeds the arrivals and every
    latency drawn. ``bus`` makes the choreography's bus model (default: EventBridge's
    :class:`~yafdp.simulation.buses.ClassicEventBus`): ``bus(quotas, delivery_latency, rng)``.

    Raises :class:`~yafdp.errors.RefusedError` for an empty recording, a rate that is not positive, or a rate
    with neither ``seconds`` nor ``orders``.
    """
    import numpy

    if not recording.orders:
        raise RefusedError("the recording holds no order to replay (no saga of the recorded run finished)")
    started = time.perf_counter()
    arrivals = _arrivals(recording, arrival_rate, seconds, orders, seed)
    generator = numpy.random.default_rng(random.Random(f"{seed}:replay").getrandbits(64))
    draws = block_draws(generator)
    queued = recording.style == "choreography"
    chosen_bus = None
    if queued and bus is not None:
        chosen_bus = bus(quotas, profile.hops["eventbridge_delivery"], random.Random(f"{seed}:bus"))
    timing = SimulatedTiming(profile, quotas, seed=seed, invocation="queue" if queued else "direct", bus=chosen_bus,
                             draws=draws)
    if queued:
        run = _Choreography(recording, timing, seed, generator)
    else:
        run = _Orchestration(recording, timing, seed,
                             StepFunctionsModel(quotas, profile, recording.workflow or "standard"), draws)
    collecting = gc.isenabled()
    gc.disable()  # the queue holds up to hundreds of thousands of small tuples: rescanning them would double the time
    try:
        run.run(arrivals)
    finally:
        if collecting:
            gc.enable()
    finished = [end - start for start, end in zip(run.start_at, run.terminal_at) if end is not None]
    placed = len(arrivals) - run.refused
    ok, failed, dead = run.ok, run.failed, run.dead_lettered
    result = ReplayResult(
        style=recording.style, workflow=recording.workflow, arrival_rate=arrival_rate, orders=len(arrivals),
        placed=placed, refused=run.refused, finished=len(finished), not_finished=placed - len(finished),
        deliveries={"ok": ok, "failed": failed, "dead_lettered": dead, "total": ok + failed + dead},
        events_published=run.events, saga_ms=_saga_ms(finished), latencies_s=finished,
        simulation={**timing.report(), "virtual_seconds": round(run.clock, 3)},
        orchestration=run.orchestration())
    result.wall_seconds = time.perf_counter() - started
    return result


def _arrivals(recording: Recording, rate: float | None, seconds: float | None, orders: int | None,
              seed: int) -> list[tuple[float, int]]:
    """``(when, graph index)`` of every order to replay, in time order."""
    recorded = recording.orders
    if rate is None:
        return [(order.due, order.graph) for order in recorded]
    if not rate > 0:
        raise RefusedError(f"arrival_rate must be positive, got {rate}")
    if seconds is None and orders is None:
        raise RefusedError("give how long orders arrive (seconds) or how many (orders)")
    rng = random.Random(f"{seed}:arrivals")
    found, at, n = [], 0.0, len(recorded)
    limit = orders if orders is not None else float("inf")
    horizon = seconds if seconds is not None else float("inf")
    while len(found) < limit:
        at += rng.expovariate(rate)
        if at > horizon:
            break
        found.append((at, recorded[len(found) % n].graph))
    return found


def _saga_ms(latencies: list[float]) -> dict:
    """``orders``, ``p50`` and ``p99`` (ms, linear between ranks: pandas' default, ``statistics``' inclusive)."""
    if not latencies:
        return {"orders": 0, "p50": None, "p99": None}
    if len(latencies) == 1:
        value = round(latencies[0] * 1000, 1)
        return {"orders": 1, "p50": value, "p99": value}
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"orders": len(latencies), "p50": round(cuts[49] * 1000, 1), "p99": round(cuts[98] * 1000, 1)}


class _Run:
    """What both styles' replays keep: per order its start and terminal time, and the counts."""

    def __init__(self, recording: Recording, timing: SimulatedTiming, seed: int):
        self.recording, self.timing = recording, timing
        # Calls that ask again for an environment when the account's concurrency frees up all ask at the same
        # instant; the full simulation's scheduler takes them in a random order, and so does the replay.
        self.tie = random.Random(f"{seed}:ties").random
        self.start_at: list[float] = []
        self.terminal_at: list[float | None] = []
        self.refused = self.ok = self.failed = self.dead_lettered = self.events = 0
        self.clock = 0.0

    def orchestration(self) -> dict:
        return {}


class _Choreography(_Run):
    """Deliveries through the bus: each node a rule's target receiving an event (see the module)."""

    def __init__(self, recording: Recording, timing: SimulatedTiming, seed: int, generator):
        super().__init__(recording, timing, seed)
        plan = recording.plan
        services = {s.name: s for s in plan.services}
        facts = {}
        for rule in plan.rules:
            parts = timing.hop_parts(rule)
            hop = _blocks(lambda count, parts=parts: sum(part.samples(count, generator) for part in parts))
            service = services.get(rule.service)
            lambda_target = rule.target.kind == "lambda"
            # What a failed receive leads to: the queue's visibility timeout and maxReceiveCount, or Lambda's
            # asynchronous retries.
            retries = (LAMBDA_ASYNC_RETRY_DELAYS if lambda_target else
                       (float(service.visibility_timeout_seconds),) * (service.max_receive_count - 1))
            facts[rule.name] = (hop, rule.target.retry_policy, retries)
        # Each node with its rule's facts: (service, entries, children, terminal, hop, policy, retries).
        self.graphs = [(graph.roots, graph.entries, tuple((n[1], n[3], n[4], n[5], *facts[n[2]]) for n in graph.nodes))
                       for graph in recording.graphs]

    def run(self, arrivals: list[tuple[float, int]]) -> None:  # noqa: C901 - the replay's one hot loop
        push, take, arrived = _calendar(arrivals)
        reserve, tie = self.timing.reserve, self.tie
        bus = self.timing.bus
        put_events, invoke = bus.put_events, bus.invoke
        graphs, start_at, terminal_at = self.graphs, self.start_at, self.terminal_at
        ok = failed = dead = events = refused = 0
        clock = 0.0
        o = -1
        while (entry := take()) is not None:
            t, order, k, nodes, attempt, end = entry
            if order < 0:  # the next order arrives: the Order service's API call publishes its start
                arrived()
                children, entries, nodes = graphs[k]
                o += 1
                order, terminal = o, False
                published = put_events(t, entries)
                start_at.append(t if published is None else published)
                terminal_at.append(None)
                if published is None:  # the client's request throttled past its retries: refused
                    refused += 1
                    continue
            else:  # a delivery: its handler runs, then publishes
                service, entries, children, terminal, hop, policy, retries = nodes[k]
                if end is None:  # asked for now
                    start, end = reserve(service, t)
                    if end is None:  # the account's concurrency is taken: ask again when some of it ends
                        push((start + tie() * TIE_SECONDS, order, k, nodes, attempt, None))
                        continue
                    if start > t and entries:  # it waits for its environment: it publishes once it ran there
                        push((start, order, k, nodes, attempt, end))
                        continue
                if end > clock:
                    clock = end
                if not entries:
                    ok += 1
                    continue
                published = put_events(end, entries)
                if published is None:  # throttled past the producer's retries: the delivery fails
                    if attempt <= len(retries):
                        failed += 1
                        push((end + retries[attempt - 1], order, k, nodes, attempt + 1, None))
                    else:
                        dead += 1
                    continue
                ok += 1
            events += entries
            if terminal and (terminal_at[order] or 0.0) < published:
                terminal_at[order] = published
            for c in children:  # the bus invokes each target of what was published
                child = nodes[c]
                invoked = invoke(published, child[5])
                if invoked is None:
                    dead += 1
                    continue
                push((invoked + child[4](), order, c, nodes, 1, None))
        self.ok, self.failed, self.dead_lettered, self.events, self.refused = ok, failed, dead, events, refused
        self.clock = clock


def _calendar(arrivals: list[tuple[float, int]]) -> tuple[Callable, Callable, Callable]:
    """What is due, by time: ``(push, pop, arrived)``. ``push(entry)`` files an entry ``(due, order, step, nodes,
    n, end)``; ``pop()`` takes the earliest (entries due at the same time compare in full), None when nothing is
    left. A heap of a whole run's waiting deliveries would be deep; here they wait in lists, one per
    1/:data:`SLOTS_PER_SECOND` seconds of due time, and only the earliest slot's list is a heap.

    The orders of ``arrivals`` (``(when, graph)``, in time order) are due as ``(when, -1, graph, None, 0, None)``,
    one at a time: ``arrived()`` makes the next one due once one is taken."""
    slots: dict[int, list] = {}
    keys: list[int] = []  # heap of the slots that hold entries
    current = [[], -1]  # the entries of the slot being taken (as a heap), and that slot
    heappush, heappop, heapify = heapq.heappush, heapq.heappop, heapq.heapify
    per_second = SLOTS_PER_SECOND
    pending = iter(arrivals)

    def push(entry: tuple) -> None:
        index = int(entry[0] * per_second)
        if index <= current[1]:
            heappush(current[0], entry)
            return
        slot = slots.get(index)
        if slot is None:
            slots[index] = [entry]
            heappush(keys, index)
        else:
            slot.append(entry)

    def pop() -> tuple | None:
        heap = current[0]
        if not heap:
            if not keys:
                return None
            index = heappop(keys)
            heap = slots.pop(index)
            heapify(heap)
            current[0], current[1] = heap, index
        return heappop(heap)

    def arrived() -> None:
        following = next(pending, None)
        if following is not None:
            push((following[0], -1, following[1], None, 0, None))

    arrived()
    return push, pop, arrived


SLOTS_PER_SECOND = 50  # entries due in the same 20 ms wait in one list


class _Orchestration(_Run):
    """Executions of the state machine: starts, states entered, Tasks and joins (see the module)."""

    def __init__(self, recording: Recording, timing: SimulatedTiming, seed: int, model: StepFunctionsModel, draws):
        super().__init__(recording, timing, seed)
        self.model = model
        self.task_latency = draws(model.task_latency)
        self.graphs = [(graph.roots, graph.nodes) for graph in recording.graphs]
        self.executions = self.transitions = 0

    def orchestration(self) -> dict:
        return {"workflow": self.model.workflow, "executions": self.executions,
                "state_transitions": self.transitions, **self.model.report()}

    def run(self, arrivals: list[tuple[float, int]]) -> None:  # noqa: C901 - the replay's other hot loop
        push, take, arrived = _calendar(arrivals)
        reserve, tie = self.timing.reserve, self.tie
        starts, transitions = self.model.starts, self.model.transitions
        task_latency = self.task_latency
        graphs, start_at, terminal_at = self.graphs, self.start_at, self.terminal_at
        waiting: dict[tuple[int, int], int] = {}  # (order, join) -> branches still running
        entered = [0]  # states entered

        def reach(order: int, nodes: tuple, c: int, t: float) -> None:
            """Step ``c`` of ``order``'s graph is reached at ``t``."""
            node = nodes[c]
            kind = node[0]
            if kind == TASK:
                push((t + task_latency(), order, c, nodes, 0, None))
            elif kind == TRANSITION:
                entered[0] += 1
                if transitions is not None:
                    t = transitions.admit(t)
                for child in node[4]:
                    reach(order, nodes, child, t)
            elif kind == JOIN:
                key = (order, c)
                left = waiting.get(key, node[6]) - 1
                if left:
                    waiting[key] = left
                    return
                waiting.pop(key, None)
                for child in node[4]:
                    reach(order, nodes, child, t)

        tasks = events = 0
        clock = 0.0
        o = -1
        while (entry := take()) is not None:
            t, order, k, nodes, phase, _ = entry
            if order < 0:  # the next order arrives: its start event starts an execution
                arrived()
                roots, nodes = graphs[k]
                o += 1
                events += 1  # the start event the Order service's API call publishes
                start_at.append(t)
                terminal_at.append(None)
                begun = starts.admit(t)
                for c in roots:
                    reach(o, nodes, c, begun)
                continue
            node = nodes[k]
            if phase:  # the Task's function returned: the state machine goes on
                for child in node[4]:
                    reach(order, nodes, child, t)
                continue
            start, end = reserve(node[1], t)
            if end is None:  # the account's concurrency is taken: ask again when some of it ends
                push((start + tie() * TIE_SECONDS, order, k, nodes, 0, None))
                continue
            tasks += 1
            if end > clock:
                clock = end
            events += node[3]
            if node[5] and (terminal_at[order] or 0.0) < end:
                terminal_at[order] = end
            push((end, order, k, nodes, 1, None))
        self.executions = o + 1
        self.transitions, self.ok, self.events, self.clock = entered[0], tasks, events, clock
