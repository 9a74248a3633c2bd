"""Deriving the deployment plan from the catalog: names, retry policies, queue policies and least-privilege IAM.

One custom bus, one rule per subscription, one target per rule (the service's queue, then its handler), a
dead-letter queue and a retry policy per target, a queue with its own dead-letter queue, a table and a
function per service, IAM policies that allow each service only its own resources and its own events.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from yafdp.catalog import Catalog
from yafdp.catalog.model import BUS_KINDS, CatalogError
from yafdp.custom_event_bus import ApiError
from yafdp.custom_event_bus.choices import Choices
from yafdp.custom_event_bus.configuration import check_create
from yafdp.errors import RefusedError
from yafdp.plan.custom_bus import CUSTOM_BUS_REMOVAL_POLICIES, SubscriberPlan
from yafdp.plan.model import (ACCOUNT, DEFAULT_PREFIX, PROJECT_TAG, REGION, DeploymentPlan, RetryPolicy, RulePlan,
                              ServicePlan, TargetPlan)

# Queue, function, role and rule names allow letters, digits, hyphens (and underscores, not in all): the prefix
# keeps to what every one of them accepts.
PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")


def build_plan(catalog: Catalog, prefix: str = DEFAULT_PREFIX, *, region: str = REGION,
               account: str = ACCOUNT, run_id: str = "local", visibility_timeout_seconds: int = 30,
               max_receive_count: int = 5, point_in_time_recovery: bool = True, bus: str | None = None,
               partition: str = "aws") -> DeploymentPlan:
    """Derive the deployment plan from the catalog; every resource name starts with ``prefix``.

    ``bus`` chooses the kind of bus, ``"classic"`` (rules and targets) or ``"custom"`` (the Custom Event Bus:
    subscribers, see :mod:`yafdp.plan.custom_bus`); None takes the catalog's (``bus.json``'s ``kind``). A
    subscriber the Custom Event Bus would refuse (a filter of a scope given twice, a retry policy out of AWS's
    ranges, a FIFO subscriber whose target cannot keep order) raises
    :class:`~yafdp.catalog.model.CatalogError` naming the service file and key.

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
    bus_name = f"{prefix}-{catalog.bus.name.removeprefix(DEFAULT_PREFIX + '-')}"
    archive = f"{prefix}-{catalog.bus.archive['name'].removeprefix(DEFAULT_PREFIX + '-')}"  # as bus.json names it
    retry = RetryPolicy(catalog.bus.retry_policy["MaximumRetryAttempts"],
                        catalog.bus.retry_policy["MaximumEventAgeInSeconds"])
    kind = bus or catalog.bus.kind
    partial = DeploymentPlan(prefix, region, account, bus_name, archive, catalog.bus.archive["retention_days"],
                             (), (), {"Project": PROJECT_TAG, "RunId": run_id}, partition=partition)
    if kind not in BUS_KINDS:
        raise RefusedError(f"bus must be one of {', '.join(BUS_KINDS)}, got {kind!r}")
    if kind == "custom":
        return _custom_plan(catalog, replace(partial, removal_policies=dict(CUSTOM_BUS_REMOVAL_POLICIES)),
                            visibility_timeout_seconds, max_receive_count, point_in_time_recovery)
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
    return _with_schedules(catalog, DeploymentPlan(
        prefix, region, account, bus_name, partial.archive, partial.archive_retention_days, rules, services,
        partial.tags, point_in_time_recovery=point_in_time_recovery, partition=partition))


