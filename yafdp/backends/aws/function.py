"""One service as a function on AWS: SQS messages (EventBridge events) in, handlers run, events out.

The same code runs inside Lambda (see :mod:`yafdp.backends.aws.lambda_handler`) and in-process on moto. A delivery
is committed to the service's table in one transaction with its processed marker, its outbox and its
trace row; the outbox is published after the commit and cleared after that, so a crash in between is
repaired when the message comes back (SQS redelivers what was not deleted): the marker says "done", the
outbox says "not yet published", and the events go out then.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from yafdp.catalog import Catalog
from yafdp.errors import BackendError, ConfigurationError
from yafdp.plan import DeploymentPlan
from yafdp.runtime.envelope import (MAX_ENTRIES_PER_PUT, PublishError, entry_size, iso_time, make_envelope,
                                    max_request_bytes)
from yafdp.runtime.faults import Faults, decide, injected_failure
from yafdp.runtime.publishing import (FUNCTION_ERROR, PUBLISH_ATTEMPTS, PUBLISH_BACKOFF_SECONDS, RETRYABLE_ENTRY_ERRORS,
                                     INVALID_ARGUMENT, DeliveryError, check_outbox, custom_bus_entries)
from yafdp.runtime.scheduling import schedule_calls, scheduled_entries
from yafdp.runtime.unit_of_work import BufferedUnitOfWork

from yafdp.backends.aws import queue_message
from yafdp.backends.aws.dynamo_state import TASK_OUTPUT, ConflictError, DynamoState
from yafdp.backends.tasks import TaskRunner, task_event


@dataclass(frozen=True)
class FunctionConfig:
    """What a service function needs to know about its deployment; Lambda gets it as environment variables."""

    service: str
    prefix: str
    bus: str
    table: str
    max_receive_count: int
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    bus_kind: str = "classic"  # or "custom": the Custom Event Bus, published to by its ARN
    bus_arn: str = ""  # the Custom Event Bus's ARN (its id is EventBridge's, known once the bus exists)

    @classmethod
    def for_service(cls, plan: DeploymentPlan, service: str, faults: Faults = Faults(), seed: int = 0,
                    bus_arn: str = "") -> "FunctionConfig":
        """The configuration of ``service``'s function in ``plan`` (``bus_arn``: the deployed Custom Event Bus's)."""
        spec = plan.service(service)
        return cls(service, plan.prefix, plan.bus, spec.table, spec.max_receive_count, faults, seed, plan.bus_kind,
                   bus_arn)

    def to_environment(self) -> dict[str, str]:
        """The Lambda function's environment variables.

        Examples
        --------
        >>> FunctionConfig("payment", "demo", "demo-saga", "demo-payment", 5).to_environment()["YAFDP_SERVICE"]
        'payment'
        """
        return {"YAFDP_SERVICE": self.service, "YAFDP_PREFIX": self.prefix, "YAFDP_BUS": self.bus,
                "YAFDP_TABLE": self.table, "YAFDP_MAX_RECEIVE_COUNT": str(self.max_receive_count),
                "YAFDP_FAULTS": json.dumps(self.faults.to_dict(), sort_keys=True), "YAFDP_SEED": str(self.seed),
                "YAFDP_BUS_KIND": self.bus_kind, "YAFDP_BUS_ARN": self.bus_arn}

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> "FunctionConfig":
        """The configuration the deployer set as the function's environment; :class:`KeyError` if incomplete."""
        missing = [k for k in ("YAFDP_SERVICE", "YAFDP_PREFIX", "YAFDP_BUS", "YAFDP_TABLE") if k not in env]
        if missing:
            raise KeyError(f"the function's environment lacks {', '.join(missing)}: redeploy with `yafdp deploy`")
        return cls(env["YAFDP_SERVICE"], env["YAFDP_PREFIX"], env["YAFDP_BUS"], env["YAFDP_TABLE"],
                   int(env.get("YAFDP_MAX_RECEIVE_COUNT", "5")), Faults(**json.loads(env.get("YAFDP_FAULTS", "{}"))),
                   int(env.get("YAFDP_SEED", "0")), env.get("YAFDP_BUS_KIND", "classic"), env.get("YAFDP_BUS_ARN", ""))


