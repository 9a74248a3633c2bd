"""A deployed plan behind the same small surface as the local bus: ``put_events``, ``call``, ``run``,
``redrive`` and ``db`` (the run database, filled from the deployment by ``run``).

The contract tests and the moto and aws backends drive a deployment through it.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Callable, Iterable

from yafdp import store
from yafdp.bus import BusStats, MeasuredTiming
from yafdp.catalog import Catalog
from yafdp.envelope import MAX_ENTRIES_PER_PUT, PublishError
from yafdp.plan import DeploymentPlan
from yafdp.publishing import DeliveryError, check_outbox

from yafdp.aws.clients import AwsClients
from yafdp.aws.dynamo_state import DynamoState
from yafdp.aws.export import export_run
from yafdp.aws.runtime import publish_entries

_DEPTHS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]


class NotSettledError(TimeoutError):
    """Messages were still on the service queues when the time to wait for them ran out."""


class AwsBus:
    """A deployment (on moto or AWS) driven like :class:`yafdp.bus.LocalBus`.

    Parameters
    ----------
    catalog, plan
        what was deployed.
    clients
        boto3 clients for where it was deployed.
    functions
        where the service functions run: :class:`~yafdp.aws.functions.InProcessFunctions` (moto) or
        :class:`~yafdp.aws.functions.LambdaFunctions` (AWS); started here, stopped by :meth:`close`.
    quiet_checks, check_seconds
        :meth:`run` returns once every service queue was seen empty this many times in a row, this far
        apart (SQS's counts are approximate on AWS: look several times).
    timeout
        how long :meth:`run` waits, by default.
    teardown
        what :meth:`close` does after stopping the functions, e.g. destroy the deployment.

    Attributes
    ----------
    until, explain
        optional: a further condition for :meth:`run` to be done (e.g. every order terminal), and what
        to say when it is not in time (e.g. which orders are stuck).
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, clients: AwsClients, functions, *,
                 quiet_checks: int = 2, check_seconds: float = 0.1, timeout: float = 120.0,
                 teardown: Callable[[], None] | None = None, clock: Callable[[], float] = time.time):
        self.catalog, self.plan, self.clients, self.functions, self.clock = catalog, plan, clients, functions, clock
        self.quiet_checks, self.check_seconds, self.timeout, self.teardown = quiet_checks, check_seconds, timeout, teardown
        self.until: Callable[[], bool] | None = None
        self.explain: Callable[[], str] | None = None
        self.db = store.connect(":memory:")
        self.origin = clock()  # recorded times are seconds since this moment
        self._urls = {s.name: clients.sqs.get_queue_url(QueueName=s.queue)["QueueUrl"] for s in plan.services}
        self._scheduled: list[tuple[float, int, Callable[[], object]]] = []
        self._redriven: list[tuple] = []
        self._closed = False
        self.stats = BusStats()
        self.writer = SimpleNamespace(writes=0)  # what finish() reads, as from the local bus's RunWriter
        self.timing = MeasuredTiming()  # no latency model: every recorded time is measured wall-clock
        functions.start()

    def put_events(self, entries: Iterable[dict], *, sender: str) -> list[str]:
        """Publish ``entries`` (``{"DetailType", "Detail"[, "Source"]}``) as service ``sender``, checked as
        the local bus checks them; all or nothing: a bad entry raises :class:`PublishError`."""
        entries = list(entries)
        if not 1 <= len(entries) <= MAX_ENTRIES_PER_PUT:
            raise PublishError(f"PutEvents takes 1 to {MAX_ENTRIES_PER_PUT} entries, got {len(entries)}")
        service = self.catalog.services.get(sender)
        if service is None:
            raise PublishError(f"unknown sender {sender!r}: not a service of the catalog")
        try:
            prepared = check_outbox(self.catalog, sender, service.may_emit(),
                                    [(e.get("Source"), e.get("DetailType"), e.get("Detail")) for e in entries])
        except DeliveryError as exc:
            raise PublishError(str(exc)) from None
        state = DynamoState(self.clients.dynamodb, self.plan.service(sender).table)
        return publish_entries(self.clients.events, [
            {"Source": source, "DetailType": detail_type, "Detail": text, "EventBusName": self.plan.bus}
            for source, detail_type, _, text in prepared], self.clock, state)

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point (e.g. ``place_order``) now, as a client would."""
        return self.functions.call(service, entrypoint, payload)

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` (e.g. a client's call) ``at`` seconds after :meth:`run` starts (wall clock)."""
        self._scheduled.append((at, len(self._scheduled), action))

    def now(self) -> float:
        """Seconds since the bus was opened: the clock every recorded time is on."""
        return self.clock() - self.origin

    def run(self, timeout: float | None = None) -> BusStats:
        """Run the scheduled actions at their times, wait until every service queue is empty (handled, or
        moved to its dead-letter queue) and :attr:`until` holds, then fill :attr:`db` from the deployment.

        Raises :class:`NotSettledError` after ``timeout`` seconds (default: the bus's).
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        started, scheduled = time.perf_counter(), sorted(self._scheduled)
        self._scheduled.clear()
        for at, _, action in scheduled:
            time.sleep(max(0.0, started + at - time.perf_counter()))
            action()
        while True:
            self.settle(max(0.0, deadline - time.monotonic()))
            if self.until is None or self.until():
                break
            if time.monotonic() > deadline:
                raise NotSettledError("the queues are empty but the run is not done"
                                      + (f": {self.explain()}" if self.explain else ""))
            time.sleep(self.check_seconds)
        return self.export()

    def settle(self, timeout: float) -> None:
        """Wait until every service queue was seen empty :attr:`quiet_checks` times in a row."""
        deadline, quiet = time.monotonic() + timeout, 0
        while quiet < self.quiet_checks:
            depths = self.queue_depths()
            quiet = quiet + 1 if not any(depths.values()) else 0
            if quiet < self.quiet_checks:
                if time.monotonic() > deadline:
                    busy = ", ".join(f"{q}: {n}" for q, n in depths.items() if n)
                    errors = "; ".join(self.functions.errors[-3:])
                    raise NotSettledError(f"after {timeout:.0f} s messages are still waiting ({busy})"
                                          + (f"; the pollers reported: {errors}" if errors else "")
                                          + (f"; {self.explain()}" if self.explain else ""))
                time.sleep(self.check_seconds)

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
        self.writer.writes = counts["state_writes"]
        outcomes = dict(self.db.execute("SELECT outcome, COUNT(*) FROM deliveries GROUP BY outcome"))
        self.stats = BusStats(
            published=self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0], delivered=outcomes.get("ok", 0),
            failed=outcomes.get("failed", 0), duplicates=outcomes.get("duplicate", 0),
            dead_lettered=self.db.execute("SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NULL").fetchone()[0])
        return self.stats

    def redrive(self) -> int:
        """Send every message in the service queues' dead-letter queues back to its queue (after the
        cause was fixed); returns how many. Run :meth:`run` afterwards to see them handled."""
        self.export()
        letters = self.db.execute("SELECT event_id, rule, target, rule_arn, target_arn, error_code, error_message,"
                                  " exhausted_retry_condition, retry_attempts, dead_lettered_at FROM dead_letters"
                                  " WHERE redriven_at IS NULL").fetchall()
        sqs, moved = self.clients.sqs, 0
        for service in self.plan.services:
            dead_url = sqs.get_queue_url(QueueName=service.queue_dead_letter_queue)["QueueUrl"]
            while messages := sqs.receive_message(QueueUrl=dead_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                                  VisibilityTimeout=30).get("Messages", []):
                for message in messages:
                    sqs.send_message(QueueUrl=self._urls[service.name], MessageBody=message["Body"])
                    sqs.delete_message(QueueUrl=dead_url, ReceiptHandle=message["ReceiptHandle"])
                    moved += 1
        at = self.now()
        self._redriven += [(*row, at) for row in letters if row[7] == "maxReceiveCount"]  # the ones moved above
        return moved

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