def _with_schedules(catalog: Catalog, plan: DeploymentPlan) -> DeploymentPlan:
    """EventBridge Scheduler for the services that schedule events (a saga's deadline): a schedule group, a role that
    may put exactly those events on the bus with their services' sources (or, on a Custom Event Bus whose
    ``schedule_target`` is ``"function"``, invoke those services' functions, which publish them: see
    :mod:`yafdp.runtime.scheduling`), and, for each scheduling service, the right to create and delete schedules in
    that group and to pass that role ("Set up the execution role",
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html)."""
    scheduling = [s for s in catalog.services.values() if s.may_schedule()]
    if not scheduling:
        return plan
    target = catalog.bus.custom.schedule_target if plan.bus_kind == "custom" else "bus"
    plan = replace(plan, schedule_group=f"{plan.prefix}-deadlines", scheduler_role=f"{plan.prefix}-scheduler",
                   schedule_target=target)
    scheduled = sorted(e for s in scheduling for e in s.may_schedule())
    if target == "function":  # the schedules invoke the scheduling services' functions, which publish
        statement = {"Sid": "InvokeSchedulingFunctionsOnly", "Effect": "Allow", "Action": "lambda:InvokeFunction",
                     "Resource": [plan.function_arn(s.name) for s in scheduling]}
    else:  # the schedules put the events on the bus (the Custom Event Bus keeps both condition keys, UG access-actions)
        statement = {"Sid": "PutScheduledEventsOnly", "Effect": "Allow", "Action": "events:PutEvents",
                     "Resource": plan.bus_arn(),
                     "Condition": {"ForAllValues:StringEquals": {"events:source": sorted(s.source for s in scheduling)},
                                   "StringEquals": {"events:detail-type": scheduled},
                                   "Null": {"events:source": "false"}}}
    plan = replace(plan, scheduler_policy={"Version": "2012-10-17", "Statement": [statement]})
    statements = [
        {"Sid": "ManageOwnSchedules", "Effect": "Allow", "Action": ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
         "Resource": plan.schedules_arn()},
        {"Sid": "PassSchedulerRole", "Effect": "Allow", "Action": "iam:PassRole",
         "Resource": plan.role_arn(plan.scheduler_role),
         "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}},
    ]
    names = {s.name for s in scheduling}
    services = tuple(replace(s, policy={**s.policy, "Statement": s.policy["Statement"] + statements})
                     if s.name in names else s for s in plan.services)
    return replace(plan, services=services)


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


def _custom_plan(catalog: Catalog, partial: DeploymentPlan, visibility_timeout_seconds: int, max_receive_count: int,
                 point_in_time_recovery: bool) -> DeploymentPlan:
    """The plan on a Custom Event Bus: a subscriber per subscription, the service queues FIFO (by default), a
    delivery role per service; each subscriber checked as ``CreateSubscriber`` checks it."""
    settings, prefix = catalog.bus.custom, partial.prefix
    fifo_queues = settings.queue_type == "fifo"
    suffix = ".fifo" if fifo_queues else ""
    retry = RetryPolicy(settings.retry_policy["MaxRetryAttempts"], settings.retry_policy["MaxEventAgeInSeconds"])
    plan = replace(partial, bus_kind="custom", retention_days=settings.retention_days,
                   event_group=settings.event_group, deduplication=settings.deduplication)
    subscribers, checks = [], []
    for service in catalog.services.values():
        for index, sub in enumerate(service.subscriptions):
            own = dict(sub.subscriber or {})
            kind = own.get("Type", settings.subscriber_type)
            target_kind = sub.target or catalog.bus.target
            policy = own.get("RetryPolicy")
            subscriber_retry = retry if policy is None else RetryPolicy(
                policy.get("MaxRetryAttempts", 5), policy.get("MaxEventAgeInSeconds", 300))
            dlq = f"{prefix}-{sub.rule}-dlq" + (".fifo" if kind == "FIFO" else "")
            where = f"subscriptions[{index}].subscriber"
            if kind == "FIFO" and target_kind == "queue" and not fifo_queues:
                raise CatalogError(service.file, where + ".Type", "a FIFO subscriber's target must keep its order: the "
                                   "service queues are standard queues (bus.json custom_event_bus.queue_type), which "
                                   "deliver in no order (UG ordering); use queue_type fifo or an UNORDERED subscriber")
            if target_kind != "lambda" and "InvocationType" in own:
                raise CatalogError(service.file, where + ".InvocationType", "does nothing: the subscriber's target "
                                   "is its service's queue, and InvocationType is how a function target is invoked "
                                   "(LambdaParameters); remove it, or give the subscription \"target\": \"lambda\"")
            if kind == "FIFO" and target_kind == "lambda" and own.get("InvocationType") == "EVENT":
                raise CatalogError(service.file, where + ".InvocationType", "a FIFO subscriber invoking its function "
                                   "with EVENT keeps order only up to Lambda's asynchronous queue (UG ordering: use "
                                   "REQUEST_RESPONSE for ordered processing)")
            subscriber = SubscriberPlan(
                name=f"{prefix}-{sub.rule}", subscription=sub.rule, service=sub.service, path=sub.path,
                purpose=sub.purpose, pattern=dict(sub.pattern), emits=sub.emits,
                target=TargetPlan(id=sub.service, service=sub.service, handler=sub.handler,
                                  queue=f"{prefix}-{sub.service}{suffix}", dead_letter_queue=dlq,
                                  retry_policy=subscriber_retry, kind=target_kind),
                type=kind, role=f"{prefix}-{sub.service}-delivery",
                filters=tuple(dict(f) if not isinstance(f.get("Pattern"), dict) else
                              {**f, "Pattern": json.dumps(f["Pattern"], separators=(",", ":"))}
                              for f in own.get("Filters", ()) if isinstance(f, dict)),
                transformer=dict(own.get("Transformer", {"Type": "RAW"})),
                invocation_type=own.get("InvocationType", "REQUEST_RESPONSE") if target_kind == "lambda" else None,
                batch_size=1 if target_kind == "lambda" else 10,
                defined_in=f"{service.file}: subscriptions[{index}]")
            checks.append((subscriber, service.file, where))
            subscribers.append(subscriber)
    services = []
    for service in catalog.services.values():
        queue = f"{prefix}-{service.name}{suffix}"
        mine = [s for s in subscribers if s.service == service.name]
        base = _service_plan(plan, service, queue=queue, dead_letter_queue=f"{prefix}-{service.name}-dlq{suffix}")
        services.append(replace(
            base, visibility_timeout_seconds=visibility_timeout_seconds, max_receive_count=max_receive_count,
            function_timeout_seconds=min(visibility_timeout_seconds, ServicePlan.function_timeout_seconds),
            fifo_queue=fifo_queues, delivery_role=f"{prefix}-{service.name}-delivery",
            delivery_policy=_delivery_policy(plan, queue, service.name, mine)))
    plan = replace(plan, subscribers=tuple(subscribers), services=tuple(services),
                   point_in_time_recovery=point_in_time_recovery)
    for subscriber, file, where in checks:  # once the plan names the services (a function target's ARN needs them)
        _check_subscriber(plan, subscriber, file, where)
    return _with_schedules(catalog, plan)


def _check_subscriber(plan: DeploymentPlan, subscriber: SubscriberPlan, file: str, where: str) -> None:
    """Ask the Custom Event Bus's own checks (what ``CreateSubscriber`` would answer) about this subscriber;
    refuse what it refuses, naming the catalog file and the member the subscription set.

    The subscriber is checked with the ARNs of the plan's stand-in account and Region in the ``aws`` partition:
    what the checks look at is the catalog's settings, and a template's plan names its account, Region and
    partition with CloudFormation's pseudo-parameters (``${AWS::AccountId}``), which no ARN check accepts."""
    concrete = replace(plan, account=ACCOUNT, region=REGION, partition="aws")
    request = subscriber.request(concrete, f"arn:aws:events:{REGION}:{ACCOUNT}:event-busv2/{plan.bus}/" + "0" * 25)
    try:
        check_create(request, account=ACCOUNT, choices=Choices(), now=0.0, window_start=0.0)
    except ApiError as exc:
        member, _, problem = exc.message.partition(": ")
        found = re.match(r"FilterConfiguration\.Filters\[(\d+)\](.*)", member)
        if found and found[1] == "0":  # the DATA filter is the subscription's pattern
            key = where.rsplit(".", 1)[0] + ".pattern"
        elif found:  # the subscription's own Filters come after the DATA filter
            key = f"{where}.Filters[{int(found[1]) - 1}]{found[2]}"
        else:
            member = {"InvokeConfiguration.LambdaParameters.InvocationType": "InvocationType"}.get(member, member)
            key = f"{where}.{member}"
        raise CatalogError(file, key, f"the Custom Event Bus refuses it: {problem}") from None


def _delivery_policy(plan: DeploymentPlan, queue: str, service: str, subscribers: list[SubscriberPlan]) -> dict:
    """What a service's subscribers deliver with: send to the service queue (or invoke its function) and to their
    own on-failure queues, nothing else ("needs the target's action and sqs:SendMessage on the DLQ", UG
    subscribers)."""
    statements = []
    if any(s.target.kind != "lambda" for s in subscribers):
        statements.append({"Sid": "DeliverToOwnQueue", "Effect": "Allow", "Action": "sqs:SendMessage",
                           "Resource": plan.queue_arn(queue)})
    if any(s.target.kind == "lambda" for s in subscribers):
        statements.append({"Sid": "InvokeOwnFunction", "Effect": "Allow", "Action": "lambda:InvokeFunction",
                           "Resource": f"arn:{plan.partition}:lambda:{plan.region}:{plan.account}:function:{plan.prefix}-{service}"})
    dead_letter_queues = sorted(plan.queue_arn(s.target.dead_letter_queue) for s in subscribers if s.target.dead_letter_queue)
    if dead_letter_queues:
        statements.append({"Sid": "RecordFailures", "Effect": "Allow", "Action": "sqs:SendMessage",
                           "Resource": dead_letter_queues})
    return {"Version": "2012-10-17", "Statement": statements}


def _service_plan(plan: DeploymentPlan, service, *, queue: str | None = None,
                  dead_letter_queue: str | None = None) -> ServicePlan:
    name = f"{plan.prefix}-{service.name}"
    queue = queue or name
    may_emit = tuple(sorted(service.may_emit()))
    table_arn = plan.table_arn(name)
    statements = [
        {
            # What Lambda's event source mapping calls with the function's role (Lambda developer guide,
            # "Execution role permissions" for SQS: ReceiveMessage, DeleteMessage, GetQueueAttributes).
            "Sid": "ReadOwnQueue",
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": plan.queue_arn(queue),
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
        name=service.name, source=service.source, queue=queue, queue_dead_letter_queue=dead_letter_queue or f"{name}-dlq",
        max_receive_count=5, visibility_timeout_seconds=30, table=name, function=name, role=f"{name}-role",
        may_emit=may_emit, policy={"Version": "2012-10-17", "Statement": statements},
    )


