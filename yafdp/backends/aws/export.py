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
from yafdp.runtime.rundb import INSERT_DEAD_LETTER, INSERT_DELIVERY, INSERT_EVENT, INSERT_STATE

from yafdp.backends.aws.clients import AwsClients
from yafdp.backends.aws.dynamo_state import OUTBOX, PROCESSED, TASK_OUTPUT, TRACE, scan

_REPLACED = ("events", "deliveries", "dead_letters", "state")


def export_run(db: sqlite3.Connection, plan: DeploymentPlan, clients: AwsClients, origin: float | None,
               redriven: tuple[tuple, ...] = ()) -> dict:
    """Fill ``db`` (opened with :func:`yafdp.runtime.rundb.connect`) from the deployment; replaces what an earlier
    export wrote there. ``redriven``: ``dead_letters`` rows (all columns but ``id``) of dead letters that
    were sent back to their queues, which are no longer in a dead-letter queue to be found. ``origin`` (epoch
    seconds) is the run's start, which recorded times count from; None takes the first time the trace holds.

    Each dead letter says its kind: ``queue`` (the service queue's DLQ: its ``attributes`` are the message's
    SQS attributes, with ``ApproximateReceiveCount`` the receives the function's trace recorded, since reading
    the DLQ counts as a receive too; its error columns are the function's last error from that trace) or
    ``rule`` (the rule's DLQ: ``attributes`` are EventBridge's message attributes).

    Returns counts: ``{"events", "deliveries", "dead_letters", "unpublished_outboxes", "state_writes"}``
    (``state_writes``: items the handlers and API calls wrote, as the local bus counts them).
    """
    events, deliveries, calls, state, outboxes = [], [], [], [], 0
    for service in plan.services:
        for pk, sk, item in scan(clients.dynamodb, service.table):
            if pk == TRACE:
                row = json.loads(item["row"]["S"])
                {"event": events, "delivery": deliveries, "call": calls}[row["kind"]].append(row)
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
    db.executemany(INSERT_EVENT, [
        (e["event_id"], e["order_id"], e["detail_type"], e["source"], e["published_at"] - origin, e["detail"], e["time"],
         None, e.get("published_by")) for e in sorted(events, key=lambda e: e["published_at"])])
    db.executemany(INSERT_DELIVERY, [
        (d["event_id"], d["rule"], d["target"], d["attempt"], d["delivered_at"] - origin, d["finished_at"] - origin,
         d["outcome"], d["error"]) for d in sorted(deliveries, key=lambda d: d["delivered_at"])])
    db.executemany(INSERT_STATE, state)
    db.executemany(INSERT_DEAD_LETTER, [(*d[:9], d[9] - origin, None, *d[10:]) for d in dead] + list(redriven))
    db.execute("COMMIT")
    return {"events": len(events), "deliveries": len(deliveries), "dead_letters": len(dead),
            "unpublished_outboxes": outboxes,
            "state_writes": sum(row.get("writes", 0) for row in calls + deliveries if row.get("outcome", "ok") == "ok")}


def _dead_letters(plan: DeploymentPlan, clients: AwsClients, deliveries: list[dict]) -> list[tuple]:
    """Dead letters as ``dead_letters`` rows (``redriven_at`` left out), from the service queues' and the rules'
    dead-letter queues."""
    history = defaultdict(list)
    for d in deliveries:
        history[(d["event_id"], d["rule"])].append(d)
    rows = []
    for service in plan.services:  # SQS redrive: the handler failed maxReceiveCount times
        for message in _peek(clients.sqs, service.queue_dead_letter_queue):
            body = json.loads(message["Body"])
            rule, event_id = body.get("rule"), body.get("event", {}).get("id")
            tried = sorted(history.get((event_id, rule), []), key=lambda d: d["attempt"])
            last = tried[-1] if tried else {"error": "unknown: no delivery of it was recorded", "finished_at": 0.0}
            code, _, message_text = (last["error"] or "").partition(": ")
            attributes = {k: v for k, v in message.get("Attributes", {}).items()
                          if k not in ("ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp")}
            attributes["ApproximateReceiveCount"] = str(len(tried))
            attributes.update({k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()})
            rows.append((event_id, rule, service.name, plan.rule_arn(rule), plan.queue_arn(service.queue), code,
                         message_text, "maxReceiveCount", max(len(tried) - 1, 0), last["finished_at"], "queue",
                         json.dumps(attributes, sort_keys=True)))
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
                         json.dumps({k: v.get("StringValue", "") for k, v in attributes.items()}, sort_keys=True)))
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
