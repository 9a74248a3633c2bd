"""A deployed plan (on moto or AWS) behind the :class:`~yafdp.runtime.interfaces.Bus` interface the local bus
implements: ``db`` (the run database) is filled from the deployment by :meth:`AwsBus.run` and :meth:`AwsBus.commit`.
"""

from __future__ import annotations

import datetime
import math
import time
from typing import Callable, Iterable

from yafdp.catalog import Catalog
from yafdp.errors import BackendError
from yafdp.plan import DeploymentPlan
from yafdp.runtime import rundb
from yafdp.runtime.interfaces import BusStats, FunctionRunner
from yafdp.runtime.envelope import MAX_ENTRIES_PER_PUT, iso_time
from yafdp.runtime.publishing import EntryRefusal, PreparedEntry, custom_bus_entries, prepare_put_events
from yafdp.custom_event_bus.limits import MAX_ENTRIES as CUSTOM_BUS_MAX_ENTRIES

from yafdp.backends.aws.clients import AwsClients
from yafdp.backends.aws.dynamo_state import DynamoState, items_of
from yafdp.backends.aws import queue_message
from yafdp.backends.aws.custom_bus import deployed_bus_arn
from yafdp.backends.aws.export import export_run
from yafdp.backends.aws.function import aws_entry, published_rows, publisher, put_entries

_DEPTHS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]


class NotSettledError(BackendError, TimeoutError):
    """The run was not done (messages on the service queues, orders not terminal) and nothing had moved for the
    time the bus waits for progress (or the time given to the run ran out)."""