CONFLICT = "VERSION_CONFLICT"  # the error code of a delivery whose commit raced another call's
CALL_ATTEMPTS = 3  # an API call that raced another is rerun on fresh state this many times at most


class PublishFailedError(BackendError):
    """EventBridge refused some entries of a PutEvents call; they stay in the outbox and are retried."""


class ServiceFunction:
    """A service's handlers behind one function: :meth:`handle_batch` for SQS, :meth:`call` for its API,
    :meth:`run_task` for a Step Functions Task (the orchestration style).

    Parameters
    ----------
    config
        the service, its bus and table, the faults to inject.
    catalog, plan, world
        the catalog and plan the deployment was made from, and the marketplace data.
    events, dynamodb
        boto3 clients (passed in, so the function runs against moto or AWS alike).
    clock
        wall-clock seconds (epoch), for the trace.
    """

    def __init__(self, config: FunctionConfig, catalog: Catalog, plan: DeploymentPlan, world: Any,
                 events, dynamodb, clock: Callable[[], float] = time.time, scheduler=None):
        self.config, self.catalog, self.world, self.events, self.clock = config, catalog, world, events, clock
        self.plan, self.custom, self.scheduler = plan, plan.bus_kind == "custom", scheduler
        self.state = DynamoState(dynamodb, config.table)
        self.rules = {r.name: r for r in plan.routes if r.service == config.service}
        self.tasks = TaskRunner(catalog)
        self.handlers = {name: catalog.handler(config.service, r.target.handler) for name, r in self.rules.items()}

    # ---------------------------------------------------------------- the SQS event source

    def handle_batch(self, sqs_event: dict) -> dict:
        """Handle an SQS batch; the messages that failed are reported back, the others are done.

        Returns ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`` (Lambda's partial batch
        response: the event source mapping deletes every other message of the batch).
        """
        failures = []
        for record in sqs_event.get("Records", []):
            if failures and str(record.get("eventSourceARN", "")).endswith(".fifo"):
                # A FIFO queue: "your function should stop processing messages after the first failure and return
                # all failed and unprocessed messages in batchItemFailures", so no later message of a group
                # overtakes the failed one (Lambda developer guide, "Handling errors for an SQS event source",
                # https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html).
                failures.append({"itemIdentifier": record["messageId"]})
                continue
            try:
                self.handle_message(record)
            except Exception:  # the message stays on the queue and comes back after its visibility timeout
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    def handle_message(self, record: dict) -> str:
        """Handle one SQS message (an event with its rule's or subscriber's name, see
        :mod:`~yafdp.backends.aws.queue_message`); returns the outcome."""
        message = queue_message.read(record["body"], record.get("messageAttributes"))
        rule = self.rules.get(message.route)
        if rule is None:
            raise LookupError(f"message {record.get('messageId')} on {self.config.service}'s queue names "
                              f"{message.route!r}, which is not one of this service's "
                              f"{'subscribers' if self.custom else 'rules'} {sorted(self.rules)}")
        envelope = _envelope(message.event)
        event_id, attempt = envelope["id"], int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        marker = f"{rule.name}#{event_id}"
        started = self.clock()
        delivery = {"kind": "delivery", "event_id": event_id, "rule": rule.name, "target": rule.target.id,
                    "attempt": attempt, "delivered_at": started, "delivery_type": message.delivery_type}
        if self.state.processed(marker):
            self._publish(marker, self.state.pending_outbox(marker))  # a crash left them unpublished
            self.state.record({**delivery, "finished_at": self.clock(), "outcome": "duplicate", "error": None})
            return "duplicate"
        reads = self.state.snapshot()
        uow = BufferedUnitOfWork(self.config.service, reads, self.world, self.clock, self.catalog.saga)
        try:
            self.handlers[rule.name](envelope, uow)
            if self.config.faults.any:
                crash = injected_failure(decide(self.config.faults, self.config.seed, event_id, rule.subscription).fault,
                                         attempt)
                if crash is not None:
                    raise crash
            prepared = check_outbox(self.catalog, self.config.service, frozenset(rule.emits), uow.outbox)
            schedules = self._schedule_calls(uow)
        except Exception as exc:
            code, message = (exc.code, exc.message) if isinstance(exc, DeliveryError) else \
                (FUNCTION_ERROR, f"{type(exc).__name__}: {exc}")
            self._failed(delivery, attempt, code, message)
            raise
        entries = self._entries(prepared, marker)
        done = {**delivery, "finished_at": self.clock(), "outcome": "ok", "error": None, "writes": len(uow.writes)}
        try:
            committed = self.state.commit(uow.writes, reads=reads.versions, marker=marker, outbox_key=marker,
                                          outbox=entries, trace=[done])
        except ConflictError as exc:  # raced another call: reported as a batch item failure, rerun on fresh state
            self._failed(delivery, attempt, CONFLICT, str(exc))
            raise
        if not committed:
            self.state.record({**delivery, "finished_at": self.clock(), "outcome": "duplicate", "error": None})
            return "duplicate"
        self._publish(marker, entries)
        self._schedule(schedules)
        return "ok"

    def _failed(self, delivery: dict, attempt: int, code: str, message: str) -> None:
        # The last receive before the queue's redrive moves the message to its dead-letter queue.
        outcome = "dead_lettered" if attempt >= self.config.max_receive_count else "failed"
        self.state.record({**delivery, "finished_at": self.clock(), "outcome": outcome, "error": f"{code}: {message}"})

    # ---------------------------------------------------------------- a Step Functions Task

    def run_task(self, payload: dict) -> dict:
        """Run the handler a Step Functions Task names (``{"task", "rule", "handler", "event" | "failure"}``, the
        ``Payload`` of :func:`yafdp.plan.step_functions.state_machine_definition`'s Tasks, which Step Functions'
        ``lambda:invoke`` hands the function) and answer the Task's output ``{"emitted", "event"}``.

        The handler's writes, its processed marker, its trace and the events it published are committed in one
        transaction, as for a delivery. The events are recorded, not put on the bus: in the orchestration the state
        machine decides what runs next, and the bus's rules would run the choreography as well. A failure event is
        raised as :class:`~yafdp.backends.tasks.SagaStepFailedError` named after it (Lambda reports the class
        name as the error, which the state's ``Catch`` matches). A Task that Step Functions invokes again for the
        same event (a ``Retry``) finds the work done and answers the same, without running the handler twice.
        A handler's exception propagates (the Task fails with its name, as Lambda reports it).
        """
        subscription = self.tasks.subscription(payload)
        rule = next((r for r in self.rules.values() if r.subscription == subscription.rule), None)
        if rule is None:
            raise LookupError(f"the task names rule {subscription.rule!r} of service {subscription.service!r}; this "
                              f"function is {self.config.service!r}'s")
        event_id = _envelope(task_event(payload))["id"]
        marker = f"{rule.name}#{event_id}"
        delivery = {"kind": "delivery", "event_id": event_id, "rule": rule.name, "target": rule.target.id,
                    "attempt": 1, "delivered_at": self.clock()}
        for attempt in range(1, CALL_ATTEMPTS + 1):
            answered = self.state.get(TASK_OUTPUT, marker)
            if answered is not None:  # committed by an earlier invocation of this Task
                self.state.record({**delivery, "finished_at": self.clock(), "outcome": "duplicate", "error": None})
                return self.tasks.output(answered["events"])
            reads = self.state.snapshot()
            uow = BufferedUnitOfWork(self.config.service, reads, self.world, self.clock, self.catalog.saga)
            try:
                prepared = self.tasks.run({**payload, "event": _envelope(task_event(payload))}, uow)
                schedules = self._schedule_calls(uow)
            except Exception as exc:
                code, message = (exc.code, exc.message) if isinstance(exc, DeliveryError) else \
                    (FUNCTION_ERROR, f"{type(exc).__name__}: {exc}")
                self._failed(delivery, 1, code, message)
                raise
            published_at = self.clock()
            envelopes = [make_envelope(str(uuid.uuid4()), p.source, p.detail_type, p.detail,
                                       published_at if p.time is None else p.time, region=self.plan.region,
                                       account=self.plan.account, resources=p.resources) for p in prepared]
            rows = [{"kind": "event", "event_id": e["id"], "order_id": p.detail.get("order_id"),
                     "detail_type": p.detail_type, "source": p.source, "published_at": published_at,
                     "detail": p.text, "time": e["time"], "published_by": marker} for p, e in zip(prepared, envelopes)]
            done = {**delivery, "finished_at": self.clock(), "outcome": "ok", "error": None, "writes": len(uow.writes)}
            try:
                committed = self.state.commit({**uow.writes, (TASK_OUTPUT, marker): {"events": envelopes}},
                                              reads=reads.versions, marker=marker, outbox_key=marker, outbox=[],
                                              trace=[done, *rows])
            except ConflictError as exc:  # raced another call: run again on fresh state
                if attempt == CALL_ATTEMPTS:
                    self._failed(delivery, 1, CONFLICT, str(exc))
                    raise
                continue
            if committed:
                self._schedule(schedules)
                return self.tasks.output(envelopes)
        raise ConflictError(self.config.table, [f"{TASK_OUTPUT}/{marker}"])

    # ---------------------------------------------------------------- the service's API

    def call(self, entrypoint: str, payload) -> object:
        """Call an API entry point (e.g. ``place_order``): its writes and events are committed together.

        A retried call with the same payload publishes what an earlier attempt committed but did not
        publish. A call that raced another on the same items is rerun on fresh state, up to
        :data:`CALL_ATTEMPTS` times, then :class:`~yafdp.backends.aws.dynamo_state.ConflictError` is raised.
        Exceptions (``OrderRejectedError``, :class:`PublishError`) reach the caller with nothing
        stored or published.
        """
        spec = self.catalog.entrypoint(self.config.service, entrypoint)
        outbox_key = f"call#{entrypoint}#" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
        self._publish(outbox_key, self.state.pending_outbox(outbox_key))
        for attempt in range(1, CALL_ATTEMPTS + 1):
            reads = self.state.snapshot()
            uow = BufferedUnitOfWork(self.config.service, reads, self.world, self.clock, self.catalog.saga)
            result = self.catalog.handler(self.config.service, entrypoint)(payload, uow)
            try:
                prepared = check_outbox(self.catalog, self.config.service, frozenset(spec.emits), uow.outbox)
                schedules = self._schedule_calls(uow)
            except DeliveryError as exc:
                raise PublishError(str(exc)) from None
            entries = self._entries(prepared, outbox_key)
            called = {"kind": "call", "entrypoint": entrypoint, "at": self.clock(), "writes": len(uow.writes)}
            try:
                self.state.commit(uow.writes, reads=reads.versions, marker=None, outbox_key=outbox_key,
                                  outbox=entries, trace=[called])
                break
            except ConflictError:
                if attempt == CALL_ATTEMPTS:
                    raise
        self._publish(outbox_key, entries)
        self._schedule(schedules)
        return result

    # ---------------------------------------------------------------- EventBridge Scheduler

    def _schedule_calls(self, uow: BufferedUnitOfWork) -> list[tuple[str, dict]]:
        """The Scheduler calls of a unit of work's schedule requests, checked before anything is committed
        (:func:`~yafdp.runtime.scheduling.schedule_calls`; raises ``DeliveryError``)."""
        if not uow.schedules:
            return []
        return schedule_calls(self.catalog, self.plan, self.config.service, uow.schedules, self.clock(),
                              bus_arn=self.config.bus_arn or None)

    def put_scheduled(self, request: dict) -> list[str]:
        """Publish the event a one-time schedule carries, when this function is the schedule's target (a Custom Event
        Bus whose ``schedule_target`` is ``"function"``; :func:`~yafdp.runtime.scheduling.schedule_target`): the
        schedule's ``Input`` ``{"schedule", "Source", "DetailType", "Detail"}``, put on the bus as this service
        publishes any event. Returns the published event ids.

        It is checked as the request that made the schedule was: the ``Source`` must be this service's, the event one
        it may schedule, the detail its schema's; anything else raises
        :class:`~yafdp.runtime.publishing.DeliveryError` and nothing is published. EventBridge Scheduler invokes a
        target again when an invocation fails (its retry policy), so the outbox is kept under the schedule's name
        (``schedule#<name>``, the ``published_by`` of the local emulator's scheduled events): an invocation again
        publishes only what an earlier one committed and did not publish, and on a Custom Event Bus with
        deduplication by id the entry's ``DeduplicationId`` names the schedule."""
        try:
            [(source, detail_type, text)] = scheduled_entries({"Arn": self.plan.function_arn(self.config.service),
                                                               "Input": json.dumps(request)})
        except ValueError as exc:
            raise DeliveryError(INVALID_ARGUMENT, f"not a schedule's event: {exc}") from None
        service = self.catalog.services[self.config.service]
        if source != service.source:
            raise DeliveryError(INVALID_ARGUMENT, f"the schedule {request['schedule']!r} puts an event of {source!r} "
                                                  f"on the bus; this function is {service.name!r}'s ({service.source})")
        outbox_key = f"schedule#{request['schedule']}"
        if not self.state.processed(outbox_key):
            prepared = check_outbox(self.catalog, service.name, service.may_schedule(),
                                    [(None, detail_type, json.loads(text))])
            self.state.commit({}, marker=outbox_key, outbox_key=outbox_key, outbox=self._entries(prepared, outbox_key),
                              trace=[])
        return self._publish(outbox_key, self.state.pending_outbox(outbox_key))

    def _schedule(self, calls: list[tuple[str, dict]]) -> None:
        """Make the Scheduler calls of a committed unit of work: create and delete its one-time schedules. A schedule
        already there is not created again, one already gone (it fired, or was deleted) not deleted again. They are
        made after the commit and the publication: a function that dies in between leaves the order without its
        deadline (the outbox keeps events, not schedule requests), a window this project accepts and says here."""
        from botocore.exceptions import ClientError

        if not calls:
            return
        if self.scheduler is None:
            raise ConfigurationError(f"{self.config.service}'s function has no EventBridge Scheduler client, and its "
                                     "catalog schedules events: pass ServiceFunction(..., scheduler=...)")
        for call, request in calls:
            try:
                getattr(self.scheduler, call)(**request)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("ConflictException", "ResourceNotFoundException"):
                    raise

    # ---------------------------------------------------------------- publishing

    def _entries(self, prepared: list, outbox_key: str) -> list[str]:
        """The PutEvents entries (JSON text, for the outbox) of what a unit of work published under ``outbox_key``:
        on a Custom Event Bus with its event group and a DeduplicationId naming ``outbox_key`` and the entry's
        place, so publishing the same outbox again is answered DEDUPLICATED."""
        if self.custom:
            return [json.dumps(e) for e in custom_bus_entries(list(prepared), self.catalog.bus.custom, outbox_key,
                                                               self.plan.deduplication == "id")]
        return [json.dumps(aws_entry(p, self.config.bus)) for p in prepared]

    def _publish(self, outbox_key: str, entries: list[str]) -> list[str]:
        return publish_entries(self.events, [json.loads(e) for e in entries], self.clock, self.state, outbox_key,
                               saga_id=self.catalog.saga.saga_id)


