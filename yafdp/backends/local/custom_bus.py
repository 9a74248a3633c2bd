"""The local backend on a Custom Event Bus: the saga's services behind the Custom Event Bus engine
(:mod:`yafdp.custom_event_bus`), on the run's virtual clock, every event and delivery recorded in ``run.db``.

The plan (:mod:`yafdp.plan.custom_bus`) gives one subscriber per subscription. A subscriber whose target is its
service's queue sends to a local SQS queue (:mod:`yafdp.backends.local.sqs_queue`, FIFO when the plan says so,
``MessageGroupId`` = the event group, ``MessageDeduplicationId`` = ``aws:EventId``) that the service's function
reads through its event source mapping; a function target is invoked directly (``REQUEST_RESPONSE``: a function
error is a failed delivery, retried under the subscriber's retry policy; ``EVENT``: Lambda's asynchronous
invocation). Every event a service publishes carries ``EventGroupId`` (the catalog's ``event_group`` path) and,
with ``deduplication: "id"``, a ``DeduplicationId`` naming the unit of work and outbox entry that published it.

Faults mean what they mean on the Classic bus: a duplicate is the subscriber handing an event to its target twice
(a FIFO queue's deduplication drops the copy; a standard queue delivers it twice); a reordered or delayed event is
handed off late (a FIFO subscriber's group waits for it); a transient or poison fault crashes the handler;
``publish_retry_rate`` makes a producer send its PutEvents again (``DEDUPLICATED`` here). The delivery role is
honoured as far as :mod:`yafdp.backends.local.iam` emulates IAM. Where this local bus simplifies: the hop from
the subscriber to its queue and the event source mapping's poll are one delay (the timing model's), taken
before the hand-off completes; a run on it cannot be resumed (``--store file`` is refused).
"""

from __future__ import annotations

import json
import random
from typing import Callable, Iterable

from yafdp.catalog import Catalog
from yafdp.custom_event_bus import CustomEventBusService
from yafdp.custom_event_bus.bus import entry_size
from yafdp.custom_event_bus.dead_letters import DeadLetterRecord
from yafdp.custom_event_bus.events import StoredEvent
from yafdp.custom_event_bus.limits import MAX_ENTRIES
from yafdp.custom_event_bus.targets import Delivery, Failures
from yafdp.plan import DeploymentPlan
from yafdp.runtime import json_text
from yafdp.runtime.envelope import CLOCK_ORIGIN
from yafdp.runtime.faults import NO_FAULT, Faults, decide, retries_publish
from yafdp.runtime.interfaces import TimingModel
from yafdp.runtime.publishing import (FUNCTION_ERROR, PUBLISH_BACKOFF_SECONDS, DeliveryError, PreparedEntry,
                                     custom_bus_entries, prepare_put_events)
from yafdp.runtime.rundb import (INSERT_CUSTOM_DEAD_LETTER, INSERT_CUSTOM_DELIVERY, INSERT_CUSTOM_EVENT,
                                 INSERT_DEDUPLICATED)
from yafdp.simulation.timing import LAMBDA_ASYNC_RETRY_DELAYS

from yafdp.backends.local.iam import policy_allows
from yafdp.backends.local.run_writer import RunWriter
from yafdp.backends.local.scheduler import Scheduler
from yafdp.backends.local.services import InProcessDriving, LocalServices
from yafdp.backends.local.sqs_queue import LocalQueue, Message
from yafdp.backends.local.timing import MeasuredTiming


class SchedulerClock:
    """The Custom Event Bus engine's clock over a local run's scheduler: epoch seconds = ``epoch`` + virtual
    seconds."""

    def __init__(self, scheduler: Scheduler, epoch: float):
        self.scheduler, self.epoch = scheduler, epoch

    def now(self) -> float:
        return self.epoch + self.scheduler.vt

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        self.scheduler.push(max(when - self.epoch, self.scheduler.vt), action)


class _Route:
    """A subscriber of the plan as the run delivers to it: its handler, service, target and what it may publish."""

    __slots__ = ("name", "rule", "service", "target", "handler", "emits")

    def __init__(self, subscriber, handler: Callable):
        self.name, self.rule, self.service, self.target = subscriber.name, subscriber, subscriber.service, subscriber.service
        self.handler, self.emits = handler, frozenset(subscriber.emits)


