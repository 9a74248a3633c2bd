"""What the handlers did for each order, without when: each order's causal graph, recorded from a run once and
replayed through the timing model as often as wanted (:mod:`yafdp.simulation.replay`).

A graph's nodes are the steps of one order's saga, each with the steps it causes:

- ``DELIVERY`` (the choreography): a rule's target gets an event and its handler runs on a function of
  ``service``, then publishes ``entries`` events in one PutEvents call; each child is a delivery of one of them.
- ``TRANSITION`` (the orchestration): the state machine enters a state (a Standard workflow's transitions are
  throttled).
- ``TASK``: a Task invokes ``service``'s function, which publishes ``entries`` events (on no bus).
- ``JOIN``: a Parallel state's ``parents`` branches have all ended.
- ``START``: an execution starts (StartExecution is throttled); its children are the first state entered.

A node is ``(kind, service, rule, entries, children, terminal, parents, group, published)``: ``children`` the
indexes of the nodes it causes, ``terminal`` whether it publishes one of the saga's terminal events (the end of the
order's saga latency). On a Custom Event Bus, whose limits and order are per event group, ``group`` is the event
group of the event a delivery receives and ``published`` how the events it publishes fall into groups,
``((group, entries, bytes), ...)``; a group is named by its place among the groups of the order's events (0 the
first seen, -1 none: an event without ``EventGroupId``), and bytes are an entry's size as the bus counts it
(:func:`yafdp.custom_event_bus.bus.entry_size`) rounded to :data:`SIZE_STEP` bytes. On the Classic bus ``group`` is
-1 and ``published`` empty. Orders whose sagas took the same steps share one graph.

The choreography's graphs come from a finished ``run.db`` (:func:`record_choreography`), on either kind of bus:
``events.published_by`` names the delivery that published each event, and the trace lists every delivery. Only
stored events are in a graph: a publish the Custom Event Bus answered ``DEDUPLICATED`` stored nothing and
delivered nothing (UG "Ordering and deduplication",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html), so it has no node. The orchestration's come from
the local Step Functions runner as it runs (:class:`ExecutionRecorder`), which knows the states it entered.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from yafdp.custom_event_bus.bus import entry_size
from yafdp.errors import RefusedError
from yafdp.plan import DeploymentPlan
from yafdp.runtime import rundb

DELIVERY, TRANSITION, TASK, JOIN, START = 0, 1, 2, 3, 4
KINDS = ("delivery", "transition", "task", "join", "start")
NO_GROUP = -1  # the event has no EventGroupId (and every event on the Classic bus)
# An entry's bytes are kept to the nearest 64, so that orders whose events differ by a few characters share a graph:
# at most 32 bytes off, 0.03 of the 1 + KB an event counts toward its group's limit.
SIZE_STEP = 64

Node = tuple  # (kind, service, rule, entries, children, terminal, parents, group, published)


@dataclass(frozen=True)
class OrderGraph:
    """One saga's steps: ``nodes`` (see the module), ``roots`` the nodes its start causes, ``entries`` how many
    events the Order service's API call published to start it (one PutEvents call), and ``published`` how they
    fall into event groups (a node's ``published``; empty on the Classic bus)."""

    roots: tuple[int, ...]
    nodes: tuple[Node, ...]
    entries: int = 1
    published: tuple = ()

    @property
    def handler_runs(self) -> int:
        """Handler calls the saga makes: its deliveries (choreography) or Tasks (orchestration)."""
        return sum(1 for node in self.nodes if node[0] in (DELIVERY, TASK))


@dataclass(frozen=True)
class RecordedOrder:
    """An order of the recorded run: its id, when its request arrived (run seconds), its graph (an index into
    :attr:`Recording.graphs`) and the status it ended with."""

    order_id: str
    due: float
    graph: int
    status: str


@dataclass
class Recording:
    """The causal graphs of a run's orders, for :func:`yafdp.simulation.replay.replay`.

    ``style`` and ``workflow`` say what ran; ``plan`` is the deployment plan the run applied (rules, targets, retry
    policies, queues); ``left_out`` counts the requests of the run's workload that are not recorded: refused (an
    order never placed has no saga) or placed but not finished (a delivery that never succeeded); ``source``
    names where the graphs come from.
    """

    style: str
    plan: DeploymentPlan
    graphs: list[OrderGraph]
    orders: list[RecordedOrder]
    workflow: str | None = None
    left_out: int = 0
    source: str = ""
    facts: dict = field(default_factory=dict)

    def outcomes(self) -> dict[str, int]:
        """How many recorded orders ended with each status."""
        counts: dict[str, int] = {}
        for order in self.orders:
            counts[order.status] = counts.get(order.status, 0) + 1
        return dict(sorted(counts.items()))


class _Interner:
    """Gives each distinct graph one index, so that orders with the same steps share it."""

    def __init__(self):
        self.graphs: list[OrderGraph] = []
        self._index: dict[OrderGraph, int] = {}

    def __call__(self, graph: OrderGraph) -> int:
        index = self._index.get(graph)
        if index is None:
            index = self._index[graph] = len(self.graphs)
            self.graphs.append(graph)
        return index


def record_choreography(db: sqlite3.Connection, plan: DeploymentPlan, terminal_events: tuple[str, ...], tracker,
                        source: str = "") -> Recording:
    """The causal graph of every order of a finished choreography run in ``db`` (a ``run.db``), by the plan it
    applied (its rules' names, or on a Custom Event Bus its subscribers', as the run recorded them);
    ``terminal_events``: the events that end a saga (the catalog's ``saga.terminal_events``); ``tracker``: the
    catalog's ``saga.tracker``, whose state holds each saga's status.

    Raises :class:`~yafdp.errors.RefusedError` for a plan for another kind of bus than the run's, an orchestrated
    run, a run with injected infrastructure faults (duplicates, delays, crashes, poison messages, publish retries:
    their timing would be lost, not replayed) and for a delivery of a rule the plan does not have.
    """
    info = rundb.get_info(db)
    ran_on = info.get("bus") or "classic"
    if ran_on != plan.bus_kind:
        raise RefusedError(f"{source or 'the run'} ran on a {_BUS_NAMES.get(ran_on, ran_on)}, but the plan is for a "
                           f"{_BUS_NAMES.get(plan.bus_kind, plan.bus_kind)}")
    if info.get("style", "choreography") != "choreography":
        raise RefusedError(f"{source or 'the run'} is an orchestrated run; its graphs are recorded as it runs "
                           "(yafdp.runs.replaying.record)")
    faults = {k: v for k, v in (info.get("faults") or {}).items() if k.endswith("_rate") and v}
    if faults:
        raise RefusedError(f"{source or 'the run'} injected faults ({', '.join(sorted(faults))}); the replay needs a "
                           "run without them: their timing would be lost, not replayed")
    rules = {r.name: r for r in plan.routes}
    terminal = frozenset(terminal_events)
    started: dict[str, list[str]] = {}  # order -> the events its API call published
    published: dict[str, list[str]] = {}  # "rule#event" -> the events that delivery published
    types: dict[str, str] = {}
    orders_of: dict[str, str] = {}
    grouped: dict[str, tuple[str | None, int]] = {}  # event -> (its EventGroupId, its bytes), on a Custom Event Bus
    custom = plan.bus_kind == "custom"
    for event_id, order_id, detail_type, published_by, source_name, detail, group in db.execute(
            "SELECT event_id, order_id, detail_type, published_by, source, detail, event_group_id FROM events"
            " WHERE replay_name IS NULL ORDER BY seq"):
        types[event_id] = detail_type
        orders_of[event_id] = order_id
        if custom:
            grouped[event_id] = (group, _entry_bytes(source_name, detail_type, detail, group))
        if published_by is None:
            started.setdefault(order_id, []).append(event_id)
        else:
            published.setdefault(published_by, []).append(event_id)
    delivered: dict[str, list[str]] = {}  # event -> the rules whose handler succeeded on it
    incomplete: set[str] = set()
    for event_id, rule, ok in db.execute("SELECT event_id, rule, MAX(outcome = 'ok') FROM deliveries"
                                         " GROUP BY event_id, rule ORDER BY event_id, rule"):
        if rule not in rules:
            raise RefusedError(f"{source or 'the run'} delivered to rule {rule!r}, which the plan does not have")
        if ok:
            delivered.setdefault(event_id, []).append(rule)
        else:
            incomplete.add(orders_of.get(event_id))
    statuses = dict(db.execute(*rundb.saga_statuses(tracker)))
    due = dict(db.execute("SELECT order_id, MIN(due) FROM requests WHERE order_id IS NOT NULL GROUP BY order_id"))

    def group_of(event_id: str, local: dict) -> int:
        group = grouped[event_id][0] if custom else None
        return NO_GROUP if group is None else local.setdefault(group, len(local))

    def publishes(event_ids: list[str], local: dict) -> tuple:
        if not custom:
            return ()
        by_group: dict[int, list[int]] = {}
        for event_id in event_ids:
            group = group_of(event_id, local)
            if group != NO_GROUP:
                counted = by_group.setdefault(group, [0, 0])
                counted[0] += 1
                counted[1] += grouped[event_id][1]
        return tuple((group, count, size) for group, (count, size) in sorted(by_group.items()))

    def deliveries(event_ids: list[str], nodes: list, local: dict) -> list[int]:
        made = []
        for event_id in event_ids:
            group = group_of(event_id, local)
            for rule in delivered.get(event_id, ()):
                index = len(nodes)
                nodes.append(None)
                out = published.get(f"{rule}#{event_id}", [])
                shape = publishes(out, local)
                children = deliveries(out, nodes, local)
                nodes[index] = (DELIVERY, rules[rule].service, rule, len(out), tuple(children),
                                any(types[e] in terminal for e in out), 1, group, shape)
                made.append(index)
        return made

    intern, recorded, left_out = _Interner(), [], 0
    for order_id, roots in started.items():
        if order_id in incomplete or order_id not in statuses:
            left_out += 1
            continue
        nodes: list = []
        local: dict = {}  # the order's event groups, numbered as first seen
        shape = publishes(roots, local)
        top = deliveries(roots, nodes, local)
        graph = intern(OrderGraph(tuple(top), tuple(nodes), len(roots), shape))
        recorded.append(RecordedOrder(order_id, due.get(order_id, 0.0), graph, statuses[order_id]))
    recorded.sort(key=lambda order: order.due)
    requested = db.execute("SELECT COUNT(*) FROM requests WHERE same_as IS NULL").fetchone()[0]
    return Recording("choreography", plan, intern.graphs, recorded, left_out=max(left_out, requested - len(recorded)),
                     source=source)


_BUS_NAMES = {"classic": "Custom Event Bus - Classic (rules and targets)", "custom": "Custom Event Bus (subscribers)"}


def _entry_bytes(source: str, detail_type: str, detail: str, group: str | None) -> int:
    """An event's size as the Custom Event Bus counts it toward its group's limit
    (:func:`~yafdp.custom_event_bus.bus.entry_size`, as the full simulation sizes a request's entries), from what
    ``run.db`` keeps of it, to the nearest :data:`SIZE_STEP` bytes. ``run.db`` does not keep whether the producer
    set a ``Time`` (14 bytes) or ``Resources``; no producer of this project sets either."""
    entry = {"Source": source, "DetailType": detail_type, "Detail": detail,
             "SystemMetadata": {} if group is None else {"EventGroupId": group}}
    return round(entry_size(entry) / SIZE_STEP) * SIZE_STEP


class ExecutionRecorder:
    """What the local Step Functions runner tells as it runs (when it has one): each execution's states entered,
    Tasks run and Parallel branches joined, each step with the step that caused it. :meth:`recording` turns
    them into :class:`OrderGraph` s.

    A step is named by an id :meth:`start`, :meth:`transition`, :meth:`task` and :meth:`join` return; an
    execution is named by its start's id. ``terminal_events``: the events that end a saga (the catalog's
    ``saga.terminal_events``).
    """

    def __init__(self, terminal_events: tuple[str, ...]):
        self._steps: list[list] = []  # id -> [execution, kind, service, rule, entries, terminal, parents, children]
        self._executions: dict[int, str] = {}  # start id -> order id
        self._terminal = frozenset(terminal_events)

    def _step(self, execution: int, kind: int, service: str = "", rule: str = "", entries: int = 0,
              terminal: bool = False, parents: tuple[int, ...] = ()) -> int:
        step = len(self._steps)
        self._steps.append([execution, kind, service, rule, entries, terminal, len(parents) or 1, []])
        for parent in parents:
            self._steps[parent][7].append(step)
        return step

    def start(self, order_id: str) -> int:
        """An execution started for ``order_id``'s start event; returns its id."""
        step = self._step(-1, START)
        self._steps[step][0] = step
        self._executions[step] = order_id
        return step

    def transition(self, after: int) -> int:
        """A state entered after step ``after``."""
        return self._step(self._steps[after][0], TRANSITION, parents=(after,))

    def task(self, after: int, service: str, rule: str, published: list[str]) -> int:
        """A Task after step ``after`` ran ``rule``'s handler on ``service``'s function, which published events
        of the detail-types ``published``."""
        return self._step(self._steps[after][0], TASK, service, rule, len(published),
                          any(t in self._terminal for t in published), parents=(after,))

    def join(self, branches: list[int]) -> int:
        """A Parallel state whose branches ended with the steps ``branches`` goes on."""
        return self._step(self._steps[branches[0]][0], JOIN, parents=tuple(branches))

    def recording(self, plan: DeploymentPlan, workflow: str, orders: dict[str, tuple[float, str]],
                  source: str = "", requested: int = 0) -> Recording:
        """The graphs of the executions of ``orders`` (order id -> (when its request arrived, its final
        status)); an execution of an order not in ``orders`` is left out, and so are the ``requested`` requests'
        that have none."""
        members: dict[int, list[int]] = {}
        for step, entry in enumerate(self._steps):
            members.setdefault(entry[0], []).append(step)
        intern, recorded, left_out = _Interner(), [], 0
        for start, order_id in self._executions.items():
            if order_id not in orders:
                left_out += 1
                continue
            steps = members[start]
            local = {step: i for i, step in enumerate(steps)}
            nodes = []
            for step in steps:
                _, kind, service, rule, entries, terminal, parents, children = self._steps[step]
                nodes.append((kind, service, rule, entries, tuple(local[c] for c in children), terminal,
                              parents, NO_GROUP, ()))
            # The start (node 0) is the execution starting: it is the replay's own first step.
            graph = intern(OrderGraph(nodes[0][4], tuple(nodes), 1))
            due, status = orders[order_id]
            recorded.append(RecordedOrder(order_id, due, graph, status))
        recorded.sort(key=lambda order: order.due)
        left_out = max(left_out, requested - len(recorded))
        return Recording("orchestration", plan, intern.graphs, recorded, workflow=workflow, left_out=left_out,
                         source=source)
