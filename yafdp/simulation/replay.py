"""The replay: recorded sagas pushed through the timing model at any arrival rate, without running a handler.

A run on measured time decides *what happens* to each order (which handlers react to which event, what they
publish, how the order ends); :mod:`yafdp.simulation.recording` keeps that as each order's causal graph. The
replay decides *when it happens*: it places orders at the arrival rate asked for, each one a recorded graph (the
recorded orders taken in turn, so the outcomes keep the recorded mix), and walks every graph through the same
:class:`~yafdp.simulation.timing.SimulatedTiming` the full simulation uses (the bus model's PutEvents and
invocation quotas and the target's retry policy, or the Custom Event Bus's limits per event group and per bus;
the hop to the queue and the event source mapping's poll, Lambda's cold starts, concurrency and the mapping's
scaling) and, for the orchestration, the same
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
- on the Custom Event Bus, a delivery waits behind the earlier events of its event group (a FIFO subscriber, a
  FIFO queue), and a function target's failed delivery is retried under the subscriber's retry policy, its group
  held meanwhile, and given up on past it (:class:`_CustomBusChoreography`);

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
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

from yafdp.custom_event_bus.choices import DEFAULT_CHOICES
from yafdp.custom_event_bus.subscriber import retry_backoff
from yafdp.errors import RefusedError
from yafdp.simulation.buses import EventBusModel, delivery_of, event_bus_for
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
    latency drawn. The choreography's bus is the kind the recorded run ran on (``recording.plan.bus_kind``):
    EventBridge's :class:`~yafdp.simulation.buses.ClassicEventBus` or its
    :class:`~yafdp.simulation.buses.CustomEventBus` (:func:`~yafdp.simulation.buses.event_bus_for`; on the Custom
    Event Bus the deliveries also keep each event group's order, see :class:`_CustomBusChoreography`); ``bus``
    makes another model of it: ``bus(quotas, delivery_latency, rng)``.

    Raises :class:`~yafdp.errors.RefusedError` for an empty recording, a rate that is not positive, or a rate
    with neither ``seconds`` nor ``orders``.
    """
    import numpy

    if not recording.orders:
        raise RefusedError(f"{recording.source or 'the run'}: the recording holds no order to replay (none of the run's "
                           "orders was placed and finished)")
    started = time.perf_counter()
    arrivals = _arrivals(recording, arrival_rate, seconds, orders, seed)
    generator = numpy.random.default_rng(random.Random(f"{seed}:replay").getrandbits(64))
    draws = block_draws(generator)
    queued = recording.style == "choreography"
    chosen_bus, kind = None, recording.plan.bus_kind
    if queued:
        rng = random.Random(f"{seed}:bus")  # as the full simulation seeds its bus model
        chosen_bus = event_bus_for(kind, profile, quotas, rng) if bus is None else \
            bus(quotas, delivery_of(kind, profile), rng)
    timing = SimulatedTiming(profile, quotas, seed=seed, invocation="queue" if queued else "direct", bus=chosen_bus,
                             draws=draws)
    if queued:
        run = (_CustomBusChoreography if kind == "custom" else _Choreography)(recording, timing, seed, generator)
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
        simulation={**timing.report(), **run.report(), "virtual_seconds": round(run.clock, 3)},
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

    def report(self) -> dict:
        """What this kind of replay counts beyond the timing model's report."""
        return {}


def _route_facts(plan, timing: SimulatedTiming, generator) -> dict[str, tuple]:
    """Per rule (or subscriber) of ``plan``, by name: ``(hop, policy, retries)``, the sampler of its hop from the bus
    to the handler (:meth:`~yafdp.simulation.timing.SimulatedTiming.hop_parts`, drawn in blocks from
    ``generator``), its target's retry policy, and the delays of a failed receive's next tries: the queue's
    visibility timeout, ``maxReceiveCount`` - 1 times, or Lambda's asynchronous retries for a function target."""
    services = {s.name: s for s in plan.services}
    facts = {}
    for rule in plan.routes:
        parts = timing.hop_parts(rule)
        hop = _blocks(lambda count, parts=parts: sum(part.samples(count, generator) for part in parts))
        service = services.get(rule.service)
        retries = (LAMBDA_ASYNC_RETRY_DELAYS if rule.target.kind == "lambda" else
                   (float(service.visibility_timeout_seconds),) * (service.max_receive_count - 1))
        facts[rule.name] = (hop, rule.target.retry_policy, retries)
    return facts


