"""A subscriber at work: it reads its bus from its position, keeps the events its filters match, and delivers
them to its one target, in order within each event group when it is ``FIFO``, retrying failures under its
retry policy and sending a record to its on-failure queue when it gives up.

Behaviour and sources (UG = EventBridge User Guide, Custom Event Bus chapter):

- ``FIFO`` delivers the events of one group in publish order; "an event that cannot be delivered holds back the
  later events of its own group only; other groups keep flowing", for as long as it is retried (UG "Ordering",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html). ``UNORDERED`` delivers
  in parallel with no ordering guarantee.
- "Every delivery failure goes through RetryPolicy first"; retries stop at ``MaxRetryAttempts`` or
  ``MaxEventAgeInSeconds``, whichever comes first; then a record goes to the ``OnFailureConfiguration`` queue, or
  the event is dropped if there is none (``EventsDropped``) (UG "Retrying event delivery",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-retry.html).
- Delivery happens only while ``State`` is ``RUNNING``; a ``STOPPED`` subscriber's events accumulate on the bus,
  bounded by retention; resuming with ``LAST_PROCESSED`` delivers the backlog oldest first, ``LATEST`` skips it
  (UG "Updating", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-update.html).
- ``LATEST`` starts at the end of the bus; ``POINT_IN_TIME`` reads retained history from the horizon or a
  timestamp, catches up and keeps going (or stops at ``EndPoint``); history is delivered as ``REPLAY``
  (UG "Replaying", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-replay.html).

Where the documentation is silent the subscriber follows :class:`~yafdp.custom_event_bus.choices.Choices`
(one event per group in flight; the group moves on after a terminal failure; backoff; event age from the first
attempt).
"""

from __future__ import annotations

import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import Protocol

from yafdp.custom_event_bus import dead_letters
from yafdp.custom_event_bus.configuration import SubscriberConfig
from yafdp.custom_event_bus.events import StoredEvent
from yafdp.custom_event_bus.targets import Delivery, DeliveryItem, Failures, shape


class DeliveryObserver(Protocol):
    """Who is told what a subscriber did (a local run records it in ``run.db``; metrics count it).

    ``settled(subscriber, delivery, failures)``: an invocation of the target ended, ``failures`` by item index.
    ``gave_up(subscriber, items, record, outcome)``: events ran out of retries; ``outcome`` is
    ``"dead_lettered"`` (the record reached the on-failure queue), ``"dropped"`` (no queue configured) or
    ``"lost"`` (the queue could not take it: ``OnFailureDestinationFailed``)."""

    def settled(self, subscriber: "Subscriber", delivery: Delivery, failures: Failures) -> None: ...

    def gave_up(self, subscriber: "Subscriber", items: list[DeliveryItem],
                record: dead_letters.DeadLetterRecord, outcome: str) -> None: ...


@dataclass
class _Work:
    """An event this subscriber must deliver, with its attempts so far."""

    event: StoredEvent
    delivery_type: str
    attempts: int = 0
    first_attempt_at: float | None = None