def put_entries(events, entries: list[dict], *, attempts: int = PUBLISH_ATTEMPTS,
                backoff: float = PUBLISH_BACKOFF_SECONDS, sleep: Callable[[float], None] = time.sleep,
                rng: random.Random | None = None) -> list[dict]:
    """PutEvents ``entries`` (10 per call) and send again, with backoff, the entries refused with a retryable
    code, up to ``attempts`` tries. Returns one result per entry in order: ``{"EventId"}`` or the last
    ``{"ErrorCode", "ErrorMessage"}`` (a non-retryable refusal is never sent again)."""
    rng = rng or random.Random()
    results: list[dict | None] = [None] * len(entries)
    waiting = list(range(len(entries)))
    for attempt in range(1, attempts + 1):
        again = []
        for chunk in request_chunks(entries, waiting):
            answer = events.put_events(Entries=[entries[i] for i in chunk])
            for i, result in zip(chunk, answer["Entries"]):
                results[i] = result
                if result.get("ErrorCode") in RETRYABLE_ENTRY_ERRORS:
                    again.append(i)
        if not again or attempt == attempts:
            break
        sleep(rng.uniform(0, backoff * 2 ** (attempt - 1)))
        waiting = again
    return results


def request_chunks(entries: list[dict], indexes: list[int]) -> list[list[int]]:
    """``indexes`` of ``entries`` (as boto3's ``put_events`` takes them) cut into PutEvents requests, in order: at most
    10 entries and at most :func:`~yafdp.runtime.envelope.max_request_bytes` of entry sizes each, so that no request is
    refused as a whole (an entry alone over the limit goes alone, and is refused).

    Examples
    --------
    >>> entry = {"Source": "s", "DetailType": "t", "Detail": "x" * 400_000}
    >>> request_chunks([entry] * 5, [0, 1, 2, 3, 4])
    [[0, 1], [2, 3], [4]]
    """
    limit, chunks, size = max_request_bytes(), [], 0
    for i in indexes:
        entry = entries[i]
        entry_bytes = entry_size(entry["Source"], entry["DetailType"], entry.get("Detail"),
                                 tuple(entry.get("Resources") or ()), with_time=entry.get("Time") is not None)
        if not chunks or len(chunks[-1]) == MAX_ENTRIES_PER_PUT or size + entry_bytes > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(i)
        size += entry_bytes
    return chunks


