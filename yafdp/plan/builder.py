"""Deriving the deployment plan from the catalog: names, retry policies, queue policies and least-privilege IAM.

One custom bus, one rule per subscription, one target per rule (the service's queue, then its handler), a
dead-letter queue and a retry policy per target, a queue with its own dead-letter queue, a table and a
function per service, IAM policies that allow each service only its own resources and its own events.
"""

from __future__ import annotations

import re
from dataclasses import replace

from yafdp.catalog import Catalog
from yafdp.errors import RefusedError
from yafdp.plan.model import (ACCOUNT, DEFAULT_PREFIX, PROJECT_TAG, REGION, DeploymentPlan, RetryPolicy, RulePlan,
                              ServicePlan, TargetPlan)

# Queue, function, role and rule names allow letters, digits, hyphens (and underscores, not in all): the prefix
# keeps to what every one of them accepts.
PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")


def build_plan(catalog: Catalog, prefix: str = DEFAULT_PREFIX, *, region: str = REGION,
               account: str = ACCOUNT, run_id: str = "local", visibility_timeout_seconds: int = 30,
               max_receive_count: int = 5, point_in_time_recovery: bool = True,
               partition: str = "aws") -> DeploymentPlan:
    """Derive the deployment plan from the catalog; every resource name starts with ``prefix``.

    A failed message becomes visible on its service queue again after ``visibility_timeout_seconds``
    (that is the retry delay behind the queue) and moves to the queue's dead-letter queue after
    ``max_receive_count`` receives. ``point_in_time_recovery`` turns on DynamoDB's continuous backups of
    every service table (what a deployment that is kept should have; a short run may go without). ``region``,
    ``account`` and ``partition`` are those of every ARN the plan names (a deployment's own; a template's are
    CloudFormation's pseudo-parameters).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> plan = build_plan(load_catalog(), prefix="demo")
    >>> plan.rule("payment-charges-order").target.queue
    'demo-payment'
    """
    if not PREFIX.fullmatch(prefix):
        raise RefusedError(f"prefix {prefix!r} must be 1 to 32 letters, digits and hyphens, starting with a letter or "
                           "digit: it starts the name of every resource, and AWS allows no other characters in all of them")
    bus = f"{prefix}-{catalog.bus.name.removeprefix(DEFAULT_PREFIX + '-')}"
    archive = f"{prefix}-{catalog.bus.archive['name'].removeprefix(DEFAULT_PREFIX + '-')}"  # as bus.json names it
    retry = RetryPolicy(catalog.bus.retry_policy["MaximumRetryAttempts"],
                        catalog.bus.retry_policy["MaximumEventAgeInSeconds"])
    partial = DeploymentPlan(prefix, region, account, bus, archive, catalog.bus.archive["retention_days"],
                             (), (), {"Project": PROJECT_TAG, "RunId": run_id}, partition=partition)
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
                          rules, services, partial.tags, point_in_time_recovery=point_in_time_recovery,
                          partition=partition)


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
            # What Lambda's event source mapping calls with the function's role (Lambda developer guide,
            # "Execution role permissions" for SQS: ReceiveMessage, DeleteMessage, GetQueueAttributes).
            "Sid": "ReadOwnQueue",
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": plan.queue_arn(name),
        },
        {
            # The calls of yafdp.backends.aws.dynamo_state: GetItem (reads), PutItem (a trace row), BatchWriteItem
            # (trace rows, clearing an outbox) and, inside TransactWriteItems, Update (state), ConditionCheck
            # (items read, not written) and Put (marker, outbox, trace). "Permissions for Put, Update, Delete,
            # and Get actions are governed by the permissions used for the underlying PutItem, UpdateItem,
            # DeleteItem, and GetItem operations. For the ConditionCheck action, you can use the
            # dynamodb:ConditionCheckItem permission" (DynamoDB developer guide, "Using IAM with DynamoDB
            # transactions").
            "Sid": "UseOwnTable",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem",
                       "dynamodb:BatchWriteItem"],
            "Resource": table_arn,
        },
        {
            # The deployer creates the log group (tagged, with a retention): the function only writes to it.
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": plan.log_group_arn(name),
        },
    ]
    if may_emit:
        statements.insert(0, {
            "Sid": "PublishOwnEventsOnly",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": plan.bus_arn(),
            # The Service Authorization Reference types events:source as ArrayOfString (one PutEvents call
            # carries up to 10 entries, each with its source) and events:detail-type as String; AWS's example
            # "Send events to a custom bus in a different account" (EventBridge user guide) conditions
            # PutEvents with "ForAllValues:StringEquals" on events:source and "StringEquals" on
            # events:detail-type. ForAllValues is also true when the key is absent, so Null refuses that.
            "Condition": {"ForAllValues:StringEquals": {"events:source": [service.source]},
                          "StringEquals": {"events:detail-type": list(may_emit)},
                          "Null": {"events:source": "false"}},
        })
    return ServicePlan(
        name=service.name, source=service.source, queue=name, queue_dead_letter_queue=f"{name}-dlq",
        max_receive_count=5, visibility_timeout_seconds=30, table=name, function=name, role=f"{name}-role",
        may_emit=may_emit, policy={"Version": "2012-10-17", "Statement": statements},
    )


