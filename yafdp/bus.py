"""The local backend: an in-process event bus that behaves like EventBridge, applying a deployment plan.

Delivery is asynchronous, at-least-once and unordered; a failed delivery is retried with exponential
backoff and jitter until the target's retry policy is exhausted, then dead-lettered with EventBridge's
attributes. Every published event is archived and can be replayed. The scheduler runs on a virtual clock
and draws every choice from seeded generators, so a run is reproducible; the times it records are
wall-clock measurements unless a simulated timing model is given.
"""

from __future__ import annotations

import heapq
import json
import random
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable

from yafdp import store
from yafdp.catalog import Catalog
from yafdp.envelope import MAX_ENTRIES_PER_PUT, PublishError, make_envelope
from yafdp.faults import POISON, TRANSIENT, Faults, InjectedFault
from yafdp.marketplace import Marketplace
from yafdp.patterns import RuleSet
from yafdp.plan import DeploymentPlan, RulePlan
from yafdp.publishing import DeliveryError, check_outbox
from yafdp.services import resolve_handler
from yafdp.unit_of_work import UnitOfWork

_V7 = (0x7 << 76) | (0b10 << 62)  # version 7, RFC 9562 variant
_NOT_VERSION_OR_VARIANT = ~((0xF << 76) | (0b11 << 62))
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 256.0
_DELIVERY, _CALL = 0, 1


class MeasuredTiming:
    """No latency model: hops and handlers take no virtual time, and the times recorded are the wall clock's.

    A simulated model (see :mod:`yafdp.latency`) implements the same six methods on virtual time.
    """

    simulated = False
    name = "none"

    def __init__(self, offset: float = 0.0):
        self._origin = time.perf_counter() - offset  # a resumed run continues the first session's clock

    def now(self, virtual: float) -> float:
        """The time to record for virtual time ``virtual``: here, the wall clock now."""
        return time.perf_counter() - self._origin

    def admit(self, at: float, entries: int) -> float:
        """When a PutEvents call of ``entries`` entries made at ``at`` (virtual) is accepted: here, at once."""
        return at

    def hop_delay(self, rule: RulePlan, rng: random.Random) -> float:
        """Virtual seconds from an event's publication to its target's handler being invoked."""
        return 0.0

    def slot(self, service: str, virtual: float) -> float:
        """The earliest virtual time at or after ``virtual`` at which the service can run a handler."""
        return virtual

    def duration(self, service: str, rng: random.Random) -> float:
        """Virtual seconds one handler call of ``service`` takes."""
        return 0.0

    def book(self, service: str, start: float, end: float) -> None:
        """The service runs a handler from ``start`` to ``end`` (virtual): one execution slot is taken."""


@dataclass
class BusStats:
    published: int = 0
    delivered: int = 0
    failed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    refused: int = 0