def publish_entries(events, entries: list[dict], clock: Callable[[], float], state: DynamoState,
                    outbox_key: str | None = None, *, saga_id: Callable[[dict], str | None],
                    **retrying) -> list[str]:
    """Publish ``entries`` with :func:`put_entries` (retryable refusals sent again with backoff), record the
    published ones in ``state``'s trace (each with the saga ``saga_id(detail)`` names) and clear ``outbox_key``.

    Raises :class:`PublishFailedError` when entries are still refused: the published ones are recorded, the
    refused ones stay in the outbox (alone), so the delivery fails and its redelivery publishes exactly them
    (at least once, never an event lost silently).
    """
    if not entries:
        return []
    published_at = clock()  # before the call: on moto the event reaches its queues before PutEvents returns
    results = put_entries(events, entries, **retrying)
    ids, rows, refused = published_rows(entries, results, published_at, clock(), outbox_key, saga_id)
    if not refused:
        state.published(outbox_key, rows)
        return ids
    state.published(None, rows)
    if outbox_key is not None:  # keep only what is still to publish
        state.commit({}, marker=None, outbox_key=outbox_key, outbox=[json.dumps(e) for e, _ in refused], trace=[])
    code, message = refused[0][1].get("ErrorCode"), refused[0][1].get("ErrorMessage")
    raise PublishFailedError(f"EventBridge refused {len(refused)} of {len(entries)} entries: {code}: {message}")