class _Choreography(_Run):
    """Deliveries through the Classic bus: each node a rule's target receiving an event (see the module)."""

    def __init__(self, recording: Recording, timing: SimulatedTiming, seed: int, generator):
        super().__init__(recording, timing, seed)
        facts = _route_facts(recording.plan, timing, generator)
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


# How a Custom Event Bus subscriber's target takes an event: its service's queue, or its function invoked
# REQUEST_RESPONSE (the delivery lasts until the function returns) or EVENT (Lambda's asynchronous queue takes it).
QUEUE, REQUEST_RESPONSE, EVENT = 0, 1, 2
# What a Custom Event Bus delivery's calendar entry stands for (with its attempt: ``attempt * 8 + step``): its handler
# asks for an environment; its event reaches a subscriber that must take it in time order; its message reaches a
# queue that must take it in time order (see :class:`_CustomBusChoreography`).
RUN, INGESTED, ARRIVED = 0, 1, 2
TAKEN = math.inf  # a group's turn is taken until its holder lets go (when, is not known yet)


class _Delivery:
    """A node of a recorded Custom Event Bus graph, with what its replay needs of it, worked out once per graph.

    From the recording: ``service``, ``entries`` (the events its handler publishes, in one PutEvents call),
    ``published`` (those entries by event group: ``(group, count, bytes)``), ``children`` (indices of the deliveries
    they cause) and ``terminal`` (whether one is the saga's terminal event). From its subscriber: ``hop`` (a sampler of
    the seconds from the subscriber sending the event to the handler's invocation), ``retry_policy``, ``retries``
    (the delays, in seconds, of a failed receive's next tries: the queue's visibility timeout, or Lambda's
    asynchronous retries), ``mode`` (:data:`QUEUE`, :data:`REQUEST_RESPONSE` or :data:`EVENT`), ``visibility`` (the
    queue's visibility timeout, seconds) and ``batch`` (the subscriber's batch being sent, shared by all its
    deliveries: ``[when, its hop, events in it]``) of at most ``batch_size`` events.

    The groups it waits its turn in, as places in its order's state (0: none): ``subscriber_group`` (its FIFO
    subscriber's), ``queue_group`` (its FIFO queue's) and ``running_group`` (the one its handler holds until it is
    done: the FIFO queue's, or a REQUEST_RESPONSE FIFO subscriber's). Whether its event
    reaches the subscriber (``ingest_on_calendar``) or its message reaches the queue (``arrive_on_calendar``) as a
    step of its own on the calendar, see :class:`_CustomBusChoreography`.
    """

    __slots__ = ("service", "entries", "published", "children", "terminal", "hop", "retry_policy", "retries", "mode",
                 "visibility", "batch", "batch_size", "subscriber_group", "queue_group", "running_group",
                 "ingest_on_calendar", "arrive_on_calendar")


def _out_of_causal_order(graph, fifo: set[str]) -> tuple[set[int], set[int]]:
    """For one recorded graph: the deliveries whose event may reach its subscriber before an event of the same
    subscriber published earlier by another delivery, and those whose message may reach its service's queue before
    one that reaches it earlier, as far as the graph's causes tell (each a set of node indices); ``fifo`` names the
    FIFO subscribers.

    Two events published by deliveries one of which caused the other reach a subscriber in the order they were
    published, one delivery's message reaches its queue before any message it caused, and a FIFO subscriber's
    messages reach the queue in the order it sends them; two from parallel branches of the saga (a compensation
    beside the main line) may come in either order. Every delivery of a subscriber (or queue) for which that happens
    is in the set: its steps there are taken in time order on the calendar."""
    nodes = graph.nodes
    parent = {child: k for k, node in enumerate(nodes) for child in node[4]}

    def caused(early: int, late: int) -> bool:  # ``early`` is ``late`` or one of its causes (-1: the order's start)
        while late != early and late >= 0:
            late = parent.get(late, -1)
        return late == early

    def in_causal_order(a: int, b: int) -> bool:
        return caused(a, b) or caused(b, a)

    by_route: dict[str, list[int]] = {}
    by_service: dict[str, list[int]] = {}
    for k, node in enumerate(nodes):
        by_route.setdefault(node[2], []).append(k)
        by_service.setdefault(node[1], []).append(k)
    ingested = {k for same in by_route.values() for a in same for b in same
                if not in_causal_order(parent.get(a, -1), parent.get(b, -1))}
    ingested = {k for same in by_route.values() if ingested.intersection(same) for k in same}
    arrived = {k for same in by_service.values() for a in same for b in same
               if not (nodes[a][2] == nodes[b][2] in fifo or in_causal_order(a, b))}
    arrived = {k for same in by_service.values() if arrived.intersection(same) for k in same}
    return ingested, arrived