class AwsBus:
    """A deployment (on moto or AWS) driven like :class:`yafdp.bus.LocalBus`.

    Parameters
    ----------
    catalog, plan
        what was deployed.
    clients
        boto3 clients for where it was deployed.
    functions
        where the service functions run: :class:`~yafdp.backends.aws.functions.InProcessFunctions` (moto) or
        :class:`~yafdp.backends.aws.functions.LambdaFunctions` (AWS); started here, stopped by :meth:`close`.
    quiet_checks, check_seconds
        :meth:`run` returns once every service queue was seen empty this many times in a row, this far
        apart (SQS's counts are approximate on AWS: look several times).
    timeout
        how long :meth:`run` waits for something to move (a service queue's depth, an order's status) before
        it gives up, in seconds: a run as slow as a busy machine makes it is still a run, one where nothing
        moves is stuck.
    teardown
        what :meth:`close` does after stopping the functions, e.g. destroy the deployment.
    db
        the run database to export into (default: a new one in memory).
    settle_orders
        :meth:`run` is also not done until every order is terminal (or dead letters explain why not).
    undelivered
        how many events the bus has accepted and not handed to their targets yet, when the bus can say (a Custom
        Event Bus served in this process, which delivers after PutEvents answers): :meth:`run` is not done until
        it is 0. None: the bus hands events over before PutEvents answers (moto's Classic bus).
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, clients: AwsClients, functions: FunctionRunner, *,
                 db=None, quiet_checks: int = 2, check_seconds: float = 0.1, timeout: float = 120.0,
                 teardown: Callable[[], None] | None = None, settle_orders: bool = False,
                 clock: Callable[[], float] = time.time, undelivered: Callable[[], int] | None = None):
        self.catalog, self.plan, self.clients, self.functions, self.clock = catalog, plan, clients, functions, clock
        self.quiet_checks, self.check_seconds, self.timeout, self.teardown = quiet_checks, check_seconds, timeout, teardown
        self.settle_orders, self.undelivered = settle_orders, undelivered
        self.db = db if db is not None else rundb.connect(":memory:")
        self.origin = clock()  # recorded times are seconds since this moment
        self._urls = {s.name: clients.sqs.get_queue_url(QueueName=s.queue)["QueueUrl"] for s in plan.services}
        self._scheduled: list[tuple[float, int, Callable[[], object]]] = []
        self._redriven: list[tuple] = []
        self._custom_bus_arn: str | None = None
        self._state_writes = 0
        self._closed = False
        self._moved = time.monotonic()  # when something last moved on the deployment (see _note)
        self._readings: dict[str, object] = {}
        self.stats = BusStats()
        functions.start()

    def put_events(self, entries: Iterable[dict], *, sender: str) -> dict:
        """Publish ``entries`` (``{"DetailType", "Detail"[, "Source", "Time", "Resources"]}``) as service ``sender``,
        checked per entry as the local bus checks them, then sent to EventBridge; returns PutEvents' per-entry
        answer ``{"FailedEntryCount", "Entries"}`` in request order (this project's refusals and EventBridge's
        merged). Raises :class:`PublishError` only for a request refused as a whole."""
        custom = self.plan.bus_kind == "custom"
        checked = prepare_put_events(self.catalog, sender, entries, CUSTOM_BUS_MAX_ENTRIES if custom else MAX_ENTRIES_PER_PUT)
        accepted = [c for c in checked if isinstance(c, PreparedEntry)]
        answers = iter([])
        if accepted:
            state = DynamoState(self.clients.dynamodb, self.plan.service(sender).table)
            if custom:
                sent = custom_bus_entries(accepted, self.catalog.bus.custom, None, False)
                events = publisher(self.plan, self.clients.events, self.clients.eventbridgev2, self._bus_arn())
            else:
                sent, events = [aws_entry(p, self.plan.bus) for p in accepted], self.clients.events
            published_at = self.clock()
            results = put_entries(events, sent, attempts=1)
            state.published(None, published_rows(sent, results, published_at, self.clock(), None,
                                                 self.catalog.saga.saga_id)[1])
            answers = iter(results)
        entries_out = [c.to_aws() if isinstance(c, EntryRefusal) else next(answers) for c in checked]
        response = {"FailedEntryCount": sum("ErrorCode" in e for e in entries_out), "Entries": entries_out}
        self.stats.refused += response["FailedEntryCount"]
        return response

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point (e.g. ``place_order``) now, as a client would."""
        return self.functions.call(service, entrypoint, payload)

    def _bus_arn(self) -> str:
        if self._custom_bus_arn is None:
            self._custom_bus_arn = deployed_bus_arn(self.plan, self.clients)
        return self._custom_bus_arn

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` (e.g. a client's call) ``at`` seconds after :meth:`run` starts (wall clock)."""
        self._scheduled.append((at, len(self._scheduled), action))

    def schedule_all(self, actions: Iterable[tuple[float, Callable[[], object]]]) -> None:
        """Run each ``(at, action)`` ``at`` seconds after :meth:`run` starts."""
        for at, action in actions:
            self.schedule(at, action)

    def now(self) -> float:
        """Seconds since the bus was opened: the clock every recorded time is on."""
        return self.clock() - self.origin

    def run(self, *, until: float | None = None, progress: Callable[[BusStats], None] | None = None) -> BusStats:
        """Run the scheduled actions at their times, wait until every service queue is empty (handled, or
        moved to its dead-letter queue) and, with ``settle_orders``, every order is terminal; then fill
        :attr:`db` from the deployment.

        Raises :class:`NotSettledError` when, before that, nothing moves for the bus's ``timeout`` seconds (no
        service queue's depth changes, no order's status), or the run's clock passes ``until`` seconds.
        """
        limit = None if until is None else time.monotonic() + max(0.0, until - self.now())
        started, scheduled = time.perf_counter(), sorted(self._scheduled)
        self._scheduled.clear()
        for at, _, action in scheduled:
            time.sleep(max(0.0, started + at - time.perf_counter()))
            action()
        self._moved = time.monotonic()
        while True:
            self.settle(limit)
            if not self.settle_orders or self.settled():
                break
            self._note("saga statuses", self.saga_statuses())
            if self._stalled(limit):
                raise NotSettledError(f"the queues are empty but the run is not done ({self._why_stopped(limit)}): "
                                      f"{self.stuck_orders()}")
            time.sleep(self.check_seconds)
        stats = self.export()
        if progress is not None:
            progress(stats)
        return stats

    def settle(self, limit: float | None = None) -> None:
        """Wait until every service queue was seen empty (and the bus with nothing to deliver, when it can say)
        :attr:`quiet_checks` times in a row. Raises
        :class:`NotSettledError` when the queues' depths stay the same for the bus's ``timeout`` seconds, or
        past ``limit`` (a :func:`time.monotonic` reading)."""
        quiet = 0
        while quiet < self.quiet_checks:
            depths = self.queue_depths()
            if self.undelivered is not None:
                depths["(the bus, to deliver)"] = self.undelivered()
            self._note("queue depths", depths)
            quiet = quiet + 1 if not any(depths.values()) else 0
            if quiet < self.quiet_checks:
                if self._stalled(limit):
                    busy = ", ".join(f"{q}: {n}" for q, n in depths.items() if n)
                    errors = "; ".join(self.functions.errors[-3:])
                    raise NotSettledError(f"{self._why_stopped(limit)}: messages are still waiting ({busy})"
                                          + (f"; the pollers reported: {errors}" if errors else "")
                                          + (f"; {self.stuck_orders()}" if self.settle_orders else ""))
                time.sleep(self.check_seconds)

    def _note(self, kind: str, reading) -> None:
        """A reading of the deployment (``kind``: its queues' depths, its orders' statuses): one that differs from
        the last of its kind is something that moved."""
        if self._readings.get(kind) != reading:
            self._readings[kind], self._moved = reading, time.monotonic()

    def _stalled(self, limit: float | None) -> bool:
        now = time.monotonic()
        return now - self._moved > self.timeout or (limit is not None and now > limit)

    def _why_stopped(self, limit: float | None) -> str:
        if limit is not None and time.monotonic() > limit:
            return "the time given to the run ran out"
        return f"nothing moved for {self.timeout:.0f} s"

    def queue_depths(self) -> dict[str, int]:
        """Messages on each service queue: waiting, being handled, or delayed."""
        depths = {}
        for service, url in self._urls.items():
            attributes = self.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_DEPTHS)["Attributes"]
            depths[service] = sum(int(attributes.get(name, 0)) for name in _DEPTHS)
        return depths

    def export(self) -> BusStats:
        """Fill :attr:`db` from the deployment as it is now; returns the counts."""
        counts = export_run(self.db, self.plan, self.clients, self.origin, tuple(self._redriven))
        self._state_writes = counts["state_writes"]
        outcomes = dict(self.db.execute("SELECT outcome, COUNT(*) FROM deliveries GROUP BY outcome"))
        self.stats = BusStats(
            published=self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0], delivered=outcomes.get("ok", 0),
            failed=outcomes.get("failed", 0), duplicates=outcomes.get("duplicate", 0),
            dead_lettered=self.db.execute("SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NULL").fetchone()[0])
        return self.stats

    def redrive(self, dead_letter_ids: Iterable[int] | None = None) -> int:
        """Send the messages of the service queues' dead-letter queues (those of ``dead_letters.id`` in
        ``ids``, as exported to :attr:`db`; all when None) back to their queues, after the cause was fixed;
        returns how many. Run :meth:`run` afterwards to see them handled."""
        self.export()
        rows = self.db.execute("SELECT id, event_id, rule, target, rule_arn, target_arn, error_code, error_message,"
                               " exhausted_retry_condition, retry_attempts, dead_lettered_at, kind, attributes FROM dead_letters"
                               " WHERE redriven_at IS NULL AND kind = 'queue'").fetchall()
        wanted = None if dead_letter_ids is None else set(dead_letter_ids)
        chosen = {(row[1], row[2]): row[1:] for row in rows if wanted is None or row[0] in wanted}
        sqs, moved, seen = self.clients.sqs, [], set()
        for service in self.plan.services:
            dead_url = sqs.get_queue_url(QueueName=service.queue_dead_letter_queue)["QueueUrl"]
            while messages := [m for m in sqs.receive_message(QueueUrl=dead_url, MaxNumberOfMessages=10,
                                                              WaitTimeSeconds=0, VisibilityTimeout=30,
                                                              AttributeNames=["All"], MessageAttributeNames=["All"]
                                                              ).get("Messages", [])
                               if m["MessageId"] not in seen]:
                for message in messages:
                    seen.add(message["MessageId"])
                    read = queue_message.read(message["Body"], message.get("MessageAttributes"))
                    key = (read.event_id, read.route)
                    if key not in chosen:
                        continue  # not asked for: it becomes visible again when its timeout ends
                    sqs.send_message(QueueUrl=self._urls[service.name], MessageBody=message["Body"],
                                     **_sent_again(message, service.fifo_queue))
                    sqs.delete_message(QueueUrl=dead_url, ReceiptHandle=message["ReceiptHandle"])
                    moved.append(key)
        at = self.now()
        self._redriven += [(*chosen[key][:10], at, *chosen[key][10:]) for key in moved]
        return len(moved)

    def replay(self, start: float, end: float, *, name: str = "replay", rules: Iterable[str] | None = None) -> int:
        """Start an EventBridge replay of the archive's events whose ``time`` lies between ``start`` and ``end`` (run
        seconds; "only events that occurred between the EventStartTime and EventEndTime are replayed", StartReplay,
        EventBridge API reference) to the bus, to every rule or only to ``rules`` (rule names, as ``FilterArns``);
        returns how many archived events the window holds.

        On AWS the replay runs asynchronously after this returns; moto replays at once but ignores the
        window, the filter and the rules' input transformers, so the replayed messages reach the handlers
        without the rule's name and fail there: the contract tests replay on the local bus only.
        """
        if self.plan.bus_kind == "custom":
            raise NotImplementedError("a Custom Event Bus has no replay API: a replay is a subscriber that starts in "
                                      "the past (UG 'Replaying events'); the local backend's LocalCustomBus.replay does "
                                      "that, this backend does not yet")
        self.export()
        first, last = math.ceil(self.origin + start), math.floor(self.origin + end)  # ``time`` has whole seconds
        count = self.db.execute("SELECT COUNT(*) FROM events WHERE time BETWEEN ? AND ? AND replay_name IS NULL",
                                (iso_time(first), iso_time(last))).fetchone()[0] if first <= last else 0
        destination: dict = {"Arn": self.plan.bus_arn()}
        if rules is not None:
            destination["FilterArns"] = [self.plan.rule_arn(rule) for rule in rules]
        moment = lambda seconds: datetime.datetime.fromtimestamp(self.origin + seconds, tz=datetime.timezone.utc)  # noqa: E731
        self.clients.events.start_replay(ReplayName=f"{self.plan.prefix}-{name}"[:64],
                                         EventSourceArn=self.plan.archive_arn(), EventStartTime=moment(start),
                                         EventEndTime=moment(end), Destination=destination)
        return count

    def report(self) -> dict:
        """The state writes the handlers made (for the cost model) and where the deployment is."""
        return {"state_writes": self._state_writes, "prefix": self.plan.prefix, "region": self.plan.region}

    def settled(self) -> bool:
        """Whether the saga has nothing left to do: every saga terminal, or dead letters to explain why not."""
        return (all(status in self.catalog.saga.terminal for status in self.saga_statuses().values())
                or any(self.dead_letter_depths().values()))

    def saga_statuses(self) -> dict[str, str]:
        """Every saga's status, read from its tracker's table (the catalog's ``saga.tracker``)."""
        tracker = self.catalog.saga.tracker
        return {saga_id: item.get(tracker.field) for saga_id, item in
                items_of(self.clients.dynamodb, self.plan.service(tracker.service).table, tracker.kind)}

    def dead_letter_depths(self) -> dict[str, int]:
        """Messages in each dead-letter queue of the deployment (service queues' and rules')."""
        names = ([s.queue_dead_letter_queue for s in self.plan.services]
                 + [r.target.dead_letter_queue for r in self.plan.routes if r.target.dead_letter_queue])
        sqs, depths = self.clients.sqs, {}
        for name in names:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            depths[name] = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                               ["Attributes"]["ApproximateNumberOfMessages"])
        return depths

    def stuck_orders(self) -> str:
        """The sagas that are not terminal, by status, for an error message."""
        return self.catalog.saga.stuck(self.saga_statuses()) or "every saga is terminal"

    def commit(self) -> None:
        """Bring :attr:`db` up to date with the deployment (what :func:`yafdp.runs.finish` reads)."""
        self.export()

    def close(self) -> None:
        """Stop consuming the queues, then run the teardown (destroy the deployment); once only."""
        if self._closed:
            return
        self._closed = True
        self.functions.stop()
        if self.teardown is not None:
            self.teardown()


def _sent_again(message: dict, fifo: bool) -> dict:
    """What a message moved back from a dead-letter queue keeps: its message attributes (a Custom Event Bus's name
    the subscriber) and, on a FIFO queue, its message group, with a fresh deduplication id (the queue would drop a
    copy of the original's within five minutes, "Exactly-once processing", SQS developer guide)."""
    extra: dict = {}
    if message.get("MessageAttributes"):
        extra["MessageAttributes"] = message["MessageAttributes"]
    if fifo:
        extra["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", message["MessageId"])
        extra["MessageDeduplicationId"] = f"redrive-{message['MessageId']}"[:128]
    return extra
