"""Deriving the deployment plan from the catalog: names, retry policies, queue policies and least-privilege IAM.

One custom bus, one rule per subscription, one target per rule (the service's queue, then its handler), a
dead-letter queue and a retry policy per target, a queue with its own dead-letter queue, a table and a
function per service, IAM policies that allow each service only its own resources and its own events.
"""

from __future__ import annotations

from dataclasses import replace

from yafdp.catalog import Catalog
from yafdp.plan.model import (ACCOUNT, DEFAULT_PREFIX, PROJECT_TAG, REGION, DeploymentPlan, RetryPolicy, RulePlan,
                              ServicePlan, TargetPlan)


def build_plan(catalog: Catalog, prefix: str = DEFAULT_PREFIX, *, region: str = REGION,
               account: str = ACCOUNT, run_id: str = "local", visibility_timeout_seconds: int = 30,
               max_receive_count: int = 5) -> DeploymentPlan:
    """Derive the deployment plan from the catalog; every resource name starts with ``prefix``.

    A failed message becomes visible on its service queue again after ``visibility_timeout_seconds``
    (that is the retry delay behind the queue) and moves to the queue's dead-letter queue after
    ``max_receive_count`` receives.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> plan = build_plan(load_catalog(), prefix="demo")
    >>> plan.rule("payment-charges-order").target.queue
    'demo-payment'
    """
    bus = f"{prefix}-{catalog.bus.name.removeprefix(DEFAULT_PREFIX + '-')}"
    retry = RetryPolicy(catalog.bus.retry_policy["MaximumRetryAttempts"],
                        catalog.bus.retry_policy["MaximumEventAgeInSeconds"])
    partial = DeploymentPlan(prefix, region, account, bus, f"{prefix}-archive", catalog.bus.archive["retention_days"],
                             (), (), {"Project": PROJECT_TAG, "RunId": run_id})
    rules = tuple(
        RulePlan(
            name=f"{prefix}-{sub.rule}", subscription=sub.rule, service=sub.service, path=sub.path,
            purpose=sub.purpose, pattern=dict(sub.pattern), emits=sub.emits,
            target=TargetPlan(id=sub.service, service=sub.service, handler=sub.handler,
                              queue=f"{prefix}-{sub.service}", dead_letter_queue=f"{prefix}-{sub.rule}-dlq",
                              retry_policy=retry, kind=sub.target or catalog.bus.target),
        )
        for sub in catalog.subscriptions
    )
    rules = tuple(replace(r, target=replace(r.target, dead_letter_queue_policy=_sqs_policy_for_rules(
        partial, r.target.dead_letter_queue, [r.name]))) for r in rules)
    services = tuple(
        replace(_service_plan(partial, service), visibility_timeout_seconds=visibility_timeout_seconds,
                max_receive_count=max_receive_count,
                function_timeout_seconds=min(visibility_timeout_seconds, ServicePlan.function_timeout_seconds),
                queue_policy=_sqs_policy_for_rules(partial, f"{prefix}-{service.name}",
                                                   [r.name for r in rules if r.service == service.name]))
        for service in catalog.services.values())
    return DeploymentPlan(prefix, region, account, bus, partial.archive, partial.archive_retention_days,
                          rules, services, partial.tags)


def _sqs_policy_for_rules(plan: DeploymentPlan, queue: str, rules: list[str]) -> dict:
    """The queue's resource policy: EventBridge may send to it on behalf of these rules of this bus only."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "EventBridgeRulesOfThisBusOnly",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": plan.queue_arn(queue),
        "Condition": {"ArnEquals": {"aws:SourceArn": [plan.rule_arn(rule) for rule in rules]}},
    }]}


def _service_plan(plan: DeploymentPlan, service) -> ServicePlan:
    name = f"{plan.prefix}-{service.name}"
    may_emit = tuple(sorted(service.may_emit()))
    table_arn = plan.table_arn(name)
    statements = [
        {
            "Sid": "ReadOwnQueue",
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            "Resource": plan.queue_arn(name),
        },
        {
            # TransactWriteItems is authorised by the actions inside it (Put, Delete); the trace is kept here too.
            "Sid": "UseOwnTable",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem",
                       "dynamodb:BatchWriteItem"],
            "Resource": table_arn,
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": plan.log_group_arn(name),
        },
    ]
    if may_emit:
        statements.insert(0, {
            "Sid": "PublishOwnEventsOnly",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": plan.bus_arn(),
            "Condition": {"StringEquals": {"events:source": service.source, "events:detail-type": list(may_emit)}},
        })
    return ServicePlan(
        name=service.name, source=service.source, queue=name, queue_dead_letter_queue=f"{name}-dlq",
        max_receive_count=5, visibility_timeout_seconds=30, table=name, function=name, role=f"{name}-role",
        may_emit=may_emit, policy={"Version": "2012-10-17", "Statement": statements},
    )