class _CustomBusChoreography(_Run):
    """Deliveries through the Custom Event Bus: each node a subscriber's target receiving an event.

    What the bus does to timing, as the full simulation does it (:class:`~yafdp.simulation.buses.CustomEventBus`
    for ingestion; the engine, :mod:`yafdp.custom_event_bus.subscriber`, and the local FIFO queues,
    :mod:`yafdp.backends.local.sqs_queue`, for delivery):

    - every PutEvents is admitted by the bus model with its entries per event group (the limits per group and per
      bus); a request refused past the producer's retries fails the delivery, as on the Classic bus;
    - a ``FIFO`` subscriber sends one event of a group at a time, in publish order: a later event of an order waits
      until the earlier one has reached the target (the queue; a ``REQUEST_RESPONSE`` function: until it returned,
      its retries included; an ``EVENT`` function: until Lambda took it, at once). "An event that cannot be
      delivered holds back the later events of its own group only" (UG "Ordering",
      https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html; one event per group in
      flight is the engine's choice, SPEC A.4);
    - a FIFO queue hands its function one message of a group at a time, in the order they reached it: the next waits
      until the handler is done with the one before, or, when it failed, until it was received again successfully
      or dead-lettered ("Using the Lambda event source mapping with FIFO queues",
      https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html);
    - a function target's failed delivery is retried under the subscriber's ``RetryPolicy`` (this project's catalog
      gives AWS's defaults, 5 retries or 300 s, not Classic's 185 or 24 hours: UG "Retrying event delivery",
      https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-retry.html) after the engine's
      back-off (:func:`~yafdp.custom_event_bus.subscriber.retry_backoff`; AWS documents none), and given up on past
      either limit; the bus invokes targets with no rate limit of its own (its quotas list none).

    A subscriber sends the events that are ready at the same moment together, up to its ``MaxBatchSize`` (10 for
    a queue, 1 for a function), and they take the same hop to the target; under load, a FIFO subscriber's
    waiting events go in such batches as their groups let go together, and reach their queue together.

    **How it is computed.** Each delivery takes one step on the calendar, when its handler asks for an environment
    (two when it waits for one and publishes: it publishes once it ran there). The rest is worked out when it is
    known: when a delivery publishes, each event's send to its subscriber (a FIFO subscriber's group free again once
    the event before reached its queue), the hop, and the message's turn in its FIFO queue's group, which a holder
    hands to the first waiting message when it lets go. That takes the groups' events in causal order, which is
    their time order unless two parallel branches of a saga publish to one FIFO subscriber or one queue: the
    deliveries of such a subscriber (or queue) in that graph take their step there on the calendar, in time order
    (:func:`_out_of_causal_order`).
    """

    def __init__(self, recording: Recording, timing: SimulatedTiming, seed: int, generator):
        super().__init__(recording, timing, seed)
        plan = recording.plan
        facts = _route_facts(plan, timing, generator)
        services = {s.name: s for s in plan.services}
        keys: dict[tuple[str, str], int] = {}  # a FIFO subscriber, or a FIFO queue -> its number
        routes = {}
        for rule in plan.routes:
            service = services[rule.service]
            mode = QUEUE if rule.target.kind != "lambda" else (
                EVENT if rule.invocation_type == "EVENT" else REQUEST_RESPONSE)
            subscriber = keys.setdefault(("subscriber", rule.name), len(keys)) if rule.fifo else -1
            queue = keys.setdefault(("queue", service.queue), len(keys)) if mode == QUEUE and service.fifo_queue else -1
            running = queue if mode == QUEUE else (subscriber if mode == REQUEST_RESPONSE else -1)
            routes[rule.name] = (*facts[rule.name], mode, subscriber, queue, running,
                                 float(service.visibility_timeout_seconds), [-1.0, 0.0, 0], rule.batch_size)
        # A group of an order is named by its place in the order's state: 1 + 2 * (key * groups + the group's place
        # among the order's groups) (0: no group, or not FIFO, holds nothing).
        self.groups = groups = 1 + max((n[7] for graph in recording.graphs for n in graph.nodes), default=0)
        self.places = len(keys) * groups

        def held_by(key: int, group: int) -> int:
            return 1 + 2 * (key * groups + group) if key >= 0 and group >= 0 else 0

        def delivery(node: tuple, ingested: bool, arrived: bool, grouped: bool) -> _Delivery:
            d = _Delivery()
            (d.hop, d.retry_policy, d.retries, d.mode, subscriber, queue, running, d.visibility, d.batch,
             d.batch_size) = routes[node[2]]
            d.service, d.entries, d.children, d.terminal = node[1], node[3], node[4], node[5]
            d.published = node[8] if grouped else ()
            group = node[7]
            d.subscriber_group = held_by(subscriber, group) if d.mode != EVENT else 0
            d.queue_group, d.running_group = held_by(queue, group), held_by(running, group)
            d.ingest_on_calendar = ingested and d.subscriber_group > 0
            d.arrive_on_calendar = arrived and d.queue_group > 0
            return d

        def deliveries(graph, grouped: bool) -> tuple[_Delivery, ...]:
            ingested, arrived = _out_of_causal_order(graph, {rule.name for rule in plan.routes if rule.fifo})
            return tuple(delivery(n, k in ingested, k in arrived, grouped) for k, n in enumerate(graph.nodes))

        # An order's event groups whose limit the bus model shows can never throttle them (all the group's events of the
        # graph together leave room) are not handed to it: their windows would say yes to every request.
        never = getattr(timing.bus, "group_never_throttled", None)

        def grouped(graph) -> bool:
            most: dict[int, float] = {}
            for group, count, size in itertools.chain(graph.published, *(n[8] for n in graph.nodes)):
                most[group] = most.get(group, 0.0) + count + size / 1024
            return never is None or not all(never(total) for total in most.values())

        self.graphs = []
        for graph in recording.graphs:
            keep = grouped(graph)
            self.graphs.append((graph.roots, graph.entries, graph.published if keep else (), deliveries(graph, keep)))
        self.retry_rng = random.Random(f"{seed}:subscriber-retries")
        self.held_back = 0

    def report(self) -> dict:
        return {"held_back_behind_their_group": self.held_back}

    def run(self, arrivals: list[tuple[float, int]]) -> None:  # noqa: C901 - the Custom Event Bus's hot loop
        push, take, arrived = _calendar(arrivals)
        reserve, tie = self.timing.reserve, self.tie
        put_events = self.timing.bus.put_events
        graphs, start_at, terminal_at = self.graphs, self.start_at, self.terminal_at
        retry_rng, places, groups = self.retry_rng, self.places, self.groups
        # Per order, while it has deliveries to make (else None): [how many, then two places per group (see
        # _Delivery)]. A FIFO subscriber's group sending to a queue: when its last event sent reaches the queue (the
        # group's next event is sent then). A group whose deliveries take turns (a FIFO queue's, a REQUEST_RESPONSE
        # FIFO subscriber's): when its turn is free (TAKEN while a delivery holds it), then the deliveries waiting for
        # it (a list of (ready, node), or None).
        states: list[list | None] = []
        first_tried: dict[tuple[int, int], float] = {}  # (order, node) -> a REQUEST_RESPONSE delivery's first try
        ok = failed = dead = events = refused = held_back = 0
        clock = 0.0

        def send(at: float, node: _Delivery) -> float:
            """The subscriber sends ``node``'s event at ``at``, in the batch it sends then if that has room; returns
            when it reaches the target."""
            batch = node.batch
            if batch[0] == at and batch[2] < node.batch_size:
                batch[2] += 1
            else:
                batch[0], batch[1], batch[2] = at, node.hop(), 1
            return at + batch[1]

        def turn_came(at: float, order: int, k: int, nodes: tuple) -> None:
            """Delivery ``k`` of ``order`` has its group's turn from ``at``: the handler asks for an environment (a
            queue's message), or the subscriber sends the event (a REQUEST_RESPONSE function's)."""
            node = nodes[k]
            if node.mode == QUEUE:
                push((at, order, k, nodes, 8 + RUN, None))
                return
            first_tried[order, k] = at
            push((send(at, node), order, k, nodes, 8 + RUN, None))

        def wait_turn(state: list, group: int, ready: float, order: int, k: int, nodes: tuple) -> None:
            """Delivery ``k`` of ``order`` is ready for its turn in ``group`` at ``ready`` (a group's deliveries
            come in the order they are ready): it takes it when the group is free, or waits behind it."""
            nonlocal held_back
            free = state[group]
            if free == TAKEN:
                waiting = state[group + 1]
                if waiting is None:  # (a list: an order has a few deliveries per group at most)
                    waiting = state[group + 1] = []
                waiting.append((ready, k))
                return
            if free > ready:
                held_back += 1
                ready = free
            state[group] = TAKEN
            turn_came(ready, order, k, nodes)

        def let_go(state: list, group: int, at: float, order: int, nodes: tuple) -> None:
            """The delivery holding ``group`` lets go at ``at``: the first waiting takes its turn then."""
            nonlocal held_back
            waiting = state[group + 1]
            if waiting:
                ready, k = waiting.pop(0)
                if ready < at:  # it was there first
                    held_back += 1
                    ready = at
                turn_came(ready, order, k, nodes)
            else:
                state[group] = at

        def caused(at: float, order: int, children: tuple, nodes: tuple, state: list, due: bool = False) -> None:
            """The events published at ``at`` reach the subscribers of ``children`` (``due``: the one delivery of
            ``children`` whose event reaches its subscriber now, its step on the calendar): each subscriber sends its
            event in its group's turn, and the message waits for its own turn in its FIFO queue."""
            nonlocal held_back
            if not due:
                state[0] += len(children)
            for k in children:
                if not due and nodes[k].ingest_on_calendar:
                    push((at, order, k, nodes, 8 + INGESTED, None))
                    continue
                node = nodes[k]
                group = node.subscriber_group
                if node.mode == QUEUE:  # (send and wait_turn inline here: the replay's hottest path)
                    sent = at
                    if group:
                        free = state[group]
                        if free > sent:
                            held_back += 1
                            sent = free
                    batch = node.batch
                    if batch[0] == sent and batch[2] < node.batch_size:
                        batch[2] += 1
                    else:
                        batch[0], batch[1], batch[2] = sent, node.hop(), 1
                    there = sent + batch[1]
                    if group:
                        state[group] = there
                    group = node.queue_group
                    if not group:
                        push((there, order, k, nodes, 8 + RUN, None))
                    elif node.arrive_on_calendar:
                        push((there, order, k, nodes, 8 + ARRIVED, None))
                    elif (free := state[group]) != TAKEN:  # its group's turn is free: it takes it
                        if free > there:
                            held_back += 1
                            there = free
                        state[group] = TAKEN
                        push((there, order, k, nodes, 8 + RUN, None))
                    else:
                        wait_turn(state, group, there, order, k, nodes)
                elif group:  # a REQUEST_RESPONSE FIFO subscriber: one event of the group at a time
                    wait_turn(state, group, at, order, k, nodes)
                else:
                    if node.mode == REQUEST_RESPONSE:
                        first_tried[order, k] = at
                    push((send(at, node), order, k, nodes, 8 + RUN, None))

        while (entry := take()) is not None:
            t, order, k, nodes, n, end = entry
            if order < 0:  # the next order arrives: the Order service's API call publishes its start
                arrived()
                children, entries, published_groups, nodes = graphs[k]
                order = len(start_at)
                published = put_events(t, entries, _by_group(order * groups, published_groups))
                start_at.append(t if published is None else published)
                terminal_at.append(None)
                if published is None:  # the client's request throttled past its retries: refused
                    refused += 1
                    states.append(None)
                    continue
                events += entries
                state = [0] + [0.0, None] * places
                states.append(state)
                caused(published, order, children, nodes, state)
                continue
            step = n & 7
            if step == INGESTED:
                caused(t, order, (k,), nodes, states[order], due=True)
                continue
            node = nodes[k]
            if step == ARRIVED:
                wait_turn(states[order], node.queue_group, t, order, k, nodes)
                continue
            # the handler runs, then publishes
            entries = node.entries
            if end is None:  # asked for now
                start, end = reserve(node.service, t)
                if end is None:  # the account's concurrency is taken: ask again when some of it ends
                    push((start + tie() * TIE_SECONDS, order, k, nodes, n, None))
                    continue
                if start > t and entries:  # it waits for its environment: it publishes once it ran there
                    push((start, order, k, nodes, n, end))
                    continue
            if end > clock:
                clock = end
            state = states[order]
            running = node.running_group
            if entries:
                published = node.published
                published = put_events(end, entries, _by_group(order * groups, published) if published else None)
            else:
                published = end
            if published is None:  # throttled past the producer's retries: the delivery fails
                attempt, mode, retries = n >> 3, node.mode, node.retries
                if mode == REQUEST_RESPONSE:  # the subscriber tries again under its retry policy, its group held
                    policy, delay = node.retry_policy, retry_backoff(attempt, DEFAULT_CHOICES, retry_rng)
                    if attempt - 1 < policy.maximum_retry_attempts and \
                            end + delay - first_tried[order, k] <= policy.maximum_event_age_seconds:
                        failed += 1
                        push((send(end + delay, node), order, k, nodes, n + 8, None))
                        continue
                    del first_tried[order, k]
                    given_up = end
                elif attempt <= len(retries):  # the queue delivers it again (for EVENT: Lambda's retries)
                    failed += 1
                    again = end + retries[attempt - 1] if mode == EVENT else max(end, t + retries[attempt - 1])
                    push((again, order, k, nodes, n + 8, None))
                    continue
                else:  # past maxReceiveCount: the queue moves it to its dead-letter queue once it is visible again
                    given_up = max(end, t + node.visibility) if mode == QUEUE else end
                dead += 1
                if running:  # given up on: the group goes on
                    let_go(state, running, given_up, order, nodes)
            else:
                ok += 1
                if running:
                    if state[running + 1]:
                        let_go(state, running, end, order, nodes)
                    else:  # none waits for the group: it is free from ``end`` (as let_go does)
                        state[running] = end
                if node.mode == REQUEST_RESPONSE:
                    first_tried.pop((order, k), None)
                if entries:
                    events += entries
                    if node.terminal and (terminal_at[order] or 0.0) < published:
                        terminal_at[order] = published
                    caused(published, order, node.children, nodes, state)
            state[0] -= 1
            if not state[0]:  # the order's last delivery is done
                states[order] = None
        self.ok, self.failed, self.dead_lettered, self.events, self.refused = ok, failed, dead, events, refused
        self.clock, self.held_back = clock, held_back