def published_rows(entries: list[dict], results: list[dict], published_at: float, answered_at: float,
                   outbox_key: str | None, saga_id: Callable[[dict], str | None]
                   ) -> tuple[list[str], list[dict], list[tuple[dict, dict]]]:
    """What a PutEvents of ``entries`` answered with ``results`` leaves in the trace (each event row with the saga
    ``saga_id(detail)`` names): ``(event ids, trace rows,
    refused (entry, result) pairs)``. An event row on a Custom Event Bus also holds its SystemMetadata
    (``EventGroupId``, ``DeduplicationId``), ``SequenceNumber`` and ``ingested_at`` (when PutEvents answered: the
    bus does not say when it ingested); an entry answered ``DEDUPLICATED`` stored nothing and is a
    ``deduplicated`` row naming the event it repeats."""
    ids, rows, refused = [], [], []
    for entry, result in zip(entries, results):
        if "EventId" not in result or result.get("ErrorCode"):
            refused.append((entry, result))
            continue
        system = entry.get("SystemMetadata") or {}
        custom = {"event_group_id": system.get("EventGroupId"), "deduplication_id": system.get("DeduplicationId"),
                  "ingested_at": answered_at} if "SequenceNumber" in result else {}
        if result.get("SuccessCode") == "DEDUPLICATED":
            rows.append({"kind": "deduplicated", "event_id": result["EventId"], "published_at": published_at,
                         "published_by": outbox_key, **custom})
            continue
        detail = json.loads(entry["Detail"])
        ids.append(result["EventId"])
        rows.append({"kind": "event", "event_id": result["EventId"], "order_id": saga_id(detail),
                     "detail_type": entry["DetailType"], "source": entry["Source"], "published_at": published_at,
                     "detail": entry["Detail"], "time": iso_time(published_at if entry.get("Time") is None else
                                                                  _epoch(entry["Time"])), "published_by": outbox_key,
                     **custom, **({"sequence_number": result["SequenceNumber"]} if custom else {})})
    return ids, rows, refused


