"""A deployment's run as a ``run.db`` (the schema every backend writes, see :mod:`yafdp.store`).

State and the trace come from the service tables; dead letters from the queues'
dead-letter queues (read without removing anything). Times become seconds since ``origin`` (the run's
start), like the local backend's measured wall-clock times.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict

from yafdp.plan import DeploymentPlan
from yafdp.quoting import excerpt
from yafdp.reading import MAX_JSON_DEPTH, json_deeper_than
from yafdp.runtime.rundb import (INSERT_CUSTOM_DEAD_LETTER, INSERT_CUSTOM_DELIVERY, INSERT_CUSTOM_EVENT,
                                 INSERT_DEDUPLICATED, INSERT_STATE, MalformedRunError)

from yafdp.backends.aws import queue_message
from yafdp.backends.aws.clients import AwsClients
from yafdp.backends.aws.dynamo_state import OUTBOX, PROCESSED, TASK_OUTPUT, TRACE, scan

TRACE_KINDS = ("event", "delivery", "call", "deduplicated")  # what the functions write under TRACE
_REPLACED = ("events", "deliveries", "dead_letters", "state", "deduplicated")


def export_run(db: sqlite3.Connection, plan: DeploymentPlan, clients: AwsClients, origin: float | None,
               redriven: tuple[tuple, ...] = ()) -> dict:
    """Fill ``db`` (opened with :func:`yafdp.runtime.rundb.connect`) from the deployment; replaces what an earlier
    export wrote there. ``redriven``: ``dead_letters`` rows (all columns but ``id``) of dead letters that
    were sent back to their queues, which are no longer in a dead-letter queue to be found. ``origin`` (epoch
    seconds) is the run's start, which recorded times count from; None takes the first time the trace holds.

    Each dead letter says its kind: ``queue`` (the service queue's DLQ: its ``attributes`` are the message's
    SQS attributes, with ``ApproximateReceiveCount`` the receives the function's trace recorded, since reading
    the DLQ counts as a receive too; its error columns are the function's last error from that trace), ``rule``
    (the rule's DLQ: ``attributes`` are EventBridge's message attributes) or, on a Custom Event Bus,
    ``subscriber`` (a subscriber's on-failure queue: the record that points to the event is ``body``).

    Returns counts: ``{"events", "deliveries", "dead_letters", "unpublished_outboxes", "state_writes"}``
    (``state_writes``: items the handlers and API calls wrote, as the local bus counts them).
    """
    events, deliveries, calls, state, deduplicated, outboxes = [], [], [], [], [], 0
    for service in plan.services:
        for pk, sk, item in scan(clients.dynamodb, service.table):
            if pk == TRACE:
                row = _trace_row(service.table, sk, item)
                {"event": events, "delivery": deliveries, "call": calls, "deduplicated": deduplicated}[row["kind"]].append(row)
            elif pk in (PROCESSED, TASK_OUTPUT):
                continue  # the 'ok' delivery rows and the events are run.db's record of what was processed
            elif pk == OUTBOX:
                outboxes += 1
            else:
                state.append((service.name, pk, sk, item["item"]["S"]))
    dead = _dead_letters(plan, clients, deliveries)
    if origin is None:  # a deployment exported after its run: its first recorded moment is the start
        origin = min([e["published_at"] for e in events] + [d["delivered_at"] for d in deliveries], default=0.0)
    db.execute("BEGIN")
    for table in _REPLACED:
        db.execute(f"DELETE FROM {table}")
    # On a Custom Event Bus an event row also holds its SystemMetadata, sequence number and ingestion time, a
    # delivery its aws:DeliveryType: NULL where the bus is Classic or the function did not learn it.
    db.executemany(INSERT_CUSTOM_EVENT, [
        (e["event_id"], e["order_id"], e["detail_type"], e["source"], e["published_at"] - origin, e["detail"], e["time"],
         None, e.get("published_by"), e.get("event_group_id"), e.get("deduplication_id"), e.get("sequence_number"),
         e.get("ingested_at")) for e in sorted(events, key=lambda e: (e.get("sequence_number") or "", e["published_at"]))])
    db.executemany(INSERT_CUSTOM_DELIVERY, [
        (d["event_id"], d["rule"], d["target"], d["attempt"], d["delivered_at"] - origin, d["finished_at"] - origin,
         d["outcome"], d["error"], d.get("delivery_type")) for d in sorted(deliveries, key=lambda d: d["delivered_at"])])
    db.executemany(INSERT_DEDUPLICATED, [
        (d["published_at"] - origin, d.get("ingested_at"), d["event_id"], d.get("deduplication_id"),
         d.get("event_group_id"), d.get("published_by")) for d in deduplicated])
    db.executemany(INSERT_STATE, state)
    db.executemany(INSERT_CUSTOM_DEAD_LETTER, [(*d[:9], d[9] - origin, None, *d[10:]) for d in dead]
                   + [(*r, None) if len(r) == 13 else r for r in redriven])
    db.execute("COMMIT")
    return {"events": len(events), "deliveries": len(deliveries), "dead_letters": len(dead),
            "unpublished_outboxes": outboxes,
            "state_writes": sum(row.get("writes", 0) for row in calls + deliveries if row.get("outcome", "ok") == "ok")}


def _trace_row(table: str, key: str, item: dict) -> dict:
    """A trace item's row, or :class:`~yafdp.runtime.rundb.MalformedRunError` (one line naming the table and the
    item) for one no function writes: not a JSON object of a known kind, or nested deeper than a run's records
    may be (``yafdp.reading.MAX_JSON_DEPTH``: Python's parser fails near 1,000 levels)."""
    text = item.get("row", {}).get("S")
    problem = None
    if not isinstance(text, str) or json_deeper_than(text):
        problem = "is not a string of JSON" if not isinstance(text, str) else f"nests deeper than {MAX_JSON_DEPTH} levels"
    else:
        try:
            row = json.loads(text)
        except ValueError:
            row = None
        if not isinstance(row, dict) or row.get("kind") not in TRACE_KINDS:
            problem = f"is not a JSON object of kind {', '.join(TRACE_KINDS)}"
    if problem:
        raise MalformedRunError(f"DynamoDB table {table}: trace item {excerpt(key, quoted=False, masked=False)} "
                                f"{problem}: not what a function writes, nothing exported")
    return row


def _dead_letters(plan: DeploymentPlan, clients: AwsClients, deliveries: list[dict]) -> list[tuple]:
    """Dead letters as ``dead_letters`` rows (``redriven_at`` left out), from the service queues' and the rules'
    dead-letter queues."""
    history = defaultdict(list)
    for d in deliveries:
        history[(d["event_id"], d["rule"])].append(d)
    rows = []
    for service in plan.services:  # SQS redrive: the handler failed maxReceiveCount times
        for message in _peek(clients.sqs, service.queue_dead_letter_queue):
            read = queue_message.read(message["Body"], message.get("MessageAttributes"))
            rule, event_id = read.route, read.event_id
            tried = sorted(history.get((event_id, rule), []), key=lambda d: d["attempt"])
            last = tried[-1] if tried else {"error": "unknown: no delivery of it was recorded", "finished_at": 0.0}
            code, _, message_text = (last["error"] or "").partition(": ")
            attributes = {k: v for k, v in message.get("Attributes", {}).items()
                          if k not in ("ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp")}
            attributes["ApproximateReceiveCount"] = str(len(tried))
            attributes.update({k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()})
            rows.append((event_id, rule, service.name, plan.rule_arn(rule), plan.queue_arn(service.queue), code,
                         message_text, "maxReceiveCount", max(len(tried) - 1, 0), last["finished_at"], "queue",
                         json.dumps(attributes, sort_keys=True), None))
    if plan.bus_kind == "custom":
        return rows + _subscriber_records(plan, clients)
    for rule in plan.rules:  # EventBridge could not deliver to the queue, after its retry policy
        if not rule.target.dead_letter_queue:
            continue
        for message in _peek(clients.sqs, rule.target.dead_letter_queue):
            body, attributes = json.loads(message["Body"]), message.get("MessageAttributes", {})
            value = lambda name: attributes.get(name, {}).get("StringValue", "")  # noqa: E731
            event = body.get("event", body)
            sent = int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
            rows.append((event.get("id"), rule.name, rule.target.id, plan.rule_arn(rule.name),
                         plan.target_arn(rule), value("ERROR_CODE"), value("ERROR_MESSAGE"),
                         value("EXHAUSTED_RETRY_CONDITION"), int(value("RETRY_ATTEMPTS") or 0), sent, "rule",
                         json.dumps({k: v.get("StringValue", "") for k, v in attributes.items()}, sort_keys=True), None))
    return rows


def _subscriber_records(plan: DeploymentPlan, clients: AwsClients) -> list[tuple]:
    """Dead letters of a Custom Event Bus's subscribers: each record in a subscriber's on-failure queue points to
    the events it gave up on (``failedMessages``), one row each, the record kept as its ``body`` (UG "Retrying
    event delivery", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-retry.html)."""
    rows = []
    for subscriber in plan.subscribers:
        if not subscriber.target.dead_letter_queue:
            continue
        for message in _peek(clients.sqs, subscriber.target.dead_letter_queue):
            record = json.loads(message["Body"])
            attributes = {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}
            sent = int(message.get("Attributes", {}).get("SentTimestamp", "0")) / 1000
            for failed in record.get("failedMessages", []):
                rows.append((failed.get("eventId"), subscriber.name, subscriber.target.id, record.get("subscriberArn", ""),
                             record.get("targetArn", ""), record.get("errorCode", ""), record.get("errorMessage", ""),
                             record.get("exhaustedRetryCondition", ""), int(record.get("retryAttempts") or 0), sent,
                             "subscriber", json.dumps(attributes, sort_keys=True), message["Body"]))
    return rows


def _peek(sqs, queue: str) -> list[dict]:
    """Every message on ``queue``, left there: received out of sight, then made visible again at once."""
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    seen: dict[str, dict] = {}
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0,
                                    AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update((m["MessageId"], m) for m in fresh)
    for message in seen.values():
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return list(seen.values())