class LocalCustomBus(InProcessDriving):
    """The saga on a Custom Event Bus in this process. Parameters as :class:`~yafdp.backends.local.bus.LocalBus`'s
    (``durable`` must be False: a Custom Event Bus run cannot be resumed).

    ``api`` is the bus's own API (:class:`~yafdp.custom_event_bus.CustomEventBusService`, AWS's member names):
    pause a subscriber with ``api.update_subscriber(SubscriberArn=bus.subscriber_arn(name), State="STOPPED")``,
    read its metrics from ``api.subscriber(arn).metrics``. ``bus_arn`` is the bus's ARN.
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world, db, *, seed: int = 0,
                 session: int = 0, faults: Faults = Faults(), durable: bool = False,
                 timing: TimingModel | None = None, handlers: dict[str, Callable] | None = None,
                 commit_every: int = 500, epoch: float = CLOCK_ORIGIN, entry_faults=None, target_faults=None):
        if plan.bus_kind != "custom":
            raise ValueError("LocalCustomBus runs a plan for the Custom Event Bus (build_plan(..., bus='custom'))")
        if durable:
            raise ValueError("a Custom Event Bus run keeps its bus in memory: it cannot be durable (resumable)")
        self.catalog, self.plan, self.world, self.db = catalog, plan, world, db
        catalog.compile_schemas()
        self.seed, self.durable, self.commit_every, self.faults = seed, False, commit_every, faults
        self.timing = timing or MeasuredTiming()
        self.writer = RunWriter(db, False)
        self.scheduler = Scheduler(random.Random(f"{seed}:{session}:order"))
        self.services = LocalServices(catalog, plan, world, self.writer, self.timing, self.scheduler, seed=seed,
                                      session=session, epoch=epoch, entry_faults=entry_faults,
                                      groups_of=self._groups if self.timing.simulated else None)
        self.stats = self.services.stats
        self.services.use_scheduler(lambda name, entry: self.publish([entry], self.vt, f"schedule#{name}"))
        self.target_faults = target_faults
        self._hop_rng = random.Random(f"{seed}:{session}:faults")
        self._faulty = faults.any
        self._overrides = handlers or {}
        self._routes: dict[str, _Route] = {}
        self._arns: dict[str, str] = {}  # subscriber name -> ARN
        self._alias: dict[str, str] = {}  # a redrive's or replay's subscriber -> the subscriber it stands in for
        self._queues: dict[str, LocalQueue] = {}  # by ARN
        self._functions: dict[str, "_FunctionTarget"] = {}  # by ARN
        self._publishing_by: str | None = None
        self._temporary = 0
        self.clock = SchedulerClock(self.scheduler, epoch)
        self.api = CustomEventBusService(self.clock, targets=self._target, dead_letter_queues=self._dead_letter_queue,
                                         observer=self, account=plan.account, region=plan.region,
                                         seed=f"{seed}:{session}")
        self.bus_arn = self.api.create_event_bus(
            Name=plan.bus, StorageConfiguration={"RetentionPeriodInDays": plan.retention_days},
            Tags=dict(plan.tags))["EventBusArn"]
        self.scheduler.run(until=self.scheduler.vt)  # CREATING -> ACTIVE on the clock's next step
        for service in plan.services:
            self._add_queue(service)
        for subscriber in plan.subscribers:
            self.subscribe(subscriber)
        self.db.execute("BEGIN")

    # ---------------------------------------------------------------- wiring

    def _add_queue(self, service) -> None:
        arn = self.plan.queue_arn(service.queue)
        self._queues[arn] = LocalQueue(service.queue, arn, fifo=service.fifo_queue,
                                       visibility_timeout=service.visibility_timeout_seconds,
                                       max_receive_count=service.max_receive_count, scheduler=self.scheduler,
                                       receive=self._receive, dead_letter=self._queue_dead_letter)

    def subscribe(self, subscriber, **request) -> str:
        """Create ``subscriber`` (a :class:`~yafdp.plan.custom_bus.SubscriberPlan`) on the bus, with ``request``
        members added or overriding the plan's (e.g. ``StartingPosition="POINT_IN_TIME",
        PointInTimeConfiguration={"PointType": "HORIZON"}`` for a subscriber that starts in the past);
        returns its ARN."""
        handler = self._overrides.get(subscriber.name) or self.catalog.handler(subscriber.service, subscriber.target.handler)
        self._routes[subscriber.name] = _Route(subscriber, handler)
        answer = self.api.create_subscriber(**{**subscriber.request(self.plan, self.bus_arn), **request})
        self._arns[subscriber.name] = answer["SubscriberArn"]
        return answer["SubscriberArn"]

    def subscriber_arn(self, name: str) -> str:
        """The ARN of the subscriber named ``name`` (the plan's name, e.g. ``yafdp-loyalty-awards-confirmed-order``)
        or standing for subscription ``name``."""
        return self._arns[self.plan.rule(name).name] if name not in self._arns else self._arns[name]

    def add_service(self, catalog: Catalog, service: str, **request) -> list[str]:
        """A service joins the running saga: its state, queue and subscribers are added from ``catalog`` (the
        catalog with the service), its subscribers created with ``request`` (e.g. a ``StartingPosition`` in
        the past, to catch up from the bus's retention). Returns the new subscribers' ARNs."""
        from yafdp.backends.local.run_writer import SqliteServiceState
        from yafdp.plan import build_plan

        plan = build_plan(catalog, self.plan.prefix, region=self.plan.region, account=self.plan.account, bus="custom")
        added = plan.service(service)
        self.catalog = self.services.catalog = catalog
        catalog.compile_schemas()
        self.plan = self.services.plan = plan
        self.services.states[service] = SqliteServiceState(self.writer, service)
        self._add_queue(added)
        return [self.subscribe(s, **request) for s in plan.subscribers if s.service == service]

    def _target(self, arn: str):
        """The Custom Event Bus engine's way to a target: a local queue, or a service's function."""
        queue = self._queues.get(arn)
        if queue is not None:
            return _QueueTarget(self, queue)
        function = self._functions.get(arn)
        if function is None:
            for service in self.plan.services:
                if self.plan.function_arn(service.name) == arn:
                    function = self._functions[arn] = _FunctionTarget(self, service.name)
        return function

    def route(self, subscriber: str) -> _Route:
        return self._routes[self._alias.get(subscriber, subscriber)]

    def denied(self, subscriber: str, action: str, resource: str) -> tuple[str, str] | None:
        """``("ACCESS_DENIED", why)`` when the subscriber's delivery role may not ``action`` on ``resource``."""
        route = self.route(subscriber)
        policy = self.plan.service(route.service).delivery_policy
        if policy_allows(policy, action, resource):
            return None
        return "ACCESS_DENIED", (f"the delivery role {route.rule.role} of subscriber {route.name} is not allowed to "
                                 f"{action} on {resource}")

    def _dead_letter_queue(self, queue_arn: str, record: DeadLetterRecord) -> bool:
        """An on-failure record for ``queue_arn``: written when the subscriber's role may send there."""
        name = record.body["subscriberArn"].split("/")[-2]
        return self.denied(name, "sqs:SendMessage", queue_arn) is None

    # ---------------------------------------------------------------- publishing

    def put_events(self, entries: Iterable[dict], *, sender: str) -> dict:
        """Publish ``entries`` as service ``sender`` (checked as on every backend); returns the Custom Event Bus's
        answer per entry (``{"FailedEntryCount", "Entries": [{"EventId", "SequenceNumber", "SuccessCode"} |
        {"ErrorCode", "ErrorMessage"}]}``)."""
        checked = prepare_put_events(self.catalog, sender, entries, MAX_ENTRIES)
        prepared = [c for c in checked if isinstance(c, PreparedEntry)]
        answers = iter(self._put(self._entries(prepared, None), None) if prepared else [])
        results = [next(answers) if isinstance(c, PreparedEntry) else c.to_aws() for c in checked]
        failed = sum("ErrorCode" in r for r in results)
        self.stats.refused += failed
        return {"FailedEntryCount": failed, "Entries": results}

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point (e.g. ``place_order``) now; its state and events commit together.

        An exception (such as ``OrderRejectedError``, or :class:`~yafdp.runtime.envelope.PublishError` when the
        simulated bus throttles its PutEvents past the client's retries) propagates with nothing stored or
        published."""
        result, uow, prepared, accepted = self.services.call(service, entrypoint, payload, self.vt)
        self.services.apply(service, uow)
        self.publish(prepared, accepted, None)
        return result

    def publish(self, prepared: list[PreparedEntry], accepted: float | None, published_by: str | None) -> None:
        """A producer's PutEvents of ``prepared``, which the bus accepts at virtual time ``accepted``
        (:meth:`~yafdp.backends.local.services.LocalServices.admitted`), and its second try when the fault
        injector loses the first answer (admitted again: throttled past its retries, that copy is not sent)."""
        if not prepared:
            return
        entries = self._entries(prepared, published_by)

        def send() -> None:
            self._put(entries, published_by)
        if accepted <= self.vt:
            send()
        else:
            self.scheduler.push(accepted, send)
        if published_by is not None and retries_publish(self.faults, self.seed, published_by):
            try:
                again = self.services.admitted(prepared, accepted + PUBLISH_BACKOFF_SECONDS)
            except DeliveryError:  # throttled past its retries, the copy is not sent (the first was)
                return
            self.scheduler.push(again, send)

    def _groups(self, prepared: list[PreparedEntry]) -> dict[str, tuple[int, int]]:
        """How the entries of a PutEvents request fall into event groups, for the timing model's limit per group:
        ``{EventGroupId: (entries, bytes)}``, sized as the bus sizes them
        (:func:`~yafdp.custom_event_bus.bus.entry_size`) but without a ``DeduplicationId``, which the producer
        adds as it sends (at most 128 bytes an entry: under 0.13 of the 1 + KB an entry counts)."""
        groups: dict[str, tuple[int, int]] = {}
        for entry in self._entries(prepared, None):
            group = entry["SystemMetadata"].get("EventGroupId")
            if group is not None:
                count, size = groups.get(group, (0, 0))
                groups[group] = (count + 1, size + entry_size(entry))
        return groups

    def _entries(self, prepared: list[PreparedEntry], published_by: str | None) -> list[dict]:
        return custom_bus_entries(prepared, self.catalog.bus.custom, published_by, self.plan.deduplication == "id")

    def _put(self, entries: list[dict], published_by: str | None) -> list[dict]:
        content = {"DeduplicationConfiguration": {"DeduplicationType": "CONTENT_BASED"}} \
            if self.plan.deduplication == "content" else {}
        results = []
        self._publishing_by = published_by
        try:
            for start in range(0, len(entries), MAX_ENTRIES):
                chunk = entries[start:start + MAX_ENTRIES]
                answer = self.api.put_events(EventBusArn=self.bus_arn, Entries=chunk, **content)
                for entry, result in zip(chunk, answer["Entries"]):
                    if result.get("SuccessCode") == "DEDUPLICATED":
                        self.stats.duplicates_published += 1
                        system = entry["SystemMetadata"]
                        self.writer.add(INSERT_DEDUPLICATED, (self.now(), self.clock.now(), result["EventId"],
                                                              system.get("DeduplicationId"), system.get("EventGroupId"),
                                                              published_by))
                results += answer["Entries"]
        finally:
            self._publishing_by = None
        return results

    def published(self, bus, event: StoredEvent) -> None:
        """The engine stored ``event``: its row in ``run.db``'s ``events``."""
        data = event.data
        detail = data["detail"]
        self.writer.add(INSERT_CUSTOM_EVENT, (
            event.event_id, self.catalog.saga.saga_id(detail), event.detail_type,
            event.source, self.now(), json_text.dumps(detail), data["time"], None, self._publishing_by,
            event.group_id, event.deduplication_id, event.sequence_number, event.ingested_at))
        self.stats.published += 1

    # ---------------------------------------------------------------- what the subscribers did

    def settled(self, subscriber, delivery: Delivery, failures: Failures) -> None:
        """A target invocation ended. A queue target's failures (the hand-off to the queue was refused) are
        EventBridge's failed tries, recorded like the Classic bus's; a function target recorded its own."""
        if not failures or delivery.config.target_kind != "sqs":
            return
        now = self.now()
        for index, (code, message) in failures.items():
            item = delivery.items[index]
            route = self.route(subscriber.name)
            self.stats.failed += 1
            self.writer.add(INSERT_CUSTOM_DELIVERY, (item.event.event_id, route.name, route.target, item.attempt,
                                                     now, now, "failed", f"{code}: {message}", item.delivery_type))

    def gave_up(self, subscriber, items, record: DeadLetterRecord, outcome: str) -> None:
        """The subscriber ran out of retries: a ``subscriber`` dead letter (its record in the on-failure queue)
        or, with no queue or a queue it may not write to, a ``dropped`` one."""
        now = self.now()
        route = self.route(subscriber.name)
        body, attributes = record.body, record.attributes
        kind = "subscriber" if outcome == "dead_lettered" else "dropped"
        message = body["errorMessage"] if kind == "subscriber" else (
            f"dropped, the subscriber has no on-failure queue: {body['errorMessage']}" if outcome == "dropped" else
            f"lost, the on-failure queue refused the record (OnFailureDestinationFailed): {body['errorMessage']}")
        for item in items:
            if kind == "subscriber":
                self.stats.dead_lettered += 1
            else:
                self.stats.dropped += 1
            self.writer.add(INSERT_CUSTOM_DEAD_LETTER, (
                item.event.event_id, route.name, route.target, self._arns.get(route.name, subscriber.arn),
                subscriber.config.target_arn, body["errorCode"], message, body["exhaustedRetryCondition"],
                body["retryAttempts"], now, None, kind, json.dumps(attributes if kind == "subscriber" else {},
                                                                   sort_keys=True),
                record.text() if kind == "subscriber" else None))
            self.writer.add(INSERT_CUSTOM_DELIVERY, (item.event.event_id, route.name, route.target, item.attempt, now,
                                                     now, "dead_lettered", f"{body['errorCode']}: {body['errorMessage']}",
                                                     item.delivery_type))

    # ---------------------------------------------------------------- the functions

    def run_handler(self, route: _Route, envelope: dict, attempt: int, fault: str, again: bool, start: float,
                    end: float, delivery_type: str) -> tuple[str, str | None]:
        """Run ``route``'s handler on ``envelope`` in an execution environment busy from ``start`` to ``end``
        (virtual seconds) (:meth:`~yafdp.backends.local.services.LocalServices.handle`); publish what it
        published, at ``end``, when it succeeds. Returns ``("ok" | "duplicate" | "failed", error)``."""
        handled = self.services.handle(route, envelope, attempt, fault, again, at=end)
        if handled.outcome == "failed":  # its PutEvents throttled past the producer's retries too
            return "failed", f"{handled.code}: {handled.message}"
        if handled.outcome == "ok":
            self.publish(list(handled.prepared), handled.accepted, f"{route.name}#{envelope['id']}")
        return handled.outcome, None

    def reserved(self, service: str, retry: Callable[[tuple[float, float]], None]) -> tuple[float, float] | None:
        """An execution environment of ``service`` for a call now: ``(start, end)``, or None when the call
        must wait (``retry((start, end))`` is then scheduled for when one is free)."""
        vt = self.vt
        start, end = self.timing.reserve(service, vt)
        if end is None or start > vt:
            self.scheduler.push(start, lambda: retry(None if end is None else (start, end)))
            return None
        return start, end

    def _receive(self, message: Message, reserved: tuple[float, float] | None = None) -> None:
        """The service queue's event source mapping receives ``message`` and runs the handler."""
        meta = message.meta
        route = self.route(meta["subscriber"])
        if reserved is None:
            reserved = self.reserved(route.service, lambda r, m=message: self._receive(m, r))
            if reserved is None:
                return
        start, end = reserved
        envelope = message.body if "Data" not in message.body else message.body["Data"]
        queue = self._queues[meta["queue"]]
        again = meta.get("again", False) or meta["delivery_type"] == "REPLAY"
        outcome, error = self.run_handler(route, envelope, message.receive_count, meta.get("fault", ""), again, start,
                                          end, meta["delivery_type"])
        if outcome == "failed":
            meta["error"] = error
            last = message.receive_count >= queue.max_receive_count
            outcome = "dead_lettered" if last else "failed"
            if not last:
                self.stats.failed += 1
        self.writer.add(INSERT_CUSTOM_DELIVERY, (envelope["id"], route.name, route.target, message.receive_count,
                                                 self.timing.now(start), self.timing.now(end), outcome, error,
                                                 meta["delivery_type"]))
        ok = outcome in ("ok", "duplicate")
        self.scheduler.push(end, queue.finished, (message, ok, start, end))

    def _queue_dead_letter(self, message: Message, at: float) -> None:
        """The queue's redrive policy moved ``message`` to its dead-letter queue, with SQS's attributes."""
        meta = message.meta
        route = self.route(meta["subscriber"])
        queue = self._queues[meta["queue"]]
        self.stats.dead_lettered += 1
        attributes = {"ApproximateReceiveCount": str(message.receive_count),
                      "DeadLetterQueueSourceArn": queue.arn,
                      "SentTimestamp": str(int((self.clock.epoch + message.sent_at) * 1000))}
        self.writer.add(INSERT_CUSTOM_DEAD_LETTER, (
            meta["event_id"], route.name, route.target, self._arns.get(route.name, ""), queue.arn, "Unhandled",
            meta.get("error") or "the function failed every receive", "maxReceiveCount", message.receive_count - 1,
            self.timing.now(at), None, "queue", json.dumps(attributes, sort_keys=True), None))

    # ---------------------------------------------------------------- replay and redrive

    def _temporary_subscriber(self, name: str, event_ids: list[str], start: float, end: float, tag: str) -> str:
        """A subscriber that reads the bus's history from ``start`` to ``end`` (epoch seconds) for exactly
        ``event_ids`` and delivers them as the subscriber ``name`` would: how the user guide redrives a
        Custom Event Bus's dead letters ("Redriving", UG retry). It is deleted once it has delivered them."""
        route = self.route(name)
        self._temporary += 1
        temporary = f"{route.name}-{tag}-{self._temporary}"
        self._alias[temporary] = route.name
        request = route.rule.request(self.plan, self.bus_arn)
        filters = request["FilterConfiguration"]["Filters"] + [
            {"Scope": "SYSTEM_METADATA", "Pattern": json.dumps({"aws:EventId": sorted(event_ids)})}]
        request.update(Name=temporary, FilterConfiguration={"Filters": filters}, StartingPosition="POINT_IN_TIME",
                       PointInTimeConfiguration={"PointType": "TIMESTAMP", "StartingPoint": start, "EndPoint": end + 1})
        arn = self.api.create_subscriber(**request)["SubscriberArn"]
        self._arns[temporary] = arn

        def retire() -> None:
            subscriber = self.api.subscriber(arn)
            if subscriber.backlog or subscriber.in_flight:
                self.scheduler.push(self.vt + 1.0, retire)
                return
            self.api.delete_subscriber(SubscriberArn=arn)
        self.scheduler.push(self.vt, retire)
        return arn

    def redrive(self, dead_letter_ids: Iterable[int] | None = None) -> int:
        """Send dead letters back after their cause was fixed: a subscriber's (its on-failure queue holds only
        references) by replaying the events from the bus, as the user guide says; a service queue's (it holds
        the message) by moving the message back to the queue (SQS's StartMessageMoveTask). Dropped events were
        kept nowhere and cannot be redriven. Returns how many."""
        self.writer.flush()
        rows = self.db.execute("SELECT d.id, d.event_id, d.rule, d.kind, e.ingested_at FROM dead_letters d "
                               "JOIN events e ON e.event_id = d.event_id "
                               "WHERE d.redriven_at IS NULL AND d.kind != 'dropped'").fetchall()
        wanted = None if dead_letter_ids is None else set(dead_letter_ids)
        by_subscriber: dict[str, list] = {}
        count = 0
        for dl_id, event_id, rule, kind, ingested_at in rows:
            if wanted is not None and dl_id not in wanted:
                continue
            self.db.execute("UPDATE dead_letters SET redriven_at = ? WHERE id = ?", (self.now(), dl_id))
            count += 1
            if kind == "subscriber":
                by_subscriber.setdefault(rule, []).append((event_id, ingested_at))
            else:
                self._move_back(event_id, rule)
        for rule, events in by_subscriber.items():
            times = [t for _, t in events]
            self._temporary_subscriber(rule, [e for e, _ in events], min(times), max(times), "redrive")
        self.commit()
        return count

    def _move_back(self, event_id: str, subscriber: str) -> None:
        route = self.route(subscriber)
        service = self.plan.service(route.service)
        arn = self.plan.queue_arn(service.queue)
        row = self.db.execute("SELECT source, detail_type, detail, time, event_group_id FROM events WHERE event_id = ?",
                              (event_id,)).fetchone()
        stored = self.api.buses[self.bus_arn].store
        event = next((e for e in (stored.get(s) for s in range(stored.first_seq, stored.next_seq))
                      if e is not None and e.event_id == event_id), None)
        body = event.data if event is not None else {"id": event_id, "source": row[0], "detail-type": row[1],
                                                     "detail": json.loads(row[2]), "time": row[3]}
        self._queues[arn].send(Message(body, self.vt, group_id=row[4] or event_id, deduplication_id=None,
                                       meta={"event_id": event_id, "subscriber": route.name, "queue": arn,
                                             "delivery_type": "LIVE", "again": True}))

    def replay(self, start: float, end: float, *, name: str = "replay", rules: Iterable[str] | None = None) -> int:
        """Re-deliver the events published between ``start`` and ``end`` (recorded times) to the subscribers
        that match them now (or only ``rules``): on a Custom Event Bus a replay is a subscriber that starts in
        the past (UG "Replaying events"); the events arrive as ``REPLAY``. Returns how many events."""
        self.writer.flush()
        rows = self.db.execute("SELECT event_id, ingested_at FROM events WHERE published_at BETWEEN ? AND ? "
                               "AND ingested_at IS NOT NULL", (start, end)).fetchall()
        if not rows:
            return 0
        ids, times = [r[0] for r in rows], [r[1] for r in rows]
        chosen = [s.name for s in self.plan.subscribers if rules is None or s.name in set(rules)]
        for subscriber in chosen:
            self._temporary_subscriber(subscriber, ids, min(times), max(times), name)
        return len(rows)

    # ---------------------------------------------------------------- the run

    def commit(self) -> None:
        """Write everything buffered and commit."""
        self.services.commit()

    def report(self) -> dict:
        """State writes, each subscriber's metrics (as ``AWS/EventsV2`` counts them) and, under a latency model,
        what the model did."""
        metrics = {name: dict(self.api.subscriber(arn).metrics) for name, arn in self._arns.items()
                   if name not in self._alias and self._exists(arn)}
        facts: dict = {"state_writes": self.writer.writes, "state_reads": self.writer.reads, "subscriber_metrics": metrics,
                       "scheduler": self.services.schedules.report(),
                       "deduplicated_publishes": self.stats.duplicates_published,
                       # copies a subscriber handed its FIFO queue twice (--duplicate-rate), dropped by the queue's
                       # deduplication: they never reach a handler, so no delivery counts them as a duplicate
                       "queue_deduplicated": sum(q.deduplicated for q in self._queues.values())}
        if self.timing.simulated:
            facts["simulation"] = {**self.timing.report(), "virtual_seconds": round(self.vt, 3)}
        return facts

    def _exists(self, arn: str) -> bool:
        try:
            self.api.subscriber(arn)
            return True
        except Exception:
            return False

    def close(self) -> None:
        """Nothing to release: the bus lives in this process."""

    def resume(self) -> int:
        raise NotImplementedError("a Custom Event Bus run cannot be resumed: its bus lives in memory")


class _QueueTarget:
    """A subscriber's SQS queue target: ``SendMessageBatch`` to a local queue, after the hop's delay."""

    def __init__(self, bus: LocalCustomBus, queue: LocalQueue):
        self.bus, self.queue = bus, queue

    def deliver(self, delivery: Delivery, done: Callable[[Failures], None]) -> None:
        bus = self.bus
        route = bus.route(delivery.subscriber)
        refusal = bus.denied(delivery.subscriber, "sqs:SendMessage", self.queue.arn)
        if refusal is None and bus.target_faults is not None:
            refusal = bus.target_faults(route.name, delivery.items[0].attempt)
        if refusal is not None:
            done({index: refusal for index in range(len(delivery.items))})
            return
        late, sends = 0.0, []
        for item in delivery.items:
            decision = decide(bus.faults, bus.seed, item.event.event_id, route.rule.subscription) \
                if bus._faulty else NO_FAULT
            late = max(late, decision.late_seconds)
            message = Message(item.payload, 0.0, item.parameters.get("MessageGroupId"),
                              item.parameters.get("MessageDeduplicationId"),
                              meta={"event_id": item.event.event_id, "subscriber": route.name, "queue": self.queue.arn,
                                    "delivery_type": item.delivery_type, "fault": decision.fault,
                                    "again": item.delivery_type == "REPLAY"})
            sends.append((message, decision))
        hop = bus.timing.hop_delay(route.rule, bus._hop_rng)

        def hand_off() -> None:
            for message, decision in sends:
                message.sent_at = bus.vt
                self.queue.send(message)
                if decision.duplicate:  # at-least-once: the same message sent twice, the copy a little later
                    copy = Message(message.body, bus.vt, message.group_id, message.deduplication_id,
                                   meta={**message.meta, "again": True})
                    bus.scheduler.push(bus.vt + decision.duplicate_late_seconds, self.queue.send, (copy,))
            done({})
        bus.scheduler.push(bus.vt + hop + late, hand_off)


class _FunctionTarget:
    """A subscriber's function target: ``REQUEST_RESPONSE`` runs the handler and reports its error as a failed
    delivery; ``EVENT`` hands the event to Lambda's asynchronous queue, which retries twice, then discards."""

    def __init__(self, bus: LocalCustomBus, service: str):
        self.bus, self.service = bus, service

    def deliver(self, delivery: Delivery, done: Callable[[Failures], None]) -> None:
        bus = self.bus
        route = bus.route(delivery.subscriber)
        refusal = bus.denied(delivery.subscriber, "lambda:InvokeFunction", bus.plan.function_arn(self.service))
        if refusal is not None:
            done({index: refusal for index in range(len(delivery.items))})
            return
        hop = bus.timing.hop_delay(route.rule, bus._hop_rng)
        if delivery.config.invocation_type == "EVENT":
            for item in delivery.items:
                bus.scheduler.push(bus.vt + hop, self._invoke_async, (route, item, 1))
            done({})
            return
        results: Failures = {}
        pending = [len(delivery.items)]

        def finished(index: int, failure) -> None:
            if failure is not None:
                results[index] = failure
            pending[0] -= 1
            if pending[0] == 0:
                done(results)
        for index, item in enumerate(delivery.items):
            bus.scheduler.push(bus.vt + hop, self._invoke, (route, item, index, finished, None))

    def _decision(self, route, item):
        bus = self.bus
        return decide(bus.faults, bus.seed, item.event.event_id, route.rule.subscription) if bus._faulty else NO_FAULT

    def _invoke(self, route, item, index, finished, reserved) -> None:
        bus = self.bus
        if reserved is None:
            reserved = bus.reserved(route.service, lambda r: self._invoke(route, item, index, finished, r))
            if reserved is None:
                return
        start, end = reserved
        envelope = item.payload if "Data" not in item.payload else item.payload["Data"]
        outcome, error = bus.run_handler(route, envelope, item.attempt, self._decision(route, item).fault,
                                         item.delivery_type == "REPLAY" or item.attempt > 1, start, end,
                                         item.delivery_type)
        if outcome == "failed":
            bus.stats.failed += 1
        bus.writer.add(INSERT_CUSTOM_DELIVERY, (envelope["id"], route.name, route.target, item.attempt,
                                                bus.timing.now(start), bus.timing.now(end), outcome, error,
                                                item.delivery_type))
        failure = ("COMPUTE_EXECUTION_ERROR", error) if outcome == "failed" else None
        bus.scheduler.push(end, finished, (index, failure))

    def _invoke_async(self, route, item, attempt: int, reserved=None) -> None:
        bus = self.bus
        if reserved is None:
            reserved = bus.reserved(route.service, lambda r: self._invoke_async(route, item, attempt, r))
            if reserved is None:
                return
        start, end = reserved
        envelope = item.payload if "Data" not in item.payload else item.payload["Data"]
        outcome, error = bus.run_handler(route, envelope, attempt, self._decision(route, item).fault,
                                         True, start, end, item.delivery_type)
        if outcome == "failed" and attempt <= len(LAMBDA_ASYNC_RETRY_DELAYS):
            bus.stats.failed += 1
            bus.scheduler.push(end + LAMBDA_ASYNC_RETRY_DELAYS[attempt - 1], self._invoke_async, (route, item, attempt + 1))
        elif outcome == "failed":
            bus.stats.dropped += 1
            outcome = "dead_lettered"
            bus.writer.add(INSERT_CUSTOM_DEAD_LETTER, (
                envelope["id"], route.name, route.target, bus._arns.get(route.name, ""),
                bus.plan.function_arn(self.service), FUNCTION_ERROR,
                f"Lambda discarded the event after {attempt} asynchronous attempts (the function has no on-failure "
                f"destination): {error}", "MaximumRetryAttempts", attempt - 1, bus.timing.now(end), None, "dropped",
                "{}", None))
        bus.writer.add(INSERT_CUSTOM_DELIVERY, (envelope["id"], route.name, route.target, attempt, bus.timing.now(start),
                                                bus.timing.now(end), outcome, error, item.delivery_type))