class LocalBus:
    """An EventBridge-faithful bus in this process, with the services of a plan as its targets.

    Parameters
    ----------
    catalog, plan, world
        what to run: the events and their schemas, the rules and targets, the marketplace data.
    db
        the run database (see :mod:`yafdp.store`); ``durable`` keeps its delivery queue in it, so a killed
        run can be resumed with :meth:`resume`.
    handlers
        replacements for some rules' handlers (by rule name), e.g. a handler that fails in a test.
    seed, session
        every random choice (ids, order of simultaneous deliveries, jitter, faults) derives from them;
        a resumed run is the next session of the same seed.
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world: Marketplace, db: sqlite3.Connection, *,
                 seed: int = 0, session: int = 0, faults: Faults = Faults(), durable: bool = False, timing=None,
                 handlers: dict[str, Callable] | None = None, commit_every: int = 500,
                 epoch: float = 1_767_225_600.0):
        self.catalog, self.plan, self.world, self.db = catalog, plan, world, db
        catalog.compile_schemas()
        self.faults, self.durable, self.commit_every = faults, durable, commit_every
        self.timing = timing or MeasuredTiming()
        self.epoch = epoch  # the wall-clock date the run's clock starts at, for envelope `time`
        self.stats = BusStats()
        self.vt = 0.0
        # A resumed run is a new session: fresh streams, so it never reissues an event id.
        self._ids = random.Random(f"{seed}:{session}:ids")
        self._order = random.Random(f"{seed}:{session}:order")
        self._jitter = random.Random(f"{seed}:{session}:jitter")
        self._fault_rng = random.Random(f"{seed}:{session}:faults")
        self._timing_rng = random.Random(f"{seed}:{session}:timing")
        self._rules = {r.name: r for r in plan.rules}
        self._emits = {r.name: frozenset(r.emits) for r in plan.rules}
        self._handlers = {r.name: resolve_handler(r.service, r.target.handler) for r in plan.rules}
        self._handlers.update(handlers or {})
        self.writer = store.RunWriter(db, durable)
        self._states = {s.name: store.ServiceState(self.writer, s.name) for s in plan.services}
        self._ruleset = RuleSet()
        for rule in plan.rules:
            self._ruleset.add(rule.name, rule.pattern)
        self._heap: list[tuple] = []
        self._seq = 0
        self._published_ids = session << 40  # a resumed session's ids sort after, and never meet, the first's
        self._events: dict[str, list] = {}  # event_id -> [envelope, deliveries still to make]
        self._trace = self.writer.deliveries
        self._since_commit = 0
        self.db.execute("BEGIN")

    # ---------------------------------------------------------------- publishing

    def put_events(self, entries: Iterable[dict], *, sender: str) -> list[str]:
        """Publish ``entries`` (``{"DetailType", "Detail"[, "Source"]}``) as service ``sender``.

        All or nothing: one invalid entry refuses the whole request with :class:`PublishError`.
        """
        entries = list(entries)
        if not 1 <= len(entries) <= MAX_ENTRIES_PER_PUT:
            raise PublishError(f"PutEvents takes 1 to {MAX_ENTRIES_PER_PUT} entries, got {len(entries)}")
        outbox = [(e.get("Source"), e.get("DetailType"), e.get("Detail")) for e in entries]
        service = self.catalog.services.get(sender)
        if service is None:
            raise PublishError(f"unknown sender {sender!r}: not a service of the catalog")
        try:
            prepared = check_outbox(self.catalog, sender, service.may_emit(), outbox)
        except DeliveryError as exc:
            raise PublishError(str(exc)) from None
        ids = self._publish(prepared)
        if self.durable:
            self.commit()
        return ids

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point (e.g. ``place_order``) now, as a client would.

        Its state changes and events are committed together; an exception (such as ``OrderRejectedError``)
        propagates to the caller with nothing stored or published.
        """
        spec = next((p for p in self.catalog.services[service].entrypoints if p.name == entrypoint), None)
        if spec is None:
            raise LookupError(f"service {service!r} has no entry point {entrypoint!r} in the catalog")
        function = resolve_handler(service, entrypoint)
        uow = UnitOfWork(service, self._states[service], self.world, self.now)
        try:
            result = function(payload, uow)
            prepared = check_outbox(self.catalog, service, frozenset(spec.emits), uow.outbox)
        except DeliveryError as exc:
            self.stats.refused += 1
            raise PublishError(str(exc)) from None
        except Exception:
            self.stats.refused += 1
            raise
        self.writer.put_state(service, uow.writes)
        self._publish(prepared)
        if self.durable:
            self.commit()  # a client that got an answer must not lose its order
        return result

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` (e.g. a client's call) when the virtual clock reaches ``at`` seconds."""
        self._push(at, _CALL, action)

    def schedule_all(self, actions: Iterable[tuple[float, Callable[[], object]]]) -> None:
        """Run each ``(at, action)`` when the virtual clock reaches ``at``; ``actions`` must come in time
        order and are taken one at a time, so a workload of any length is never all queued at once."""
        stream = iter(actions)

        def next_action() -> None:
            for at, action in stream:
                def run(action=action) -> None:
                    action()
                    next_action()
                self._push(at, _CALL, run)
                return
        next_action()

    def now(self) -> float:
        """The run's clock now, as it is recorded (wall-clock, or virtual under a latency model)."""
        return self.timing.now(self.vt)

    def _publish(self, prepared: list[tuple], at: float | None = None, replay_name: str | None = None) -> list[str]:
        published_vt = self.vt if at is None else at
        if prepared:  # one PutEvents call, which a simulated account may throttle
            published_vt = self.timing.admit(published_vt, len(prepared))
        published_at = self.timing.now(published_vt)
        ids = []
        for source, detail_type, detail, text in prepared:
            event_id = self._new_event_id()
            envelope = make_envelope(event_id, source, detail_type, detail, self.epoch + published_at)
            self.writer.add_event((event_id, detail.get("order_id"), detail_type, source, published_at, text,
                                   envelope["time"], replay_name))
            self.stats.published += 1
            self._route(envelope, published_vt)
            ids.append(event_id)
        return ids

    def _new_event_id(self) -> str:
        """A UUID in version 7's layout: a 48-bit counter of this bus's events where v7 has milliseconds,
        then random bits. Ids sort in publication order, so the run database's indexes grow at one end."""
        self._published_ids += 1
        bits = (self._published_ids << 80) | (self._ids.getrandbits(80) & _NOT_VERSION_OR_VARIANT) | _V7
        return str(uuid.UUID(int=bits))

    def _route(self, envelope: dict, published_vt: float, again: bool = False, only: frozenset | None = None) -> None:
        """Queue a delivery of the event to every matching rule's target. ``again``: the event may have been
        delivered before (a replay), so its deliveries must check whether they were already processed."""
        event_id = envelope["id"]
        matched = self._ruleset.matching(envelope)
        if only is not None:
            matched = [rule for rule in matched if rule in only]
        self._events.setdefault(event_id, [envelope, 0])
        rng, faults, faulty = self._fault_rng, self._faults, self._faulty
        for rule_name in matched:
            due = published_vt + self.timing.hop_delay(self._rules[rule_name], rng)
            fault = ""
            if faulty:
                if faults.reorder_rate and rng.random() < faults.reorder_rate:
                    due += rng.uniform(0, faults.max_delay_seconds)
                if faults.delay_rate and rng.random() < faults.delay_rate:
                    due += rng.uniform(0, faults.max_delay_seconds)
                if faults.poison_rate and rng.random() < faults.poison_rate:
                    fault = POISON
                elif faults.handler_failure_rate and rng.random() < faults.handler_failure_rate:
                    fault = TRANSIENT
                if faults.duplicate_rate and rng.random() < faults.duplicate_rate:
                    self._enqueue(event_id, rule_name, 1, due + rng.uniform(0, faults.max_delay_seconds), published_vt, "", True)
                    self._enqueue(event_id, rule_name, 1, due, published_vt, fault, True)
                    continue
            self._enqueue(event_id, rule_name, 1, due, published_vt, fault, again)

    def _enqueue(self, event_id: str, rule: str, attempt: int, due: float, published_vt: float, fault: str,
                 again: bool) -> None:
        cached = self._events.get(event_id)
        if cached is not None:
            cached[1] += 1  # the envelope stays in memory until its last delivery is made
        pending_id = self.writer.add_pending(event_id, rule, attempt, due, published_vt, fault)
        self._push(due, _DELIVERY, (pending_id, event_id, rule, attempt, published_vt, fault, again))

    def _push(self, due: float, kind: int, data) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._order.random(), self._seq, kind, data))

    # ---------------------------------------------------------------- delivering

    def run(self, *, until: float | None = None, progress: Callable[[BusStats], None] | None = None) -> BusStats:
        """Deliver until nothing is left to do (or the virtual clock passes ``until``); commit at the end."""
        heap = self._heap
        while heap:
            if until is not None and heap[0][0] > until:
                break
            due, _, _, kind, data = heapq.heappop(heap)
            if due > self.vt:
                self.vt = due
            if kind == _DELIVERY:
                self._deliver(*data)
            else:
                data()  # a scheduled client call; it handles its own refusals
            self._since_commit += 1
            if self._since_commit >= self.commit_every:
                self.commit()
                if progress is not None:
                    progress(self.stats)
        self.commit()
        if progress is not None:
            progress(self.stats)
        return self.stats

    @property
    def faults(self) -> Faults:
        """The faults injected into deliveries routed from now on (assign ``Faults()`` to stop injecting)."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults, self._faulty = faults, faults.any

    @property
    def idle(self) -> bool:
        return not self._heap

    def _deliver(self, pending_id: int, event_id: str, rule_name: str, attempt: int, published_vt: float, fault: str,
                 again: bool) -> None:
        rule = self._rules[rule_name]
        service, timing = rule.service, self.timing
        start = timing.slot(service, self.vt)
        if start > self.vt:  # every execution slot of the service is busy: wait for one
            self._push(start, _DELIVERY, (pending_id, event_id, rule_name, attempt, published_vt, fault, again))
            return
        end = start + timing.duration(service, self._timing_rng)
        timing.book(service, start, end)
        envelope = self._envelope(event_id)
        started = timing.now(start)
        # Only a delivery that may repeat an earlier one (duplicate, replay, redrive, resume) can find it done.
        if again and self.writer.is_processed(rule_name, event_id):
            self.stats.duplicates += 1
            self._finish(pending_id, event_id, rule, attempt, started, end, "duplicate", None)
            return
        uow = UnitOfWork(service, self._states[service], self.world, self.now)
        try:
            self._handlers[rule_name](envelope, uow)
            if fault == POISON:
                raise InjectedFault("PoisonEvent: injected fault, this delivery fails on every attempt")
            if fault == TRANSIENT and attempt == 1:
                raise InjectedFault("TransientError: injected crash after the handler ran, before it committed")
            prepared = check_outbox(self.catalog, service, self._emits[rule_name], uow.outbox) if uow.outbox else ()
        except DeliveryError as exc:
            self._failed(pending_id, event_id, rule, attempt, published_vt, fault, again, started, end, exc.code, exc.message)
            return
        except Exception as exc:  # the handler's own exception: EventBridge sees the target fail
            self._failed(pending_id, event_id, rule, attempt, published_vt, fault, again, started, end,
                         "ERROR_FROM_TARGET", f"{type(exc).__name__}: {exc}")
            return
        self.writer.put_state(service, uow.writes)
        self.writer.processed.add((rule_name, event_id))
        if prepared:
            self._publish(prepared, at=end)
        self.stats.delivered += 1
        self._finish(pending_id, event_id, rule, attempt, started, end, "ok", None)

    def _failed(self, pending_id, event_id, rule: RulePlan, attempt, published_vt, fault, again, started, end,
                code, message) -> None:
        policy = rule.target.retry_policy
        delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
        delay = delay / 2 + self._jitter.uniform(0, delay / 2)  # "equal jitter"
        next_due = end + delay
        if attempt > policy.maximum_retry_attempts:
            exhausted = "MaximumRetryAttempts"
        elif next_due - published_vt > policy.maximum_event_age_seconds:
            exhausted = "MaximumEventAgeInSeconds"
        else:
            self.stats.failed += 1
            self._trace.append((event_id, rule.name, rule.target.id, attempt, started, self.timing.now(end), "failed",
                                f"{code}: {message}"))
            self.writer.retry_pending(pending_id, attempt + 1, next_due)
            self._push(next_due, _DELIVERY, (pending_id, event_id, rule.name, attempt + 1, published_vt, fault, again))
            return
        self.stats.dead_lettered += 1
        self.writer.dead_letters.append(
            (event_id, rule.name, rule.target.id, self.plan.rule_arn(rule.name), self.plan.queue_arn(rule.target.queue),
             code, message, exhausted, attempt - 1, self.timing.now(end)))
        self._finish(pending_id, event_id, rule, attempt, started, end, "dead_lettered", f"{code}: {message}")

    def _finish(self, pending_id, event_id, rule: RulePlan, attempt, started, end, outcome, error) -> None:
        self._trace.append((event_id, rule.name, rule.target.id, attempt, started, self.timing.now(end), outcome, error))
        self.writer.remove_pending(pending_id)
        cached = self._events.get(event_id)
        if cached is not None:
            cached[1] -= 1
            if cached[1] <= 0:
                del self._events[event_id]

    def _envelope(self, event_id: str) -> dict:
        cached = self._events.get(event_id)
        if cached is not None:
            return cached[0]
        row = self.writer.event(event_id)
        envelope = make_envelope(event_id, row[0], row[1], json.loads(row[2]), self.epoch + row[3])
        self._events[event_id] = [envelope, 1]
        return envelope

    def commit(self) -> None:
        """Write everything buffered and commit: what a reader of ``run.db`` (or ``bus.db``) then sees."""
        self.writer.flush()
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")
        self._since_commit = 0

    # ---------------------------------------------------------------- archive, DLQ, resume

    def replay(self, start: float, end: float, name: str = "replay", rules: Iterable[str] | None = None) -> int:
        """Re-deliver every archived event published between ``start`` and ``end`` (recorded times) to the
        rules that match it now (or only to ``rules``, like a replay's ``FilterArns``), as an EventBridge
        archive replay does. Replayed events keep their id and carry ``replay-name``; idempotent targets
        record them as duplicates. Returns how many events were replayed."""
        only = None if rules is None else frozenset(rules)
        self.writer.flush()
        rows = self.db.execute("SELECT event_id, source, detail_type, detail, published_at FROM events"
                               " WHERE published_at BETWEEN ? AND ? AND replay_name IS NULL ORDER BY seq",
                               (start, end)).fetchall()
        for event_id, source, detail_type, detail, published_at in rows:
            envelope = make_envelope(event_id, source, detail_type, json.loads(detail), self.epoch + published_at)
            envelope["replay-name"] = name
            self._events.pop(event_id, None)
            self._route(envelope, self.vt, again=True, only=only)
        return len(rows)

    def redrive(self, ids: Iterable[int] | None = None) -> int:
        """Send dead-lettered deliveries back to their targets (after the cause was fixed). Returns how many."""
        self.writer.flush()
        query = "SELECT id, event_id, rule FROM dead_letters WHERE redriven_at IS NULL"
        rows = self.db.execute(query).fetchall()
        wanted = None if ids is None else set(ids)
        count = 0
        for dl_id, event_id, rule in rows:
            if wanted is not None and dl_id not in wanted:
                continue
            self.db.execute("UPDATE dead_letters SET redriven_at = ? WHERE id = ?", (self.now(), dl_id))
            self._enqueue(event_id, rule, 1, self.vt, self.vt, "", True)
            count += 1
        self.commit()
        return count

    def close(self) -> None:
        """Nothing to release: the bus lives in this process (a deployed bus tears its deployment down)."""

    def resume(self) -> int:
        """Reload the durable delivery queue left by a run that was killed. Returns how many deliveries."""
        rows = self.db.execute("SELECT id, event_id, rule, attempt, due, published, fault FROM pending").fetchall()
        for pending_id, event_id, rule, attempt, due, published, fault in rows:
            self._push(due, _DELIVERY, (pending_id, event_id, rule, attempt, published, fault, True))
        self.vt = min((row[4] for row in rows), default=self.vt)
        return len(rows)