def _by_group(first: int, published: tuple) -> dict[int, tuple[int, int]] | None:
    """A publish's entries by event group, as the bus model takes them: ``{group: (count, bytes)}``, each group named
    by a number, ``first`` + its place among its order's groups."""
    if len(published) == 1:  # (most publishes: one group, no comprehension to call)
        group, count, size = published[0]
        return {first + group: (count, size)}
    return {first + group: (count, size) for group, count, size in published} if published else None


def _calendar(arrivals: list[tuple[float, int]]) -> tuple[Callable, Callable, Callable]:
    """What is due, by time: ``(push, pop, arrived)``. ``push(entry)`` files an entry ``(due, order, step, nodes,
    n, end)``; ``pop()`` takes the earliest (entries due at the same time compare in full), None when nothing is
    left. A heap of a whole run's waiting deliveries would be deep; here they wait in lists, one per
    1/:data:`SLOTS_PER_SECOND` seconds of due time, and the earliest slot's list is sorted when its turn comes
    (what is filed into that slot after is kept in a heap beside it).

    The orders of ``arrivals`` (``(when, graph)``, in time order) are due as ``(when, -1, graph, None, 0, None)``,
    one at a time: ``arrived()`` makes the next one due once one is taken."""
    slots: dict[int, list] = {}
    keys: list[int] = []  # heap of the slots that hold entries
    # the slot being taken: its number, its entries sorted the latest first, and those filed into it since (a heap)
    now, ordered, late = -1, [], []
    heappush, heappop = heapq.heappush, heapq.heappop
    per_second = SLOTS_PER_SECOND
    pending = iter(arrivals)

    def push(entry: tuple) -> None:
        index = int(entry[0] * per_second)
        if index <= now:
            heappush(late, entry)
            return
        slot = slots.get(index)
        if slot is None:
            slots[index] = [entry]
            heappush(keys, index)
        else:
            slot.append(entry)

    def pop() -> tuple | None:
        nonlocal now, ordered
        if late:
            return ordered.pop() if ordered and ordered[-1] < late[0] else heappop(late)
        if not ordered:
            if not keys:
                return None
            now = heappop(keys)
            ordered = slots.pop(now)
            ordered.sort(reverse=True)  # tuples of floats first: the sort compares them without calling __lt__
        return ordered.pop()

    def arrived() -> None:
        following = next(pending, None)
        if following is not None:
            push((following[0], -1, following[1], None, 0, None))

    arrived()
    return push, pop, arrived


SLOTS_PER_SECOND = 200  # entries due in the same 5 ms wait in one list


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