def _epoch(value) -> float:
    """An entry's ``Time`` as epoch seconds (the entries hold epoch seconds; boto3 also takes a datetime)."""
    return value.timestamp() if isinstance(value, datetime.datetime) else float(value)


class CustomBusPublisher:
    """A Custom Event Bus's ``PutEvents`` (the ``eventbridgev2`` client) as :func:`put_entries` calls a Classic
    bus's: ``put_events(Entries=...)``, here on the bus ``bus_arn``, with content-based deduplication when the
    catalog asks for it (``DeduplicationConfiguration``, API Reference PutEvents)."""

    def __init__(self, client, bus_arn: str, content_based: bool = False):
        self.client, self.bus_arn = client, bus_arn
        self.extra = {"DeduplicationConfiguration": {"DeduplicationType": "CONTENT_BASED"}} if content_based else {}

    def put_events(self, Entries: list[dict]) -> dict:  # noqa: N803 (boto3's member name)
        return self.client.put_events(EventBusArn=self.bus_arn, Entries=Entries, **self.extra)


def publisher(plan: DeploymentPlan, events, eventbridgev2, bus_arn: str):
    """What a deployment's functions publish with: the Classic bus's ``events`` client, or a
    :class:`CustomBusPublisher` on the Custom Event Bus ``bus_arn``."""
    if plan.bus_kind != "custom":
        return events
    return CustomBusPublisher(eventbridgev2, bus_arn, plan.deduplication == "content")


def aws_entry(prepared, bus: str) -> dict:
    """A prepared entry (:class:`~yafdp.runtime.publishing.PreparedEntry`) as boto3's ``put_events`` takes it."""
    entry = {"Source": prepared.source, "DetailType": prepared.detail_type, "Detail": prepared.text, "EventBusName": bus}
    if prepared.resources:
        entry["Resources"] = list(prepared.resources)
    if prepared.time is not None:
        entry["Time"] = prepared.time
    return entry


def _envelope(event: dict) -> dict:
    """The event as EventBridge delivers it: moto's input transformer leaves ``time`` as epoch seconds."""
    if isinstance(event.get("time"), (int, float)):
        event = {**event, "time": iso_time(event["time"])}
    return event
