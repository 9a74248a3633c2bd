"""The deployment plan: what the catalog needs on AWS (or in-process), as plain data.

One custom bus, one rule per subscription, one target per rule (the service's queue, then its handler), a
dead-letter queue and a retry policy per target, a queue with its own dead-letter queue, a table and a
function per service, least-privilege IAM, and an archive of every event. The local backend applies it
in-process; the AWS deployer applies the same plan with boto3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from yafdp.catalog import Catalog
from yafdp.envelope import ACCOUNT, REGION

DEFAULT_PREFIX = "yafdp"


@dataclass(frozen=True)
class RetryPolicy:
    maximum_retry_attempts: int
    maximum_event_age_seconds: int

    def to_aws(self) -> dict:
        return {"MaximumRetryAttempts": self.maximum_retry_attempts,
                "MaximumEventAgeInSeconds": self.maximum_event_age_seconds}


@dataclass(frozen=True)
class TargetPlan:
    id: str
    service: str
    handler: str
    queue: str
    dead_letter_queue: str
    retry_policy: RetryPolicy


@dataclass(frozen=True)
class RulePlan:
    name: str
    subscription: str
    service: str
    path: str
    purpose: str
    pattern: dict
    emits: tuple[str, ...]
    target: TargetPlan


@dataclass(frozen=True)
class ServicePlan:
    name: str
    source: str
    queue: str
    queue_dead_letter_queue: str
    max_receive_count: int
    visibility_timeout_seconds: int
    table: str
    function: str
    role: str
    may_emit: tuple[str, ...]
    policy: dict


@dataclass(frozen=True)
class DeploymentPlan:
    prefix: str
    region: str
    account: str
    bus: str
    archive: str
    archive_retention_days: int
    rules: tuple[RulePlan, ...]
    services: tuple[ServicePlan, ...]
    tags: dict

    def rule(self, name: str) -> RulePlan:
        for rule in self.rules:
            if rule.name == name or rule.subscription == name:
                return rule
        raise KeyError(f"no rule {name!r} in the plan")

    def service(self, name: str) -> ServicePlan:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r} in the plan")

    def bus_arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/{self.bus}"

    def rule_arn(self, rule: str) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:rule/{self.bus}/{rule}"

    def queue_arn(self, queue: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{queue}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_plan(catalog: Catalog, prefix: str = DEFAULT_PREFIX, *, region: str = REGION,
               account: str = ACCOUNT, run_id: str = "local") -> DeploymentPlan:
    """Derive the deployment plan from the catalog; every resource name starts with ``prefix``.

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
                             (), (), {"Project": "yafdp", "RunId": run_id})
    rules = tuple(
        RulePlan(
            name=f"{prefix}-{sub.rule}", subscription=sub.rule, service=sub.service, path=sub.path,
            purpose=sub.purpose, pattern=dict(sub.pattern), emits=sub.emits,
            target=TargetPlan(id=sub.service, service=sub.service, handler=sub.handler,
                              queue=f"{prefix}-{sub.service}", dead_letter_queue=f"{prefix}-{sub.rule}-dlq",
                              retry_policy=retry),
        )
        for sub in catalog.subscriptions
    )
    services = tuple(_service_plan(partial, service) for service in catalog.services.values())
    return DeploymentPlan(prefix, region, account, bus, partial.archive, partial.archive_retention_days,
                          rules, services, partial.tags)


def _service_plan(plan: DeploymentPlan, service) -> ServicePlan:
    name = f"{plan.prefix}-{service.name}"
    may_emit = tuple(sorted(service.may_emit()))
    table_arn = f"arn:aws:dynamodb:{plan.region}:{plan.account}:table/{name}"
    statements = [
        {
            "Sid": "ReadOwnQueue",
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
            "Resource": plan.queue_arn(name),
        },
        {
            "Sid": "UseOwnTable",
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:TransactWriteItems"],
            "Resource": table_arn,
        },
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:aws:logs:{plan.region}:{plan.account}:log-group:/aws/lambda/{name}:*",
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


@dataclass(frozen=True)
class Resource:
    """One thing the plan creates: its kind, name, owning service ('' for shared ones) and definition."""

    kind: str
    name: str
    service: str
    definition: dict


def plan_resources(plan: DeploymentPlan) -> list[Resource]:
    """Every resource of the plan, one entry each, with what defines it (as AWS would be told it).

    Two plans can be compared resource by resource; that is how adding a service is shown to change
    nothing that exists.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> kinds = {r.kind for r in plan_resources(build_plan(load_catalog()))}
    >>> sorted(kinds)
    ['archive', 'dead-letter queue', 'event bus', 'function', 'queue', 'role', 'rule', 'table', 'target']
    """
    found = [
        Resource("event bus", plan.bus, "", {"Name": plan.bus, "Tags": plan.tags}),
        Resource("archive", plan.archive, "", {"EventSourceArn": plan.bus_arn(),
                                               "RetentionDays": plan.archive_retention_days}),
    ]
    for rule in plan.rules:
        target = rule.target
        found += [
            Resource("rule", rule.name, rule.service, {"EventBusName": plan.bus, "EventPattern": rule.pattern}),
            Resource("target", f"{rule.name}/{target.id}", rule.service, {
                "Arn": plan.queue_arn(target.queue), "Handler": target.handler,
                "RetryPolicy": target.retry_policy.to_aws(),
                "DeadLetterConfig": {"Arn": plan.queue_arn(target.dead_letter_queue)}}),
            Resource("dead-letter queue", target.dead_letter_queue, rule.service, {"for": f"rule {rule.name}"}),
        ]
    for service in plan.services:
        found += [
            Resource("queue", service.queue, service.name, {
                "VisibilityTimeout": service.visibility_timeout_seconds,
                "RedrivePolicy": {"deadLetterTargetArn": plan.queue_arn(service.queue_dead_letter_queue),
                                  "maxReceiveCount": service.max_receive_count}}),
            Resource("dead-letter queue", service.queue_dead_letter_queue, service.name, {"for": f"queue {service.queue}"}),
            Resource("function", service.function, service.name, {"Role": service.role, "Source": service.source}),
            Resource("table", service.table, service.name, {}),
            Resource("role", service.role, service.name, {"Policy": service.policy}),
        ]
    return found
