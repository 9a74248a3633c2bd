"""The local backend: an in-process event bus that behaves like EventBridge, applying a deployment plan.

Delivery is asynchronous, at-least-once and unordered; a failed delivery is retried with exponential
backoff and jitter until the target's retry policy is exhausted, then dead-lettered with EventBridge's
attributes. Every published event is archived and can be replayed. The scheduler runs on a virtual clock
and draws every choice from seeded generators, so a run is reproducible; the times it records are
wall-clock measurements unless a simulated timing model is given.
"""

from __future__ import annotations

import json
import random
import sqlite3
from typing import Callable, Iterable

from yafdp.catalog import Catalog
from yafdp.catalog.marketplace import Marketplace
from yafdp.patterns import RuleSet
from yafdp.plan import DeploymentPlan, RulePlan
from yafdp.runtime.envelope import make_envelope
from yafdp.runtime.faults import NO_FAULT, Faults, decide, injected_failure
from yafdp.runtime.interfaces import BusStats, TimingModel
from yafdp.runtime.publishing import DeliveryError, check_outbox, prepare_put_events
from yafdp.runtime.unit_of_work import Envelope
from yafdp.services import resolve_handler

from yafdp.backends.local.run_writer import RunWriter
from yafdp.backends.local.scheduler import Scheduler
from yafdp.backends.local.services import LocalServices
from yafdp.backends.local.timing import MeasuredTiming

RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 256.0


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
                 seed: int = 0, session: int = 0, faults: Faults = Faults(), durable: bool = False,
                 timing: TimingModel | None = None, handlers: dict[str, Callable] | None = None,
                 commit_every: int = 500, epoch: float = 1_767_225_600.0):
        self.catalog, self.plan, self.world, self.db = catalog, plan, world, db
        catalog.compile_schemas()
        self.seed, self.durable, self.commit_every = seed, durable, commit_every
        self.faults = faults
        self.timing = timing or MeasuredTiming()
        self.writer = RunWriter(db, durable)
        self.scheduler = Scheduler(random.Random(f"{seed}:{session}:order"))
        self.services = LocalServices(catalog, plan, world, self.writer, self.timing, self.scheduler, seed=seed,
                                      session=session, epoch=epoch)
        self.stats = self.services.stats
        self._jitter = random.Random(f"{seed}:{session}:jitter")
        self._hop_rng = random.Random(f"{seed}:{session}:faults")
        self._timing_rng = random.Random(f"{seed}:{session}:timing")
        self._rules = {r.name: r for r in plan.rules}
        self._emits = {r.name: frozenset(r.emits) for r in plan.rules}
        self._handlers = {r.name: resolve_handler(r.service, r.target.handler) for r in plan.rules}
        self._handlers.update(handlers or {})
        self._ruleset = RuleSet()
        for rule in plan.rules:
            self._ruleset.add(rule.name, rule.pattern)
        self._events: dict[str, list] = {}  # event_id -> [envelope, deliveries still to make]
        self._trace = self.writer.deliveries
        self.db.execute("BEGIN")

    # ---------------------------------------------------------------- publishing

    def put_events(self, entries: Iterable[dict], *, sender: str) -> list[str]:
        """Publish ``entries`` (``{"DetailType", "Detail"[, "Source"]}``) as service ``sender``; returns the ids.

        All or nothing: one invalid entry refuses the whole request with
        :class:`~yafdp.runtime.envelope.PublishError`.
        """
        ids = self.services.record(prepare_put_events(self.catalog, sender, entries), self.vt, on_event=self._route)
        if self.durable:
            self.commit()
        return ids

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point (e.g. ``place_order``) now, as a client would.

        Its state changes and events are committed together; an exception (such as ``OrderRejectedError``)
        propagates to the caller with nothing stored or published.
        """
        result, uow, prepared = self.services.call(service, entrypoint, payload)
        self.services.apply(service, uow)
        self.services.record(prepared, self.vt, on_event=self._route)
        if self.durable:
            self.commit()  # a client that got an answer must not lose its order
        return result

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` (e.g. a client's call) when the virtual clock reaches ``at`` seconds."""
        self.scheduler.schedule(at, action)

    def schedule_all(self, actions: Iterable[tuple[float, Callable[[], object]]]) -> None:
        """Run each ``(at, action)`` when the virtual clock reaches ``at``, taken one at a time in time order."""
        self.scheduler.schedule_all(actions)

    def now(self) -> float:
        """The run's clock now, as it is recorded (wall-clock, or virtual under a latency model)."""
        return self.services.now()

    @property
    def vt(self) -> float:
        """The virtual clock (seconds since the run started)."""
        return self.scheduler.vt

    @property
    def idle(self) -> bool:
        """Whether nothing is left to deliver or run."""
        return self.scheduler.idle

    def _route(self, envelope: Envelope, published_vt: float, again: bool = False,
               only: frozenset | None = None) -> None:
        """Queue a delivery of the event to every matching rule's target. ``again``: the event may have been
        delivered before (a replay), so its deliveries must check whether they were already processed."""
        event_id = envelope["id"]
        matched = self._ruleset.matching(envelope)
        if only is not None:
            matched = [rule for rule in matched if rule in only]
        self._events.setdefault(event_id, [envelope, 0])
        rng, faults, faulty, seed = self._hop_rng, self.faults, self.faults.any, self.seed
        for rule_name in matched:
            due = published_vt + self.timing.hop_delay(self._rules[rule_name], rng)
            decision = decide(faults, seed, event_id, self._rules[rule_name].subscription) if faulty else NO_FAULT
            due += decision.late_seconds
            if decision.duplicate:  # at-least-once: the same delivery made twice, the copy a little later
                self._enqueue(event_id, rule_name, 1, due + decision.duplicate_late_seconds, published_vt,
                              decision.fault, True)
                self._enqueue(event_id, rule_name, 1, due, published_vt, decision.fault, True)
            else:
                self._enqueue(event_id, rule_name, 1, due, published_vt, decision.fault, again)

    def _enqueue(self, event_id: str, rule: str, attempt: int, due: float, published_vt: float, fault: str,
                 again: bool) -> None:
        cached = self._events.get(event_id)
        if cached is not None:
            cached[1] += 1  # the envelope stays in memory until its last delivery is made
        pending_id = self.writer.add_pending(event_id, rule, attempt, due, published_vt, fault)
        self.scheduler.push(due, self._deliver, (pending_id, event_id, rule, attempt, published_vt, fault, again))

    # ---------------------------------------------------------------- delivering

    def run(self, *, until: float | None = None, progress: Callable[[BusStats], None] | None = None) -> BusStats:
        """Deliver until nothing is left to do (or the virtual clock passes ``until``); commit at the end."""
        def tick() -> None:
            self.commit()
            if progress is not None:
                progress(self.stats)
        self.scheduler.run(until, self.commit_every, tick)
        tick()
        return self.stats

    def _deliver(self, pending_id: int, event_id: str, rule_name: str, attempt: int, published_vt: float, fault: str,
                 again: bool) -> None:
        rule = self._rules[rule_name]
        service, timing, vt = rule.service, self.timing, self.scheduler.vt
        start = timing.slot(service, vt)
        if start > vt:  # every execution slot of the service is busy: wait for one
            self.scheduler.push(start, self._deliver, (pending_id, event_id, rule_name, attempt, published_vt, fault, again))
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
        uow = self.services.unit_of_work(service)
        try:
            self._handlers[rule_name](envelope, uow)
            if fault:
                crash = injected_failure(fault, attempt)
                if crash is not None:
                    raise crash
            prepared = check_outbox(self.catalog, service, self._emits[rule_name], uow.outbox) if uow.outbox else ()
        except DeliveryError as exc:
            self._failed(pending_id, event_id, rule, attempt, published_vt, fault, again, started, end, exc.code, exc.message)
            return
        except Exception as exc:  # the handler's own exception: EventBridge sees the target fail
            self._failed(pending_id, event_id, rule, attempt, published_vt, fault, again, started, end,
                         "ERROR_FROM_TARGET", f"{type(exc).__name__}: {exc}")
            return
        self.services.apply(service, uow)
        self.writer.processed.add((rule_name, event_id))
        if prepared:
            self.services.record(prepared, end, on_event=self._route)
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
            self.scheduler.push(next_due, self._deliver,
                                (pending_id, event_id, rule.name, attempt + 1, published_vt, fault, again))
            return
        self.stats.dead_lettered += 1
        self.writer.dead_letters.append(
            (event_id, rule.name, rule.target.id, self.plan.rule_arn(rule.name), self.plan.queue_arn(rule.target.queue),
             code, message, exhausted, attempt - 1, self.timing.now(end), None))
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
        envelope = make_envelope(event_id, row[0], row[1], json.loads(row[2]), self.services.epoch + row[3])
        self._events[event_id] = [envelope, 1]
        return envelope

    def commit(self) -> None:
        """Write everything buffered and commit: what a reader of ``run.db`` (or ``bus.db``) then sees."""
        self.services.commit()

    def report(self) -> dict:
        """The run's state writes (for the cost model) and, under a latency model, what the model did."""
        facts: dict = {"state_writes": self.writer.writes}
        if self.timing.simulated:
            facts["simulation"] = {**self.timing.report(), "virtual_seconds": round(self.vt, 3)}
        return facts

    # ---------------------------------------------------------------- archive, DLQ, resume

    def replay(self, start: float, end: float, *, name: str = "replay", rules: Iterable[str] | None = None) -> int:
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
            envelope = make_envelope(event_id, source, detail_type, json.loads(detail), self.services.epoch + published_at)
            envelope["replay-name"] = name
            self._events.pop(event_id, None)
            self._route(envelope, self.vt, again=True, only=only)
        return len(rows)

    def redrive(self, dead_letter_ids: Iterable[int] | None = None) -> int:
        """Send dead-lettered deliveries (``dead_letters.id``; all when None) back to their targets, after the
        cause was fixed. Returns how many."""
        self.writer.flush()
        query = "SELECT id, event_id, rule FROM dead_letters WHERE redriven_at IS NULL"
        rows = self.db.execute(query).fetchall()
        wanted = None if dead_letter_ids is None else set(dead_letter_ids)
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
            self.scheduler.push(due, self._deliver, (pending_id, event_id, rule, attempt, published, fault, True))
        self.scheduler.vt = min((row[4] for row in rows), default=self.vt)
        return len(rows)