class Subscriber:
    """One subscriber of ``bus`` (an :class:`~yafdp.custom_event_bus.bus.EventBus`): its configuration (:class:`SubscriberConfig`), position and deliveries.

    ``cursor`` is the sequence of the next event of the bus it will look at. ``metrics`` counts what AWS's
    ``AWS/EventsV2`` metrics count (``FilterMatched``, ``EventsDelivered``, ``RetryInvocationAttempts``,
    ``OnFailureDestinationDelivered``, ``OnFailureDestinationFailed``, ``EventsDropped``, ``TargetInvocations``,
    ``EventTransformationFailures``; UG "Monitoring",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-observability.html).
    """

    def __init__(self, bus, config: SubscriberConfig, arn: str, ident: str, created_at: float,
                 cursor: int, tags: dict, rng: random.Random):
        self.bus, self.config, self.arn, self.ident = bus, config, arn, ident
        self.created_at = self.last_modified = created_at
        self.cursor = cursor
        self.live_from = bus.store.next_seq  # events before this were on the bus when the subscriber was created
        self.started_in_past = config.starting_position == "POINT_IN_TIME"
        self.tags = tags
        self.deleted = self.revoked = False
        self.metrics: Counter = Counter()
        self.in_flight = 0
        self._retrying = 0  # UNORDERED: events waiting out their backoff before the next try
        self._rng = rng
        self._queue: deque[_Work] = deque()  # UNORDERED: ready to send
        self._groups: dict[object, deque[_Work]] = {}  # FIFO: each group's events, its head first
        self._ready: deque[object] = deque()  # FIFO: groups whose head may be sent now
        self._waiting: set[object] = set()  # FIFO: groups with their head in flight or waiting for a retry
        self._kicked = False
        self._at_end = False

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def running(self) -> bool:
        return self.config.state == "RUNNING" and not self.deleted and not self.revoked

    @property
    def replaying(self) -> bool:
        """Whether it is still reading history it started before (POINT_IN_TIME, not caught up yet)."""
        return self.started_in_past and self.cursor < self.bus.store.next_seq and not self._at_end

    @property
    def backlog(self) -> int:
        """Events it has taken and not delivered or given up on yet (waiting, or waiting to be tried again), plus
        those on the bus it has not read."""
        waiting = len(self._queue) + sum(len(g) for g in self._groups.values()) + self._retrying
        return waiting + max(0, self.bus.store.next_seq - self.cursor) * (not self._at_end)

    @property
    def matching_backlog(self) -> int:
        """Of :attr:`backlog`, the events it will deliver: those taken and not delivered yet, plus those on the bus
        it has not read that its filters match (still in retention, before its ``EndPoint``). ``backlog`` also
        counts the unread events its filters will skip. Reads the bus without moving the cursor."""
        waiting = len(self._queue) + sum(len(g) for g in self._groups.values()) + self._retrying
        store, end = self.bus.store, self.config.end_point
        if self._at_end:
            return waiting
        for seq in range(max(self.cursor, store.first_seq), store.next_seq):
            event = store.get(seq)
            if end is not None and event.ingested_at >= end:
                break
            waiting += self.config.filter.matches(event, self._delivery_type(event))
        return waiting

    # ---------------------------------------------------------------- taking events

    def offer(self, event: StoredEvent, data_matched: bool | None) -> None:
        """A live event just ingested: taken at once when this subscriber is running and has read everything
        before it; a subscriber behind (stopped, or replaying) reads it in turn from the bus."""
        if self.cursor != event.seq or not self.running or self._at_end:
            return
        self.cursor += 1
        if self._past_end(event):
            return
        delivery_type = self._delivery_type(event)
        if self.config.filter.matches(event, delivery_type, data_matched=data_matched):
            self._take(event, delivery_type)
            self.kick()

    def _pull(self) -> None:
        """Read the bus from the cursor to its end (a replaying, resumed or lagging subscriber)."""
        store = self.bus.store
        while self.cursor < store.next_seq and not self._at_end:
            if self.cursor < store.first_seq:  # expired from retention while stopped: skipped (SPEC A.12)
                self.cursor = store.first_seq
                continue
            event = store.get(self.cursor)
            if self._past_end(event):
                return
            self.cursor += 1
            delivery_type = self._delivery_type(event)
            if self.config.filter.matches(event, delivery_type):
                self._take(event, delivery_type)

    def _past_end(self, event: StoredEvent) -> bool:
        end = self.config.end_point
        if end is not None and event.ingested_at >= end:  # EndPoint exclusive (SPEC A.11)
            self._at_end = True
            if self.bus.choices.stop_at_end_point:
                self.config = self.bus.replace_state(self, "STOPPED")
            return True
        return False

    def _delivery_type(self, event: StoredEvent) -> str:
        """``REPLAY`` for an event that was on the bus before this subscriber existed (read from retained
        history), ``LIVE`` for one published since (a stopped subscriber's backlog too, unless
        ``Choices.backlog_is_replay``)."""
        if event.seq < self.live_from or (self.bus.choices.backlog_is_replay and event.seq < self.bus.store.next_seq
                                          and self.cursor <= event.seq and not self.running):
            return "REPLAY"
        return "LIVE"

    def _take(self, event: StoredEvent, delivery_type: str) -> None:
        self.metrics["FilterMatched"] += 1
        work = _Work(event, delivery_type)
        if not self.config.fifo:
            self._queue.append(work)
            return
        key = self._group_key(event)
        queue = self._groups.get(key)
        if queue is None:
            queue = self._groups[key] = deque()
        queue.append(work)
        if len(queue) == 1 and key not in self._waiting:
            self._ready.append(key)

    def _group_key(self, event: StoredEvent) -> object:
        if event.group is not None:
            return event.group
        return ("", event.event_id) if self.bus.choices.ungrouped_is_own_group else (event.account, None)

    # ---------------------------------------------------------------- delivering

    def kick(self) -> None:
        """Deliver what can be delivered, on the clock's next step (events ingested at the same moment share
        a batch)."""
        if not self._kicked and self.running:
            self._kicked = True
            self.bus.clock.call_at(self.bus.clock.now(), self._dispatch)

    def _dispatch(self) -> None:
        self._kicked = False
        if not self.running:
            return
        self._pull()
        size = self.config.batch_size
        if self.config.fifo:
            ready = self._ready
            while ready:
                keys = [ready.popleft() for _ in range(min(size, len(ready)))]
                self._waiting.update(keys)
                self._send([self._groups[key][0] for key in keys])
        else:
            queue = self._queue
            while queue:
                self._send([queue.popleft() for _ in range(min(size, len(queue)))])

    def _send(self, works: list[_Work]) -> None:
        now = self.bus.clock.now()
        items, shaped, failures = [], [], {}
        for index, work in enumerate(works):
            work.attempts += 1
            if work.first_attempt_at is None:
                work.first_attempt_at = now
            else:
                self.metrics["RetryInvocationAttempts"] += 1
            self.metrics["EventDeliveryAttempts"] += 1
            item = DeliveryItem(work.event, work.delivery_type, work.attempts)
            failure = shape(item, self.config)
            items.append(item)
            if failure is None:
                shaped.append(index)
            else:
                self.metrics["EventTransformationFailures"] += 1
                failures[index] = failure
        delivery = Delivery(self.name, self.arn, self.bus.arn, self.config, items)
        if not shaped:
            self._settle(works, delivery, failures)
            return
        target = self.bus.target(self.config.target_arn)
        if target is None:
            for index in shaped:
                failures[index] = ("RESOURCE_NOT_FOUND", f"the target {self.config.target_arn} does not exist")
            self._settle(works, delivery, failures)
            return
        sent = Delivery(self.name, self.arn, self.bus.arn, self.config, [items[i] for i in shaped])
        self.in_flight += 1
        self.metrics["TargetInvocations"] += 1
        answered = [False]

        def done(target_failures: Failures) -> None:
            if answered[0]:
                raise RuntimeError(f"the target of subscriber {self.name} answered one invocation twice")
            answered[0] = True
            self.in_flight -= 1
            for position, failure in target_failures.items():
                failures[shaped[position]] = failure
            self._settle(works, delivery, failures)

        target.deliver(sent, done)

    def _settle(self, works: list[_Work], delivery: Delivery, failures: Failures) -> None:
        if self.deleted:
            return
        self.bus.observer.settled(self, delivery, failures)
        now, policy = self.bus.clock.now(), self.config.retry
        given_up: list[tuple[_Work, DeliveryItem, str, str, str]] = []
        for index, work in enumerate(works):
            failure = failures.get(index)
            if failure is None:
                self.metrics["EventsDelivered"] += 1
                self._done(work)
                continue
            code, message = failure
            delay = self._backoff(work.attempts)
            since = work.first_attempt_at if self.bus.choices.event_age_from_first_attempt else work.event.ingested_at
            if work.attempts - 1 >= policy.max_retry_attempts:
                given_up.append((work, delivery.items[index], code, message, "MaximumRetryAttempts"))
            elif now + delay - since > policy.max_event_age_seconds:
                given_up.append((work, delivery.items[index], code, message, "MaximumEventAgeInSeconds"))
            else:
                self._retrying += not self.config.fifo  # a FIFO group keeps its head: counted already
                self.bus.clock.call_at(now + delay, lambda work=work: self._retry(work))
        if given_up:
            self._give_up(given_up)
        self.kick()

    def _retry(self, work: _Work) -> None:
        if self.deleted:
            return
        if self.config.fifo:
            self._ready.appendleft(self._group_key(work.event))  # the group's head goes again, before the rest
            self._waiting.discard(self._group_key(work.event))
        else:
            self._retrying -= 1
            self._queue.appendleft(work)
        self.kick()

    def _done(self, work: _Work) -> None:
        """The event is delivered or given up on: a FIFO group moves on to its next event."""
        if not self.config.fifo:
            return
        key = self._group_key(work.event)
        queue = self._groups[key]
        queue.popleft()
        self._waiting.discard(key)
        if queue:
            self._ready.append(key)
        else:
            del self._groups[key]

    def _give_up(self, given_up: list) -> None:
        work, _, code, message, exhausted = given_up[0]
        items = [item for _, item, _, _, _ in given_up]
        record = dead_letters.record(bus_arn=self.bus.arn, subscriber_arn=self.arn, target_arn=self.config.target_arn,
                                     code=code, message=message, exhausted=exhausted, retries=work.attempts - 1,
                                     items=items)
        if self.config.on_failure_arn is None:
            outcome = "dropped"
            self.metrics["EventsDropped"] += len(items)
        elif self.bus.dead_letter(self.config.on_failure_arn, record):
            outcome = "dead_lettered"
            self.metrics["OnFailureDestinationDelivered"] += len(items)
        else:
            outcome = "lost"
            self.metrics["OnFailureDestinationFailed"] += len(items)
        self.bus.observer.gave_up(self, items, record, outcome)
        for work, *_ in given_up:
            if self.bus.choices.advance_group_after_terminal_failure or not self.config.fifo:
                self._done(work)

    def _backoff(self, attempts: int) -> float:
        return retry_backoff(attempts, self.bus.choices, self._rng)

    # ---------------------------------------------------------------- pause, resume, delete

    def stopped(self) -> None:
        """``State`` became ``STOPPED``: deliveries in flight finish; nothing new is sent."""

    def resumed(self, position: str) -> None:
        """``STOPPED`` -> ``RUNNING``: ``LAST_PROCESSED`` goes on from where it stopped (the backlog oldest first);
        ``LATEST`` skips the backlog and takes only what is published from now on."""
        if position == "LATEST":
            self._queue.clear()
            self._groups = {k: deque([q[0]]) for k, q in self._groups.items() if k in self._waiting}  # in flight
            self._ready = deque()
            self.cursor = self.bus.store.next_seq
        self.kick()

    def delete(self) -> None:
        """Stop delivering for good; what was waiting is forgotten (the bus still retains the events)."""
        self.deleted = True
        self._queue.clear()
        self._groups.clear()
        self._ready.clear()


def retry_backoff(attempts: int, choices, rng: random.Random) -> float:
    """Seconds a subscriber waits before it tries an event again after ``attempts`` failed tries: exponential from
    ``choices.retry_base_seconds``, doubling, capped at ``choices.retry_cap_seconds``, with equal jitter drawn
    from ``rng``. AWS documents no back-off schedule (UG retry,
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-retry.html; SPEC A.10): a
    :class:`~yafdp.custom_event_bus.choices.Choices` setting. The timing model's replay uses it too.

    Examples
    --------
    >>> from yafdp.custom_event_bus.choices import DEFAULT_CHOICES
    >>> 0.5 <= retry_backoff(1, DEFAULT_CHOICES, random.Random(1)) <= 1.0
    True
    """
    delay = min(choices.retry_cap_seconds, choices.retry_base_seconds * 2 ** (attempts - 1))
    return delay / 2 + rng.uniform(0, delay / 2)
