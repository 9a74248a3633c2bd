"""The local backend: an in-process event bus that behaves like EventBridge in front of the topology the plan
deploys, applying a deployment plan.

By default every rule's target is its service's SQS queue, read by the service's function through an event
source mapping, as the plan deploys it. Two retry clocks apply, one after the other:

1. EventBridge delivers the event to the queue. Only retryable failures are retried, with exponential backoff
   and jitter, until the target's retry policy is exhausted; a failure that is not retryable (missing
   permissions, a target that does not exist) goes to the rule's dead-letter queue at once, with EventBridge's
   attributes (``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION``,
   ``RETRY_ATTEMPTS``); with no dead-letter queue the event is dropped ("Using dead-letter queues to process
   undelivered events", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
2. The event source mapping receives the message and runs the handler. A failing handler does not fail
   EventBridge's delivery: the message becomes visible again after the queue's visibility timeout (the retry
   clock), its receive count grows, and after ``maxReceiveCount`` receives the queue's redrive policy moves it
   to the queue's dead-letter queue, with SQS's attributes and none of EventBridge's. Each message's fate is
   its own, as with partial batch responses (``ReportBatchItemFailures``): locally every receive is a batch of
   one message.

A rule whose target kind is ``"lambda"`` is EventBridge invoking the function directly, which it does
asynchronously: EventBridge's retry policy and the rule's DLQ apply to the invocation only, and a function
error is retried by Lambda's asynchronous invocation, twice, one then two minutes apart, then discarded (the
plan gives the functions no on-failure destination) ("How Lambda handles errors and retries with asynchronous
invocation", https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).

Every published event is archived and can be replayed. The scheduler runs on a virtual clock and draws every
choice from seeded generators, so a run is reproducible; the times it records are wall-clock measurements
unless a simulated timing model is given.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from typing import Any, Callable, Iterable

from yafdp.catalog import Catalog
from yafdp.patterns import RuleSet
from yafdp.plan import DeploymentPlan, RulePlan
from yafdp.runtime import rundb
from yafdp.runtime.envelope import CLOCK_ORIGIN, epoch_of, iso_time, make_envelope
from yafdp.runtime.faults import Faults, decide, retries_publish
from yafdp.runtime.interfaces import TimingModel
from yafdp.runtime.publishing import PUBLISH_BACKOFF_SECONDS, DeliveryError, prepare_put_events
from yafdp.runtime.unit_of_work import Envelope
from yafdp.simulation.timing import LAMBDA_ASYNC_RETRY_DELAYS

from yafdp.backends.local.run_writer import RunWriter
from yafdp.backends.local.scheduler import Scheduler
from yafdp.backends.local.services import InProcessDriving, LocalServices
from yafdp.backends.local.timing import MeasuredTiming

# EventBridge retries "with an exponential back off and jitter" and publishes no schedule
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html): this bus's, a choice, starts
# at 1 s, doubles, is capped at 256 s and keeps half of each delay as jitter ("equal jitter").
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 256.0
# EventBridge's delivery errors (the DLQ's ERROR_CODE) that it does not retry: missing permissions to the target,
# a target that no longer exists, and a request the target refuses as malformed (4xx other than 429)
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html; "EventBridge retries responses
# sent with a 5xx or 429 HTTP status code ... doesn't retry other 4xx HTTP errors").
NOT_RETRIED_DELIVERY_ERRORS = frozenset({"NO_PERMISSIONS", "NO_RESOURCE", "INVALID_PARAMETER", "INVALID_JSON",
                                         "FAILED_TO_ASSUME_ROLE"})
# pending.attempt > 0: the receive count (queue) or invocation (lambda) of a message being handled;
# pending.attempt < 0: EventBridge's -attempt-th try to deliver the event to the rule's target.


class LocalBus(InProcessDriving):
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
    entry_faults
        ``entry_faults(entry, attempt) -> PutEvents ErrorCode or None``: per-entry PutEvents failures to inject
        (e.g. ``"ThrottlingException"``), which producers retry with backoff.
    target_faults
        ``target_faults(rule_name, attempt) -> (ERROR_CODE, ERROR_MESSAGE) or None``: failures of EventBridge's
        delivery to a rule's target to inject (e.g. ``("THROTTLING", ...)``, retried; ``("NO_PERMISSIONS", ...)``,
        not), on top of those the plan itself causes (a queue policy that does not let the rule send).
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world: Any, db: sqlite3.Connection, *,
                 seed: int = 0, session: int = 0, faults: Faults = Faults(), durable: bool = False,
                 timing: TimingModel | None = None, handlers: dict[str, Callable] | None = None,
                 commit_every: int = 500, epoch: float = CLOCK_ORIGIN, entry_faults=None, target_faults=None):
        self.catalog, self.plan, self.world, self.db = catalog, plan, world, db
        catalog.compile_schemas()
        self.seed, self.durable, self.commit_every = seed, durable, commit_every
        self.faults = faults
        self.timing = timing or MeasuredTiming()
        self.writer = RunWriter(db, durable)
        self.scheduler = Scheduler(random.Random(f"{seed}:{session}:order"))
        self.services = LocalServices(catalog, plan, world, self.writer, self.timing, self.scheduler, seed=seed,
                                      session=session, epoch=epoch, entry_faults=entry_faults)
        self.target_faults = target_faults
        self.stats = self.services.stats
        self._replay_rng = random.Random(f"{seed}:{session}:replay")
        self._jitter = random.Random(f"{seed}:{session}:jitter")
        self._hop_rng = random.Random(f"{seed}:{session}:faults")
        self._rules = {r.name: r for r in plan.rules}
        self._services = {s.name: s for s in plan.services}
        self._unreachable = {r.name: self._plan_failure(r) for r in plan.rules}
        overrides = handlers or {}
        self._routes = {r.name: _Route(r, overrides.get(r.name) or catalog.handler(r.service, r.target.handler),
                                       forward=self._unreachable[r.name] is None and target_faults is None)
                        for r in plan.rules}
        self._faulty = faults.any
        self._retries_publish = faults.publish_retry_rate > 0
        self._ruleset = RuleSet()
        for rule in plan.rules:
            self._ruleset.add(rule.name, rule.pattern)
        self._events: dict[str, list] = {}  # event_id -> [envelope, deliveries still to make]
        self.services.use_scheduler(lambda name, entry: self.services.record(
            [entry], self.vt, on_event=self._route, published_by=f"schedule#{name}"))
        self._trace = self.writer.deliveries
        self.db.execute("BEGIN")

    def inject_target_faults(self, target_faults) -> None:
        """From now on, EventBridge's deliveries to rule targets may fail as ``target_faults(rule_name, attempt) ->
        (ERROR_CODE, ERROR_MESSAGE) or None`` says (the constructor's ``target_faults``; None: no more injected
        failures), e.g. every target throttled for the first ten minutes of a run, or a permission missing."""
        self.target_faults = target_faults
        for name, route in self._routes.items():
            route.forward = self._unreachable[name] is None and target_faults is None

    # ---------------------------------------------------------------- publishing

    def put_events(self, entries: Iterable[dict], *, sender: str) -> dict:
        """Publish ``entries`` (``{"DetailType", "Detail"[, "Source", "Time", "Resources"]}``) as service
        ``sender``; returns PutEvents' per-entry answer ``{"FailedEntryCount", "Entries"}`` in request order.

        Each entry is checked on its own (:func:`~yafdp.runtime.publishing.prepare_put_events`): the accepted
        ones are published, the others answered with their ``ErrorCode``. Raises
        :class:`~yafdp.runtime.envelope.PublishError` only for a request refused as a whole.
        """
        response = self.services.put_events(prepare_put_events(self.catalog, sender, entries), self.vt,
                                            on_event=self._route)
        self._commit_for_client()
        return response

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point (e.g. ``place_order``) now, as a client would.

        Its state changes and events are committed together; an exception (such as ``OrderRejectedError``, or
        :class:`~yafdp.runtime.envelope.PublishError` when a simulated account throttles its PutEvents past the
        client's retries) propagates to the caller with nothing stored or published.
        """
        result, uow, prepared, published_vt = self.services.call(service, entrypoint, payload, self.vt)
        self.services.apply(service, uow)
        self.services.record(prepared, published_vt, on_event=self._route)
        self._commit_for_client()
        return result

    def _commit_for_client(self) -> None:
        """A client that got an answer from a durable bus must not lose what it was told: commit now, unless the
        call is an action of the run loop (a stored request of the workload), which the loop's next commit
        covers: a run stopped before it places that request again on resume, from ``requests``."""
        if self.durable and not self.scheduler.running:
            self.commit()

    @property
    def idle(self) -> bool:
        """Whether nothing is left to deliver or run."""
        return self.scheduler.idle

    def _route(self, envelope: Envelope, published_vt: float, again: bool = False,
               only: frozenset | None = None) -> None:
        """EventBridge sends the event to every matching rule's target. ``again``: the event may have been
        delivered before (a replay), so its deliveries must check whether they were already processed."""
        event_id = envelope["id"]
        matched = self._ruleset.matching(envelope)
        if only is not None:
            matched = [rule for rule in matched if rule in only]
        if event_id not in self._events:
            self._events[event_id] = [envelope, 0]
        routes, enqueue = self._routes, self._enqueue
        if not self._faulty:
            for rule_name in matched:
                enqueue(event_id, routes[rule_name], -1, published_vt, published_vt, "", again)
            return
        faults, seed = self.faults, self.seed
        for rule_name in matched:
            route = routes[rule_name]
            decision = decide(faults, seed, event_id, route.rule.subscription)
            due = published_vt + decision.late_seconds
            if decision.duplicate:  # at-least-once: the same delivery made twice, the copy a little later
                enqueue(event_id, route, -1, due + decision.duplicate_late_seconds, published_vt, decision.fault, True)
                enqueue(event_id, route, -1, due, published_vt, decision.fault, True)
            else:
                enqueue(event_id, route, -1, due, published_vt, decision.fault, again)

    def _enqueue(self, event_id: str, route: "_Route", attempt: int, due: float, published_vt: float, fault: str,
                 again: bool) -> None:
        """Schedule EventBridge's try to deliver (``attempt`` < 0) or a receive of the message (``attempt`` > 0).

        Where EventBridge's delivery to the target cannot fail (a reachable target, no injected target faults),
        its one try is not a step of its own: the receive it leads to is scheduled directly, after the hop's
        delay (none under measured time), as that try would have scheduled it. A try held back to later than its
        publication (a reordered, delayed or duplicated delivery) stays a step of its own, made when it is due:
        the account's invocation quota is a first-come queue, and asking it now for a try seconds ahead would
        hold every other event's invocation back behind that one."""
        if attempt < 0 and route.forward and due <= published_vt:  # the delivery cannot fail: it reaches the target
            invoked = self.timing.invoke(route.rule, due)  # a simulated account's invocation quota may hold it back
            if invoked is None:
                self._expired(event_id, route.rule, 1, due)
                return
            attempt, due = 1, invoked + self.timing.hop_delay(route.rule, self._hop_rng)
        cached = self._events.get(event_id)
        if cached is not None:
            cached[1] += 1  # the envelope stays in memory until its last delivery is made
        pending_id = self.writer.add_pending(event_id, route.name, attempt, due, published_vt, fault)
        self.scheduler.push(due, self._send if attempt < 0 else self._deliver,
                            (pending_id, event_id, route, attempt, published_vt, fault, again, None))

    def _expired(self, event_id: str, rule: RulePlan, tries: int, at: float) -> None:
        """The account's invocation quota held EventBridge's ``tries``-th try to deliver the event to ``rule``'s
        target, made at ``at``, past the target's maximum event age: to the rule's dead-letter queue, or dropped."""
        self._undeliverable(event_id, rule, tries, at, "THROTTLING",
                            "the account's invocation quota held the event past the target's maximum event age",
                            "MaximumEventAgeInSeconds")

    def _target_failure(self, rule: RulePlan, attempt: int) -> tuple[str, str] | None:
        """Why EventBridge cannot deliver to ``rule``'s target now: what the plan causes (the target queue does
        not exist, or its policy does not let this rule send), or an injected failure; None when it can."""
        failure = self._unreachable[rule.name]
        if failure is None and self.target_faults is not None:
            return self.target_faults(rule.name, attempt)
        return failure

    def _plan_failure(self, rule: RulePlan) -> tuple[str, str] | None:
        """What the plan itself makes fail for every delivery to ``rule``'s target (worked out once per rule)."""
        if rule.target.kind == "queue":
            service = self._services.get(rule.service)
            if service is None or service.queue != rule.target.queue:
                return "NO_RESOURCE", f"queue {rule.target.queue} does not exist"
            if service.queue_policy and not _policy_allows(service.queue_policy, self.plan.rule_arn(rule.name)):
                return "NO_PERMISSIONS", (f"the policy of queue {service.queue} does not allow sqs:SendMessage "
                                          f"from rule {self.plan.rule_arn(rule.name)}")
        elif rule.service not in self._services:
            return "NO_RESOURCE", f"function of service {rule.service} does not exist"
        return None

    def _send(self, pending_id: int, event_id: str, route: "_Route", attempt: int, published_vt: float, fault: str,
              again: bool, reserved: None = None) -> None:
        """EventBridge's ``-attempt``-th try to deliver the event to the rule's target (the queue, or an
        asynchronous invocation of the function)."""
        rule, tries, vt = route.rule, -attempt, self.scheduler.vt
        failure = self._target_failure(rule, tries)
        if failure is None:
            invoked = self.timing.invoke(rule, vt)
            if invoked is None:
                self._expired(event_id, rule, tries, vt)
            else:
                self._enqueue(event_id, route, 1, invoked + self.timing.hop_delay(rule, self._hop_rng), published_vt,
                              fault, again)
            self.writer.remove_pending(pending_id)
            self._release(event_id)
            return
        code, message = failure
        policy = rule.target.retry_policy
        delay = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (tries - 1))
        delay = delay / 2 + self._jitter.uniform(0, delay / 2)  # "equal jitter"
        next_due = vt + delay
        if code in NOT_RETRIED_DELIVERY_ERRORS:
            exhausted = ""  # not retried, so no retry condition was exhausted: straight to the DLQ (or dropped)
        elif tries > policy.maximum_retry_attempts:
            exhausted = "MaximumRetryAttempts"
        elif next_due - published_vt > policy.maximum_event_age_seconds:
            exhausted = "MaximumEventAgeInSeconds"
        else:
            self.stats.failed += 1
            now = self.timing.now(vt)
            self._trace.append((event_id, rule.name, rule.target.id, tries, now, now, "failed", f"{code}: {message}"))
            self.writer.retry_pending(pending_id, attempt - 1, next_due)
            self.scheduler.push(next_due, self._send, (pending_id, event_id, route, attempt - 1, published_vt,
                                                       fault, again, None))
            return
        self._undeliverable(event_id, rule, tries, vt, code, message, exhausted)
        self.writer.remove_pending(pending_id)
        self._release(event_id)

    def _undeliverable(self, event_id: str, rule: RulePlan, tries: int, vt: float, code: str, message: str,
                       exhausted: str) -> None:
        """EventBridge gives up delivering the event to ``rule``'s target after ``tries`` tries: the event goes
        to the rule's dead-letter queue with EventBridge's attributes, or is dropped when there is none."""
        now = self.timing.now(vt)
        attributes = {"RULE_ARN": self.plan.rule_arn(rule.name), "TARGET_ARN": self.plan.target_arn(rule),
                      "ERROR_CODE": code, "ERROR_MESSAGE": message, "RETRY_ATTEMPTS": str(tries - 1)}
        if exhausted:
            attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
        if rule.target.dead_letter_queue:
            self.stats.dead_lettered += 1
            self._dead_letter(event_id, rule, "rule", code, message, exhausted, tries - 1, now, attributes)
        else:
            self.stats.dropped += 1
            self._dead_letter(event_id, rule, "dropped", code, f"dropped, the target has no dead-letter queue: {message}",
                              exhausted, tries - 1, now, {})
        self._trace.append((event_id, rule.name, rule.target.id, tries, now, now, "dead_lettered", f"{code}: {message}"))

    def _dead_letter(self, event_id: str, rule: RulePlan, kind: str, code: str, message: str, exhausted: str,
                     retries: int, at: float, attributes: dict) -> None:
        self.writer.dead_letters.append(
            (event_id, rule.name, rule.target.id, self.plan.rule_arn(rule.name), self.plan.target_arn(rule),
             code, message, exhausted, retries, at, None, kind, json.dumps(attributes, sort_keys=True)))

    # ---------------------------------------------------------------- delivering

    def _deliver(self, pending_id: int, event_id: str, route: "_Route", attempt: int, published_vt: float,
                 fault: str, again: bool, reserved: tuple[float, float] | None) -> None:
        """The event source mapping receives the message (or Lambda invokes the function) and runs the handler,
        in the execution environment ``reserved`` for it when it had to wait for one."""
        rule, service, vt = route.rule, route.service, self.scheduler.vt
        if reserved is None:
            start, end = self.timing.reserve(service, vt)
            if end is None or start > vt:  # every execution environment of the function is busy: wait for one
                self.scheduler.push(start, self._deliver, (pending_id, event_id, route, attempt, published_vt, fault,
                                                           again, None if end is None else (start, end)))
                return
        else:
            start, end = reserved
        envelope = self._envelope(event_id)
        started = self.timing.now(start)
        # Only a delivery that may repeat an earlier one (duplicate, replay, redrive, resume) can find it done.
        handled = self.services.handle(route, envelope, attempt, fault, again, at=end)
        end += handled.waited
        if handled.outcome == "duplicate":
            self._finish(pending_id, event_id, rule, attempt, started, end, "duplicate", None)
            return
        if handled.outcome == "failed":
            self._failed(pending_id, event_id, rule, attempt, published_vt, fault, again, (start, started), end,
                         handled.code, handled.message)
            return
        finished = self.timing.now(end)  # the handler's work ends here; its outbox is published after it
        if handled.prepared:
            published_by = f"{route.name}#{event_id}"
            services, accepted_vt = self.services, handled.accepted
            services.record(handled.prepared, accepted_vt, on_event=self._route, published_by=published_by)
            if self._retries_publish and retries_publish(self.faults, self.seed, published_by):
                # the producer did not hear the answer and sends the same entries again: new events, same facts
                try:
                    copy_vt = services.admitted(handled.prepared, accepted_vt + PUBLISH_BACKOFF_SECONDS)
                except DeliveryError:  # throttled past its retries, the copy is not published (the first was)
                    copy_vt = None
                if copy_vt is not None:
                    services.record(handled.prepared, copy_vt, on_event=self._route, published_by=published_by)
        self._finish(pending_id, event_id, rule, attempt, started, end, "ok", None, finished)

    def _failed(self, pending_id, event_id, rule: RulePlan, attempt, published_vt, fault, again, received, end,
                code, message) -> None:
        """The handler failed its ``attempt``-th receive (queue) or invocation (lambda): ``received`` is when it was
        received (virtual time, and the time recorded for it), ``end`` when the handler failed (virtual time)."""
        error, (start, started) = f"{code}: {message}", received
        if rule.target.kind == "lambda":  # Lambda's asynchronous invocation retries, then discards
            if attempt <= len(LAMBDA_ASYNC_RETRY_DELAYS):
                self._retry(pending_id, event_id, rule, attempt, published_vt, fault, again, started, end, error,
                            end + LAMBDA_ASYNC_RETRY_DELAYS[attempt - 1])
                return
            self.stats.dropped += 1
            self._dead_letter(event_id, rule, "dropped", code,
                              f"Lambda discarded the event after {attempt} asynchronous attempts (the function has no "
                              f"on-failure destination): {message}", "MaximumRetryAttempts", attempt - 1,
                              self.timing.now(end), {})
            self._finish(pending_id, event_id, rule, attempt, started, end, "dead_lettered", error)
            return
        service = self._services[rule.service]
        # The visibility timeout runs from the receive, not from the end of the handler ("the length of time that
        # a message received from a queue ... is invisible", ReceiveMessage VisibilityTimeout, SQS API reference,
        # https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html).
        visible_again = start + service.visibility_timeout_seconds
        if attempt < service.max_receive_count:
            self._retry(pending_id, event_id, rule, attempt, published_vt, fault, again, started, end, error,
                        visible_again)
            return
        # Its next receive would exceed maxReceiveCount: the queue's redrive policy moves it to the queue's DLQ,
        # as SQS keeps it (no EventBridge attributes: SQS does not know why the function failed).
        self.stats.dead_lettered += 1
        attributes = {"ApproximateReceiveCount": str(attempt),
                      "DeadLetterQueueSourceArn": self.plan.queue_arn(service.queue),
                      "SentTimestamp": str(int((self.services.epoch + published_vt) * 1000))}
        self._dead_letter(event_id, rule, "queue", code, message, "maxReceiveCount", attempt - 1,
                          self.timing.now(visible_again), attributes)
        self._finish(pending_id, event_id, rule, attempt, started, end, "dead_lettered", error)

    def _retry(self, pending_id, event_id, rule: RulePlan, attempt, published_vt, fault, again, started, end, error,
               next_due) -> None:
        self.stats.failed += 1
        self._trace.append((event_id, rule.name, rule.target.id, attempt, started, self.timing.now(end), "failed", error))
        self.writer.retry_pending(pending_id, attempt + 1, next_due)
        self.scheduler.push(next_due, self._deliver, (pending_id, event_id, self._routes[rule.name], attempt + 1,
                                                      published_vt, fault, again, None))

    def _finish(self, pending_id, event_id, rule: RulePlan, attempt, started, end, outcome, error,
                finished: float | None = None) -> None:
        """Record a delivery that ended at virtual time ``end`` (``finished``: the time recorded for it, when it was
        read before the delivery's outbox was published, so that every event it published comes after it)."""
        finished = self.timing.now(end) if finished is None else finished
        self._trace.append((event_id, rule.name, rule.target.id, attempt, started, finished, outcome, error))
        self.writer.remove_pending(pending_id)
        self._release(event_id)

    def _release(self, event_id: str) -> None:
        """One delivery of the event needs its envelope no more."""
        cached = self._events.get(event_id)
        if cached is not None:
            cached[1] -= 1
            if cached[1] <= 0:
                del self._events[event_id]

    def _envelope(self, event_id: str) -> dict:
        cached = self._events.get(event_id)
        if cached is not None:
            return cached[0]
        source, detail_type, detail, time = self.writer.event(event_id)
        envelope = make_envelope(event_id, source, detail_type, json.loads(detail), epoch_of(time))
        self._events[event_id] = [envelope, 1]
        return envelope

    def commit(self) -> None:
        """Write everything buffered and commit: what a reader of ``run.db`` (or ``bus.db``) then sees. A durable
        bus commits this session's counts (:meth:`report`) with it, in ``run_info.session_counts``: a resume adds
        them to its own, so the summary of a run killed and resumed counts what each session committed."""
        if self.durable:
            rundb.set_info(self.db, **{rundb.SESSION_COUNTS: self.report()})
        self.services.commit()

    def report(self) -> dict:
        """The run's state writes (for the cost model) and, under a latency model, what the model did."""
        facts: dict = {"state_writes": self.writer.writes, "state_reads": self.writer.reads,
                       "scheduler": self.services.schedules.report()}
        if self.timing.simulated:
            facts["simulation"] = {**self.timing.report(), "virtual_seconds": round(self.vt, 3)}
        return facts

    # ---------------------------------------------------------------- archive, DLQ, resume

    def replay(self, start: float, end: float, *, name: str = "replay", rules: Iterable[str] | None = None) -> int:
        """Re-deliver every archived event whose own ``time`` lies between ``start`` and ``end`` (seconds since the
        run's epoch, as recorded times are) to the rules that match it now (or only to ``rules``, like a replay's
        ``FilterArns``), as an EventBridge archive replay does. Returns how many events were replayed.

        As StartReplay does (EventBridge API reference,
        https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_StartReplay.html): "only events that occurred
        between the EventStartTime and EventEndTime are replayed", so the window applies to each event's ``time``
        (the entry's own ``Time`` when it set one, else when EventBridge received it; whole seconds), not to when it
        was received; replayed events keep their ``time`` and id (idempotent targets record them as duplicates),
        carry ``replay-name``, are replayed one minute of the window at a time, the first minute first, and "are not
        necessarily replayed in the exact same order that they were added": within a minute their order is shuffled."""
        only = None if rules is None else frozenset(rules)
        self.writer.flush()
        epoch = self.services.epoch
        first, last = math.ceil(epoch + start), math.floor(epoch + end)  # ``time`` has whole seconds
        rows = self.db.execute("SELECT event_id, source, detail_type, detail, time FROM events"
                               " WHERE time BETWEEN ? AND ? AND replay_name IS NULL ORDER BY seq",
                               (iso_time(first), iso_time(last))).fetchall() if first <= last else []
        minutes: dict[int, list] = {}
        for row in rows:
            minutes.setdefault(int((epoch_of(row[4]) - epoch - start) // 60), []).append(row)
        for minute in sorted(minutes):
            batch = minutes[minute]
            self._replay_rng.shuffle(batch)
            for event_id, source, detail_type, detail, time in batch:
                envelope = make_envelope(event_id, source, detail_type, json.loads(detail), epoch_of(time))
                envelope["replay-name"] = name
                self._events.pop(event_id, None)
                self._route(envelope, self.vt, again=True, only=only)
        return len(rows)

    def redrive(self, dead_letter_ids: Iterable[int] | None = None) -> int:
        """Send dead-lettered deliveries (``dead_letters.id``; all when None) back, after the cause was fixed:
        a queue's dead letters to the service queue (received afresh), a rule's to EventBridge's delivery to its
        target. Dropped events were kept nowhere and cannot be redriven. Returns how many."""
        self.writer.flush()
        query = "SELECT id, event_id, rule, kind FROM dead_letters WHERE redriven_at IS NULL AND kind != 'dropped'"
        rows = self.db.execute(query).fetchall()
        wanted = None if dead_letter_ids is None else set(dead_letter_ids)
        count = 0
        for dl_id, event_id, rule, kind in rows:
            if wanted is not None and dl_id not in wanted:
                continue
            self.db.execute("UPDATE dead_letters SET redriven_at = ? WHERE id = ?", (self.now(), dl_id))
            self._enqueue(event_id, self._routes[rule], 1 if kind == "queue" else -1, self.vt, self.vt, "", True)
            count += 1
        self.commit()
        return count

    def close(self) -> None:
        """Nothing to release: the bus lives in this process (a deployed bus tears its deployment down)."""

    def resume(self) -> int:
        """Reload the durable delivery queue left by a run that was killed, and its EventBridge Scheduler
        schedules. Returns how many deliveries."""
        if self.services.schedules is not None:
            self.services.schedules.restore()
        rows = self.db.execute("SELECT id, event_id, rule, attempt, due, published, fault FROM pending").fetchall()
        for pending_id, event_id, rule, attempt, due, published, fault in rows:
            step = self._send if attempt < 0 else self._deliver
            self.scheduler.push(due, step, (pending_id, event_id, self._routes[rule], attempt, published, fault, True,
                                            None))
        self.scheduler.vt = min((row[4] for row in rows), default=self.vt)
        return len(rows)


def _policy_allows(policy: dict, source_arn: str) -> bool:
    """Whether a queue's resource policy lets EventBridge send to it on behalf of the rule ``source_arn``
    (an Allow of ``sqs:SendMessage`` whose ``aws:SourceArn`` condition, if any, names the rule)."""
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") != "Allow" or not {"sqs:SendMessage", "sqs:*", "*"} & set(actions):
            continue
        arns = statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn")
        if arns is None or source_arn in ([arns] if isinstance(arns, str) else arns):
            return True
    return False


class _Route:
    """A rule of the plan as the bus delivers to it, worked out once: its handler, service, target and what it
    may publish; ``forward``: EventBridge's delivery to its target cannot fail."""

    __slots__ = ("name", "rule", "service", "target", "handler", "emits", "forward")

    def __init__(self, rule: RulePlan, handler: Callable, *, forward: bool):
        self.name, self.rule, self.service, self.target = rule.name, rule, rule.service, rule.target.id
        self.handler, self.emits, self.forward = handler, frozenset(rule.emits), forward
