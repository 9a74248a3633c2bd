"""What Lambda's SQS event source mapping does, done in this process: for moto, which cannot execute
Lambda code without a container engine.

Like the mapping, a poller long-polls its queue for up to ``batch_size`` messages, invokes the function
with them as an SQS event, deletes the messages the function did not report in ``batchItemFailures``
and leaves those it did (or the whole batch, if the function raised or answered what Lambda reads as a
complete failure, see :func:`failed_messages`) to come back after the queue's visibility timeout, which SQS
counts from the receive; after ``maxReceiveCount`` receives the queue's redrive policy moves them to its
dead-letter queue. It keeps up to ``concurrency`` batches in hand at once, each handled in a thread of its own,
as the mapping runs several invocations of the function at once; it receives only while one of them is free, so
an idle queue costs one long poll whatever the concurrency. On real AWS none of this runs: Lambda does it.

One thing AWS guarantees cannot be had by receiving as Lambda does: a batch is never received again while the
function that has it still runs (Lambda refuses a mapping whose function timeout is longer than the queue's
visibility timeout, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html, and stops the
function at its timeout). Here the function runs in this process, as slowly as a busy machine makes it: a
handler slower than the visibility timeout (2 s on moto) would see its batch received again, and again, until
the redrive policy dead-letters work that never failed. So a batch is received hidden for :data:`HELD_SECONDS`,
and what the function did not finish is given back with what was left of the queue's visibility timeout, counted
from the receive, as on AWS.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from yafdp.runtime.faults import Faults, decide

from yafdp.backends.aws import queue_message

log = logging.getLogger(__name__)
_COPY = "yafdp-duplicate-of"  # message attribute of an injected duplicate
# How long a received batch stays hidden while the function has it: a message's visibility timeout by default on
# AWS (30 s, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html),
# which the aws backend's queues have. A handler here takes milliseconds, seconds on a starved machine; a batch
# lost with a receive that failed (moto answered it with an error) is back within this time too.
HELD_SECONDS = 30


def sqs_record(message: dict, queue_arn: str, region: str) -> dict:
    """An SQS message (as ``ReceiveMessage`` returns it) as Lambda hands it to a function: one element of
    ``event["Records"]``.

    Examples
    --------
    >>> record = sqs_record({"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": "{}",
    ...                      "Attributes": {"ApproximateReceiveCount": "2"}}, "arn:aws:sqs:eu-west-1:1:q", "eu-west-1")
    >>> record["messageId"], record["attributes"]["ApproximateReceiveCount"], record["eventSource"]
    ('m-1', '2', 'aws:sqs')
    """
    return {
        "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
        "attributes": message.get("Attributes", {}), "messageAttributes": _lambda_attributes(message),
        "md5OfBody": message.get("MD5OfBody"), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _lambda_attributes(message: dict) -> dict:
    """A message's attributes as Lambda's SQS event writes them (``stringValue``, ``dataType``, lists empty)
    ("Using Lambda with Amazon SQS", example SQS message event,
    https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html)."""
    return {name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                   "stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType")}
            for name, value in message.get("MessageAttributes", {}).items()}


def failed_messages(response, message_ids: list[str]) -> set[str]:
    """The messages of a batch (``message_ids``) that Lambda leaves on the queue after the function answered
    ``response`` (a mapping with ``ReportBatchItemFailures``): the ones it reported, or all of them when Lambda
    reads the answer as a complete failure.

    As the Lambda developer guide has it ("Handling errors for an SQS event source in Lambda", success and failure
    conditions, https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html): a complete success
    is an empty or null ``batchItemFailures`` list, or an empty or null response; a complete failure is "an
    invalid JSON response", an empty string or null ``itemIdentifier``, an ``itemIdentifier`` with a bad key name,
    or one "with a message ID that doesn't exist" in the batch. Where the guide is silent this reads the answer the
    way that loses nothing: a response that is not an object, or a ``batchItemFailures`` that is not a list, or an
    element that is not an object, fails the whole batch.

    Examples
    --------
    >>> ids = ["m-1", "m-2", "m-3"]
    >>> sorted(failed_messages({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, ids))
    ['m-2']
    >>> sorted(failed_messages({"batchItemFailures": [{"itemIdentifier": "m-9"}]}, ids))  # not in the batch
    ['m-1', 'm-2', 'm-3']
    >>> failed_messages({"batchItemFailures": None}, ids), failed_messages(None, ids), failed_messages({}, ids)
    (set(), set(), set())
    """
    everything = set(message_ids)
    if response is None:
        return set()
    if not isinstance(response, dict):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything  # null, empty, a bad key name, or a message that is not in the batch
        failed.add(identifier)
    return failed


class QueuePoller:
    """One queue's event source mapping, emulated.

    Parameters
    ----------
    sqs
        a boto3 SQS client.
    queue_url, queue_arn
        the queue to poll.
    function
        ``function(event, context) -> {"batchItemFailures": [...]}``, e.g.
        :meth:`yafdp.backends.aws.function.ServiceFunction.handle_batch` wrapped as a Lambda handler.
    batch_size, wait_seconds
        the mapping's ``BatchSize``, and how long one receive waits for messages (long polling).
    concurrency
        how many batches may be in hand at once (the function's concurrent invocations).
    visibility_timeout
        the queue's ``VisibilityTimeout`` (seconds): a message the function did not finish becomes visible again
        this long after it was received.
    faults, seed, subscriptions
        injected duplicates (SQS is at-least-once; this forces it), decided per (event, rule) as on every
        backend: ``subscriptions`` maps the deployed rule (or subscriber) names to the catalog's.
    """

    def __init__(self, sqs, queue_url: str, queue_arn: str, function: Callable[[dict, object], dict], *,
                 batch_size: int = 10, wait_seconds: int = 1, visibility_timeout: int = 30, faults: Faults = Faults(),
                 seed: int = 0, subscriptions: dict[str, str] | None = None, concurrency: int = 1):
        self.sqs, self.queue_url, self.queue_arn, self.function = sqs, queue_url, queue_arn, function
        self.batch_size, self.wait_seconds, self.visibility_timeout = batch_size, wait_seconds, visibility_timeout
        self.concurrency = concurrency
        self.faults, self.seed, self.subscriptions = faults, seed, subscriptions or {}
        self.region = sqs.meta.region_name
        self.errors: list[str] = []
        self._polling: _Polling | None = None

    def poll_once(self) -> int:
        """Receive one batch, invoke the function, delete what succeeded; returns how many messages came."""
        messages, received = self._receive()
        if messages:
            self._handle(messages, received)
        return len(messages)

    def _receive(self) -> tuple[list[dict], float]:
        """A batch, received hidden for :data:`HELD_SECONDS`, and when (:func:`time.monotonic`)."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=HELD_SECONDS, AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        return messages, time.monotonic()

    def _handle(self, messages: list[dict], received: float) -> None:
        """Invoke the function on a batch, delete the messages it did not report as failed and give back the rest."""
        self._duplicate(messages)
        try:
            response = self.function({"Records": [sqs_record(m, self.queue_arn, self.region) for m in messages]}, None)
        except Exception as exc:  # a function error fails the whole batch, as with Lambda
            self.errors.append(f"{type(exc).__name__}: {exc}")
            failed = {m["MessageId"] for m in messages}
        else:
            failed = failed_messages(response, [m["MessageId"] for m in messages])
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:start + 10])])
        self._give_back([m for m in messages if m["MessageId"] in failed], received)

    def _give_back(self, messages: list[dict], received: float) -> None:
        """The messages the function did not finish, visible again once the queue's visibility timeout has
        passed since they were received (at once if it has): ChangeMessageVisibility counts the new timeout
        from its own call (API_ChangeMessageVisibility.html, above), so it is given what is left."""
        left = max(0, math.ceil(self.visibility_timeout - (time.monotonic() - received)))
        for start in range(0, len(messages), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": left}
                for i, m in enumerate(messages[start:start + 10])])

    def _duplicate(self, messages: list[dict]) -> None:
        if not self.faults.duplicate_rate:
            return
        for m in messages:
            first = m.get("Attributes", {}).get("ApproximateReceiveCount") == "1"
            copy = _COPY in m.get("MessageAttributes", {})  # a copy is not copied again
            if first and not copy and self._decided_duplicate(m):
                attributes = m.get("Attributes", {})
                fifo = {k: attributes[k] for k in ("MessageGroupId", "MessageDeduplicationId") if k in attributes}
                # On a FIFO queue the copy carries the original's deduplication id, so SQS drops it (a hand-off
                # made twice within five minutes is delivered once, "Exactly-once processing", SQS developer guide)
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=m["Body"], **fifo, MessageAttributes={
                    **m.get("MessageAttributes", {}), _COPY: {"DataType": "String", "StringValue": m["MessageId"]}})

    def _decided_duplicate(self, message: dict) -> bool:
        try:
            read = queue_message.read(message["Body"], message.get("MessageAttributes"))
        except ValueError:
            return False  # not a message of ours: nothing to inject
        if read.route is None or read.event_id is None:
            return False
        return decide(self.faults, self.seed, read.event_id, self.subscriptions.get(read.route, read.route)).duplicate

    def start(self) -> None:
        """Start polling in a thread of its own."""
        self._polling = _Polling(self.concurrency)
        threading.Thread(target=self._loop, args=(self._polling,), name=f"poller {self.queue_arn}", daemon=True).start()

    def stop(self, wait: bool = True) -> None:
        """Stop polling; with ``wait``, return once the batches in hand (if any) are finished.

        A receive under way (a long poll, up to ``wait_seconds``) is not waited for: its thread ends once it is
        answered, and gives the messages it brought back to the queue at once, unhandled (visible again, their
        receive counted, as every receive is)."""
        if self._polling is not None:
            self._polling.stop(wait)

    def _loop(self, polling: _Polling) -> None:
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"function {self.queue_arn}") as batches:
            while not polling.stopped.is_set():
                if not polling.free.acquire(timeout=0.5):
                    continue  # every batch slot is busy
                try:
                    messages, received = self._receive()
                except Exception as exc:  # e.g. the queue was deleted under us: say so, keep the loop alive
                    polling.free.release()
                    if not polling.stopped.is_set():  # after the stop, the deployment may be gone: nothing to say
                        self._failed(exc)
                        polling.stopped.wait(0.5)
                    continue
                if messages and polling.take():
                    batches.submit(self._handle_then_free, messages, received, polling)
                else:
                    polling.free.release()
                    if messages:  # stopped while the receive was under way
                        self._give_back_now(messages)

    def _handle_then_free(self, messages: list[dict], received: float, polling: _Polling) -> None:
        try:
            self._handle(messages, received)
        except Exception as exc:  # e.g. a delete refused: the messages come back after HELD_SECONDS at most
            self._failed(exc)
        finally:
            polling.done()

    def _give_back_now(self, messages: list[dict]) -> None:
        try:
            for start in range(0, len(messages), 10):
                self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages[start:start + 10])])
        except Exception:  # the deployment is being removed: its messages go with it
            pass

    def _failed(self, exc: Exception) -> None:
        self.errors.append(f"{type(exc).__name__}: {exc}")
        log.warning("poller for %s: %s", self.queue_arn, exc)


class _Polling:
    """One run of a poller's loop, from :meth:`QueuePoller.start` to :meth:`QueuePoller.stop`: its batch slots
    (``free``), how many batches are in hand, and whether it was stopped. Each start has its own, so a loop stopped
    while its receive was under way ends by itself without touching the next one's slots."""

    def __init__(self, concurrency: int):
        self.free, self.stopped = threading.Semaphore(concurrency), threading.Event()
        self._changed, self._in_hand = threading.Condition(), 0

    def take(self) -> bool:
        """Count a received batch in hand; False (not counted) once stopped."""
        with self._changed:
            if self.stopped.is_set():
                return False
            self._in_hand += 1
            return True

    def done(self) -> None:
        with self._changed:
            self._in_hand -= 1
            self._changed.notify_all()
        self.free.release()

    def stop(self, wait: bool) -> None:
        with self._changed:
            self.stopped.set()
            if wait:
                self._changed.wait_for(lambda: self._in_hand == 0)
