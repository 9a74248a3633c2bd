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
    state_writes: int = 0  # items handlers wrote (for the cost model's database writes)


class LocalBus:
    """An EventBridge-faithful bus in this process, with the services of a plan as its targets.

    Parameters
    ----------
    catalog, plan, world
        what to run: the events and their schemas, the rules and targets, the marketplace data.
    db
        the run database (see :mod:`yafdp.store`); ``durable`` keeps its delivery queue in it, so a killed
        run can be resumed with :meth:`resume`.
    seed, session
        every random choice (ids, order of simultaneous deliveries, jitter, faults) derives from them;
        a resumed run is the next session of the same seed.
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world: Marketplace, db: sqlite3.Connection, *,
                 seed: int = 0, session: int = 0, faults: Faults = Faults(), durable: bool = False, timing=None,
                 commit_every: int = 500, epoch: float = 1_767_225_600.0):
        self.catalog, self.plan, self.world, self.db = catalog, plan, world, db
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
        self._handlers = {r.name: resolve_handler(r.service, r.target.handler) for r in plan.rules}
        self._services = {s.name: s for s in plan.services}
        self._states = {s.name: store.ServiceState(db, s.name) for s in plan.services}
        self._ruleset = RuleSet()
        for rule in plan.rules:
            self._ruleset.add(rule.name, rule.pattern)
        self._heap: list[tuple] = []
        self._seq = 0
        self._next_pending = 0
        self._events: dict[str, list] = {}  # event_id -> [envelope, deliveries still to make]
        self._trace: list[tuple] = []
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
        self._maybe_commit(force=self.durable)
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
        uow = UnitOfWork(service, self._states[service], self.world, self._now)
        try:
            result = function(payload, uow)
            prepared = check_outbox(self.catalog, service, frozenset(spec.emits), uow.outbox)
        except DeliveryError as exc:
            self.stats.refused += 1
            raise PublishError(str(exc)) from None
        except Exception:
            self.stats.refused += 1
            raise
        self._apply_writes(service, uow.writes)
        self._publish(prepared)
        self._maybe_commit(force=self.durable)  # a client that got an answer must not lose its order
        return result

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` (e.g. a client's call) when the virtual clock reaches ``at`` seconds."""
        self._push(at, _CALL, action)

    def _now(self) -> float:
        return self.timing.now(self.vt)

    def _publish(self, prepared: list[tuple], at: float | None = None, replay_name: str | None = None) -> list[str]:
        published_vt = self.vt if at is None else at
        if prepared:  # one PutEvents call, which a simulated account may throttle
            published_vt = self.timing.admit(published_vt, len(prepared))
        published_at = self.timing.now(published_vt)
        ids = []
        for source, detail_type, detail, text in prepared:
            event_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
            envelope = make_envelope(event_id, source, detail_type, detail, self.epoch + published_at)
            self.db.execute(
                "INSERT INTO events (event_id, order_id, detail_type, source, published_at, detail, time, replay_name)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event_id, detail.get("order_id"), detail_type, source, published_at, text, envelope["time"], replay_name))
            self.stats.published += 1
            self._route(envelope, published_vt)
            ids.append(event_id)
        return ids

    def _route(self, envelope: dict, published_vt: float, rules: Iterable[str] | None = None) -> None:
        event_id = envelope["id"]
        matched = self._ruleset.matching(envelope) if rules is None else list(rules)
        self._events.setdefault(event_id, [envelope, 0])
        rng, faults = self._fault_rng, self.faults
        for rule_name in matched:
            due = published_vt + self.timing.hop_delay(self._rules[rule_name], rng)
            fault = ""
            if faults.any:
                if faults.reorder_rate and rng.random() < faults.reorder_rate:
                    due += rng.uniform(0, faults.max_delay_seconds)
                if faults.delay_rate and rng.random() < faults.delay_rate:
                    due += rng.uniform(0, faults.max_delay_seconds)
                if faults.poison_rate and rng.random() < faults.poison_rate:
                    fault = POISON
                elif faults.handler_failure_rate and rng.random() < faults.handler_failure_rate:
                    fault = TRANSIENT
                if faults.duplicate_rate and rng.random() < faults.duplicate_rate:
                    self._enqueue(event_id, rule_name, 1, due + rng.uniform(0, faults.max_delay_seconds), published_vt, "")
            self._enqueue(event_id, rule_name, 1, due, published_vt, fault)

    def _enqueue(self, event_id: str, rule: str, attempt: int, due: float, published_vt: float, fault: str) -> None:
        cached = self._events.get(event_id)
        if cached is not None:
            cached[1] += 1  # the envelope stays in memory until its last delivery is made
        if self.durable:
            pending_id = self.db.execute(
                "INSERT INTO pending (event_id, rule, attempt, due, published, fault) VALUES (?, ?, ?, ?, ?, ?)",
                (event_id, rule, attempt, due, published_vt, fault)).lastrowid
        else:
            self._next_pending += 1
            pending_id = self._next_pending
        self._push(due, _DELIVERY, (pending_id, event_id, rule, attempt, published_vt, fault))

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
                self._maybe_commit(force=True)
                if progress is not None:
                    progress(self.stats)
        self._maybe_commit(force=True)
        if progress is not None:
            progress(self.stats)
        return self.stats

    @property
    def idle(self) -> bool:
        return not self._heap

    def _deliver(self, pending_id: int, event_id: str, rule_name: str, attempt: int, published_vt: float, fault: str) -> None:
        rule = self._rules[rule_name]
        service, timing = rule.service, self.timing
        start = timing.slot(service, self.vt)
        if start > self.vt:  # every execution slot of the service is busy: wait for one
            self._push(start, _DELIVERY, (pending_id, event_id, rule_name, attempt, published_vt, fault))
            return
        end = start + timing.duration(service, self._timing_rng)
        timing.book(service, start, end)
        envelope = self._envelope(event_id)
        started = timing.now(start)
        if self.db.execute("SELECT 1 FROM processed WHERE rule = ? AND event_id = ?", (rule_name, event_id)).fetchone():
            self.stats.duplicates += 1
            self._finish(pending_id, event_id, rule, attempt, started, end, "duplicate", None)
            return
        uow = UnitOfWork(service, self._states[service], self.world, self._now)
        try:
            self._handlers[rule_name](envelope, uow)
            if fault == POISON:
                raise InjectedFault("PoisonEvent: injected fault, this delivery fails on every attempt")
            if fault == TRANSIENT and attempt == 1:
                raise InjectedFault("TransientError: injected crash after the handler ran, before it committed")
            prepared = check_outbox(self.catalog, service, frozenset(rule.emits), uow.outbox)
        except DeliveryError as exc:
            self._failed(pending_id, event_id, rule, attempt, published_vt, fault, started, end, exc.code, exc.message)
            return
        except Exception as exc:  # the handler's own exception: EventBridge sees the target fail
            self._failed(pending_id, event_id, rule, attempt, published_vt, fault, started, end,
                         "ERROR_FROM_TARGET", f"{type(exc).__name__}: {exc}")
            return
        self._apply_writes(service, uow.writes)
        self.db.execute("INSERT INTO processed (rule, event_id) VALUES (?, ?)", (rule_name, event_id))
        self._publish(prepared, at=end)
        self.stats.delivered += 1
        self._finish(pending_id, event_id, rule, attempt, started, end, "ok", None)

    def _apply_writes(self, service: str, writes: dict) -> None:
        if writes:
            self.stats.state_writes += len(writes)
            self.db.executemany("INSERT OR REPLACE INTO state (service, kind, key, item) VALUES (?, ?, ?, ?)",
                                [(service, kind, key, json.dumps(item)) for (kind, key), item in writes.items()])

    def _failed(self, pending_id, event_id, rule: RulePlan, attempt, published_vt, fault, started, end, code, message) -> None:
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
            if self.durable:
                self.db.execute("UPDATE pending SET attempt = ?, due = ? WHERE id = ?", (attempt + 1, next_due, pending_id))
            self._push(next_due, _DELIVERY, (pending_id, event_id, rule.name, attempt + 1, published_vt, fault))
            return
        self.stats.dead_lettered += 1
        self.db.execute(
            "INSERT INTO dead_letters (event_id, rule, target, rule_arn, target_arn, error_code, error_message,"
            " exhausted_retry_condition, retry_attempts, dead_lettered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, rule.name, rule.target.id, self.plan.rule_arn(rule.name), self.plan.queue_arn(rule.target.queue),
             code, message, exhausted, attempt - 1, self.timing.now(end)))
        self._finish(pending_id, event_id, rule, attempt, started, end, "dead_lettered", f"{code}: {message}")

    def _finish(self, pending_id, event_id, rule: RulePlan, attempt, started, end, outcome, error) -> None:
        self._trace.append((event_id, rule.name, rule.target.id, attempt, started, self.timing.now(end), outcome, error))
        if self.durable:
            self.db.execute("DELETE FROM pending WHERE id = ?", (pending_id,))
        cached = self._events.get(event_id)
        if cached is not None:
            cached[1] -= 1
            if cached[1] <= 0:
                del self._events[event_id]

    def _envelope(self, event_id: str) -> dict:
        cached = self._events.get(event_id)
        if cached is not None:
            return cached[0]
        row = self.db.execute("SELECT source, detail_type, detail, published_at FROM events WHERE event_id = ?",
                              (event_id,)).fetchone()
        envelope = make_envelope(event_id, row[0], row[1], json.loads(row[2]), self.epoch + row[3])
        self._events[event_id] = [envelope, 1]
        return envelope

    def _maybe_commit(self, force: bool = False) -> None:
        if not force:
            return
        if self._trace:
            self.db.executemany("INSERT INTO deliveries (event_id, rule, target, attempt, delivered_at, finished_at,"
                                " outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._trace)
            self._trace.clear()
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")
        self._since_commit = 0

    # ---------------------------------------------------------------- archive, DLQ, resume

    def replay(self, start: float, end: float, name: str = "replay") -> int:
        """Re-deliver every archived event published between ``start`` and ``end`` (recorded times) to the
        rules that match it now, as an EventBridge archive replay does. Returns how many events."""
        rows = self.db.execute("SELECT event_id, source, detail_type, detail, published_at FROM events"
                               " WHERE published_at BETWEEN ? AND ? AND replay_name IS NULL ORDER BY seq",
                               (start, end)).fetchall()
        for event_id, source, detail_type, detail, published_at in rows:
            envelope = make_envelope(event_id, source, detail_type, json.loads(detail), self.epoch + published_at)
            envelope["replay-name"] = name
            self._events.pop(event_id, None)
            self._route(envelope, self.vt)
        return len(rows)

    def redrive(self, ids: Iterable[int] | None = None) -> int:
        """Send dead-lettered deliveries back to their targets (after the cause was fixed). Returns how many."""
        query = "SELECT id, event_id, rule FROM dead_letters WHERE redriven_at IS NULL"
        rows = self.db.execute(query).fetchall()
        wanted = None if ids is None else set(ids)
        count = 0
        for dl_id, event_id, rule in rows:
            if wanted is not None and dl_id not in wanted:
                continue
            self.db.execute("UPDATE dead_letters SET redriven_at = ? WHERE id = ?", (self._now(), dl_id))
            self._enqueue(event_id, rule, 1, self.vt, self.vt, "")
            count += 1
        self._maybe_commit(force=True)
        return count

    def resume(self) -> int:
        """Reload the durable delivery queue left by a run that was killed. Returns how many deliveries."""
        rows = self.db.execute("SELECT id, event_id, rule, attempt, due, published, fault FROM pending").fetchall()
        for pending_id, event_id, rule, attempt, due, published, fault in rows:
            self._push(due, _DELIVERY, (pending_id, event_id, rule, attempt, published, fault))
        self.vt = min((row[4] for row in rows), default=self.vt)
        return len(rows)
