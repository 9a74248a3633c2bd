"""An Amazon SQS queue in this process, standard or FIFO, read by its function's event source mapping: what a
Custom Event Bus subscriber sends its service's events to.

Standard queue: every message on its own, at least once, in no order. FIFO queue: "messages in the same message
group are processed in order ... one at a time"; a message whose receive failed blocks its group until it is
received again successfully or moved to the dead-letter queue; a message sent with a deduplication id already
seen in the last 5 minutes is accepted but not delivered ("Exactly-once processing in Amazon SQS",
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-exactly-once-processing.html;
"Using the Lambda event source mapping with FIFO queues",
https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html). A failed receive makes the message
visible again when its visibility timeout, counted from the receive, runs out; the receive after
``maxReceiveCount`` receives moves it to the queue's dead-letter queue (SQS redrive policy,
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html). As on
the Classic bus's local queues, every receive is a batch of one message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from yafdp.backends.local.scheduler import Scheduler

DEDUPLICATION_INTERVAL_SECONDS = 300.0  # SQS FIFO's deduplication interval (5 minutes)


@dataclass
class Message:
    """A message on a local queue: its ``body`` (the payload a subscriber delivered, kept decoded), group and
    deduplication ids (FIFO), ``attributes``, when it was sent (virtual seconds) and how often it was received;
    ``meta`` carries what the run needs to record its fate (the event id, the subscriber, an injected fault)."""

    body: object
    sent_at: float
    group_id: str | None = None
    deduplication_id: str | None = None
    attributes: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    receive_count: int = 0


class LocalQueue:
    """A queue with its event source mapping: ``receive(message)`` runs the function on a message and must
    call :meth:`finished` once, when the function is done; ``dead_letter(message, at)`` takes a message moved
    to the queue's dead-letter queue."""

    def __init__(self, name: str, arn: str, *, fifo: bool, visibility_timeout: float, max_receive_count: int,
                 scheduler: Scheduler, receive: Callable[[Message], None],
                 dead_letter: Callable[[Message, float], None]):
        self.name, self.arn, self.fifo = name, arn, fifo
        self.visibility_timeout, self.max_receive_count = visibility_timeout, max_receive_count
        self.scheduler, self.receive, self.dead_letter = scheduler, receive, dead_letter
        self._groups: dict[str, deque[Message]] = {}
        self._seen: dict[str, float] = {}  # FIFO deduplication ids -> when first sent
        self._seen_order: deque[tuple[float, str]] = deque()
        self.deduplicated = 0

    def send(self, message: Message, delay: float = 0.0) -> bool:
        """``SendMessage``: returns False when a FIFO queue deduplicated it (accepted, not delivered)."""
        now = self.scheduler.vt
        if self.fifo:
            if message.group_id is None:
                raise ValueError(f"FIFO queue {self.name} needs a MessageGroupId")
            if message.deduplication_id is not None and self._duplicate(message.deduplication_id, now):
                self.deduplicated += 1
                return False
            queue = self._groups.get(message.group_id)
            if queue is None:
                queue = self._groups[message.group_id] = deque()
            queue.append(message)
            if len(queue) == 1:
                self.scheduler.push(now + delay, self._deliver_head, (message.group_id,))
            return True
        self.scheduler.push(now + delay, self._deliver, (message,))
        return True

    def _duplicate(self, deduplication_id: str, now: float) -> bool:
        seen, order = self._seen, self._seen_order
        while order and order[0][0] <= now - DEDUPLICATION_INTERVAL_SECONDS:
            _, old = order.popleft()
            if seen.get(old, now) <= now - DEDUPLICATION_INTERVAL_SECONDS:
                del seen[old]
        if deduplication_id in seen:
            return True
        seen[deduplication_id] = now
        order.append((now, deduplication_id))
        return False

    def _deliver_head(self, group_id: str) -> None:
        queue = self._groups.get(group_id)
        if queue:
            self._deliver(queue[0])

    def _deliver(self, message: Message) -> None:
        message.receive_count += 1
        self.receive(message)

    def finished(self, message: Message, ok: bool, received_at: float, ended_at: float) -> None:
        """The function is done with ``message``: deleted when ``ok``; otherwise it becomes visible again when
        its visibility timeout (from the receive) runs out, and then is received again or, past
        ``maxReceiveCount`` receives, moved to the dead-letter queue. A FIFO group moves on only then."""
        if ok:
            self._next(message, ended_at)
            return
        visible = max(ended_at, received_at + self.visibility_timeout)
        self.scheduler.push(visible, self._visible_again, (message, visible))

    def _visible_again(self, message: Message, at: float) -> None:
        if message.receive_count >= self.max_receive_count:
            self.dead_letter(message, at)
            self._next(message, at)
        else:
            self._deliver(message)

    def _next(self, message: Message, at: float) -> None:
        if not self.fifo:
            return
        queue = self._groups[message.group_id]
        queue.popleft()
        if queue:
            self.scheduler.push(at, self._deliver_head, (message.group_id,))
        else:
            del self._groups[message.group_id]
