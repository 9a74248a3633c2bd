"""Where a failed event ends, path by path: the same event and the same failing handler on the topology the plan
deploys (EventBridge → SQS → Lambda), on a direct EventBridge → Lambda target, and when EventBridge itself cannot
deliver to the target. Chapter 06 puts them side by side, because each path has its own retry clock, its own
dead-letter queue (or none) and its own message attributes.

Sources: "Using dead-letter queues to process undelivered events in EventBridge" (the rule's DLQ, its attributes,
errors not retried), "Using a dead-letter queue with Amazon SQS" (``maxReceiveCount``), and "How Lambda handles
errors and retries with asynchronous invocation" (two retries, then discarded without an on-failure destination).
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from yafdp.backends.local.bus import LocalBus
from yafdp.catalog import Catalog
from yafdp.plan import DeploymentPlan, build_plan
from yafdp.runtime import rundb

class SystemDown(RuntimeError):
    """The failing handler of the comparison: the system behind it does not answer."""


def _always_failing(event, uow) -> None:
    raise SystemDown("the system behind this handler does not answer")


def _without_permission(plan: DeploymentPlan, rule_name: str) -> DeploymentPlan:
    """``plan`` with the target queue's policy no longer naming ``rule_name``: EventBridge may not send to it."""
    rule = plan.rule(rule_name)
    service = plan.service(rule.service)
    statement = service.queue_policy["Statement"][0]
    arns = [a for a in statement["Condition"]["ArnEquals"]["aws:SourceArn"] if a != plan.rule_arn(rule.name)]
    policy = {**service.queue_policy,
              "Statement": [{**statement, "Condition": {"ArnEquals": {"aws:SourceArn": arns}}}]}
    services = tuple(dataclasses.replace(s, queue_policy=policy) if s is service else s for s in plan.services)
    return dataclasses.replace(plan, services=services)


def dead_letter_paths(catalog: Catalog, world, event: str, detail: dict, rule: str) -> pd.DataFrame:
    """One ``event`` (its ``detail`` given) published by its service on three local buses, the subscription ``rule``
    failing in each its own way; one row per path: who retried, how often, where the event ended
    (``dead_letters.kind``), the error recorded and the attribute names that dead-letter queue carries.

    Raises :class:`KeyError` when the catalog has no such rule.
    """
    queue_plan = build_plan(catalog)
    direct = dataclasses.replace(catalog, bus=dataclasses.replace(catalog.bus, target="lambda"))
    cases = [
        ("EventBridge → SQS queue → Lambda (what the plan deploys); the handler fails", catalog, queue_plan,
         {queue_plan.rule(rule).name: _always_failing}),
        ("EventBridge → Lambda directly (catalog target \"lambda\"); the handler fails", direct, build_plan(direct),
         {queue_plan.rule(rule).name: _always_failing}),
        ("EventBridge cannot deliver: the queue's policy does not allow the rule", catalog,
         _without_permission(queue_plan, rule), {}),
    ]
    rows = []
    for path, cat, plan, handlers in cases:
        bus = LocalBus(cat, plan, world, rundb.connect(":memory:"), handlers=handlers)
        bus.put_events([{"DetailType": event, "Detail": detail}], sender=catalog.events[event].service)
        bus.run()
        name = plan.rule(rule).name
        attempts = bus.db.execute("SELECT COUNT(*) FROM deliveries WHERE rule = ?", (name,)).fetchone()[0]
        kind, code, message, attributes = bus.db.execute(
            "SELECT kind, error_code, error_message, attributes FROM dead_letters WHERE rule = ?", (name,)).fetchone()
        rows.append({"path": path, "handler or delivery attempts": attempts, "ends in": _ends_in(kind),
                     "error recorded": f"{code}: {message}",
                     "attributes of that dead-letter queue": ", ".join(sorted(json.loads(attributes or "{}")))})
    return pd.DataFrame(rows)


def _ends_in(kind: str) -> str:
    return {"queue": "the service queue's DLQ (after maxReceiveCount receives)",
            "rule": "the rule's DLQ (EventBridge's attributes)",
            "dropped": "nowhere: dropped (no DLQ or on-failure destination), recorded in run.db"}.get(kind, kind)
