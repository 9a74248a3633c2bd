"""The deployment plan as plain data, with every resource name and ARN derived in one place.

One custom bus, one rule per subscription, one target per rule (the service's queue, then its handler), a
dead-letter queue and a retry policy per target, a queue with its own dead-letter queue, a table and a
function per service, least-privilege IAM, and an archive of every event. The local backend applies it
in-process; the AWS deployer applies the same plan with boto3. :mod:`yafdp.plan.builder` derives it from
the catalog.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from yafdp.errors import ConfigurationError

DEFAULT_PREFIX = "yafdp"
# The account and Region a plan names until it is deployed somewhere real (the local bus uses them too); deploying
# builds the plan again with the account, Region and partition of the credentials in use.
ACCOUNT = "000000000000"
REGION = "eu-west-1"
PROJECT_TAG = "yafdp"  # the Project tag of every resource a deployment creates
# Who may assume a service's role: Lambda, running that service's function, and nobody else.
LAMBDA_TRUST_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# Who may assume the schedules' role: EventBridge Scheduler, on behalf of this account's schedules only ("Set up the
# execution role", EventBridge Scheduler user guide, https://docs.aws.amazon.com/scheduler/latest/UserGuide/setting-up.html).
def scheduler_trust_policy(account: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]}
# What every deployment sets, with boto3 (yafdp.backends.aws.deployer) or as a template (yafdp.plan.cloudformation).
HANDLER = "yafdp.backends.aws.lambda_handler.lambda_handler"
RUNTIME = "python3.12"
MEMORY_MB = 256
LOG_RETENTION_DAYS = 7
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600  # the longest SQS keeps a message: time to look at it
# A service queue keeps a message SQS's default 4 days (MessageRetentionPeriod 345,600 s, "Default: 345,600 (4 days)",
# SetQueueAttributes, SQS API reference, https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html),
# written down so that the template and the deployer say it rather than leave it to the default.
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
ROLE_PATH = "/yafdp/"
POLICY_NAME = "least-privilege"
# A service table: items keyed (pk, sk), see yafdp.backends.aws.dynamo_state.
TABLE_KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
TABLE_ATTRIBUTES = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]


@dataclass(frozen=True)
class RemovalPolicy:
    """What CloudFormation does with a resource that holds data when its stack is deleted (``DeletionPolicy``) and
    when an update replaces it (``UpdateReplacePolicy``): ``Delete`` or ``Retain``, and why the plan chose so.

    ("DeletionPolicy attribute" and "UpdateReplacePolicy attribute", CloudFormation user guide,
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html; without
    them a resource is deleted, which cfn-lint I3011 asks to be a choice, not a default.)
    """

    deletion: str
    update_replace: str
    why: str

    def to_cloudformation(self) -> dict:
        return {"DeletionPolicy": self.deletion, "UpdateReplacePolicy": self.update_replace}


# The plan's choice for every kind of resource that holds data. A stack deletion or a replacement keeps what is the
# only record of something (money moved, events that failed); what can be had again goes with the stack. What is
# retained stays tagged Project=yafdp and RunId=<prefix>: `yafdp export` can still read it and `yafdp destroy`
# removes it.
REMOVAL_POLICIES = {
    "table": RemovalPolicy("Retain", "Retain", "a service's state, its ledger of charges and refunds, its processed "
                           "markers and the run's trace: the only record of the money moved"),
    "dead-letter queue": RemovalPolicy("Retain", "Retain", "the messages that could not be delivered or handled: "
                                       "their only copy, to look at and redrive"),
    "queue": RemovalPolicy("Delete", "Delete", "messages on their way; every event is also in the bus's archive, "
                           "from which it can be replayed"),
    "log group": RemovalPolicy("Delete", "Delete", "the functions' logs, kept 7 days anyway; the trace in the "
                               "tables is the run's record"),
}


@dataclass(frozen=True)
class RetryPolicy:
    """A target's retry policy, as EventBridge takes it (``MaximumRetryAttempts``, ``MaximumEventAgeInSeconds``)."""

    maximum_retry_attempts: int
    maximum_event_age_seconds: int

    def to_aws(self) -> dict:
        return {"MaximumRetryAttempts": self.maximum_retry_attempts,
                "MaximumEventAgeInSeconds": self.maximum_event_age_seconds}


@dataclass(frozen=True)
class TargetPlan:
    """A rule's target: the service's queue (``kind="queue"``) or its function (``kind="lambda"``, invoked by
    EventBridge directly), the handler behind it, the rule's own dead-letter queue ('' for none: what EventBridge
    cannot deliver is then dropped) and the retry policy of EventBridge's delivery to the target."""

    id: str
    service: str
    handler: str
    queue: str
    dead_letter_queue: str
    retry_policy: RetryPolicy
    dead_letter_queue_policy: dict = field(default_factory=dict)  # lets this rule, and only it, dead-letter here
    kind: str = "queue"


@dataclass(frozen=True)
class Route:
    """What routes a catalog subscription's events to its service, on either kind of bus: its name on the bus,
    the subscription it stands for, its pattern (a Custom Event Bus subscriber's ``DATA`` filter) and target."""

    name: str
    subscription: str
    service: str
    path: str
    purpose: str
    pattern: dict
    emits: tuple[str, ...]
    target: TargetPlan


@dataclass(frozen=True)
class RulePlan(Route):
    """One EventBridge rule of a Classic bus (see :class:`Route`)."""

    @property
    def input_template(self) -> str:
        """What the rule's target receives: the event and the rule's name, so the function knows which
        handler to run (``aws.events.event.json`` is the whole original event)."""
        return '{"rule": %s, "event": <aws.events.event.json>}' % json.dumps(self.name)


@dataclass(frozen=True)
class ServicePlan:
    """One service's resources: queue and its dead-letter queue, table, function, role and its policy."""

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
    queue_policy: dict = field(default_factory=dict)  # lets the rules that target this queue, and only them, send
    trust_policy: dict = field(default_factory=lambda: LAMBDA_TRUST_POLICY)
    batch_size: int = 10  # messages per handler call (the event source mapping's BatchSize)
    # AWS refuses a function timeout above the queue's visibility timeout, and advises a sixth of it.
    function_timeout_seconds: int = 5
    # On a Custom Event Bus: whether the service queue is FIFO, and the role its subscribers deliver with.
    fifo_queue: bool = False
    delivery_role: str = ""
    delivery_policy: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DeploymentPlan:
    """Everything a deployment creates, named from ``prefix``, with the ARNs of its resources.

    Raises :class:`KeyError` from :meth:`rule` and :meth:`service` for a name the plan does not have.
    """

    prefix: str
    region: str
    account: str
    bus: str
    archive: str
    archive_retention_days: int
    rules: tuple[RulePlan, ...]
    services: tuple[ServicePlan, ...]
    tags: dict
    point_in_time_recovery: bool = True  # DynamoDB continuous backups of every service table
    partition: str = "aws"  # the ARN partition (aws, aws-cn, aws-us-gov): the deploying account's
    removal_policies: dict = field(default_factory=lambda: dict(REMOVAL_POLICIES))  # kind -> RemovalPolicy
    # Every queue is encrypted at rest with SQS-owned keys (SSE-SQS). EventBridge needs KMS permissions only
    # for "a queue encrypted with a customer managed key" (EventBridge user guide, "Amazon SQS queue target").
    queue_attributes: dict = field(default_factory=lambda: {"SqsManagedSseEnabled": "true"})
    # Which kind of bus: "classic" (rules and targets: ``rules``) or "custom" (the Custom Event Bus: ``subscribers``,
    # see yafdp.plan.custom_bus), with the Custom Event Bus's retention (days), EventGroupId path and deduplication.
    bus_kind: str = "classic"
    subscribers: tuple = ()
    retention_days: int = 0
    event_group: tuple[str, ...] = ()
    deduplication: str = "none"
    # EventBridge Scheduler, when a service schedules events (the saga's deadline): the group its one-time schedules
    # live in, and the role they put their events on the bus with (see yafdp.runtime.scheduling).
    schedule_group: str = ""
    scheduler_role: str = ""
    scheduler_policy: dict = field(default_factory=dict)
    # what the schedules target: "bus" (the Classic bus, templated PutEvents), or on a Custom Event Bus "function" or
    # "universal" (bus.json's custom_event_bus.schedule_target, yafdp.catalog.model.SCHEDULE_TARGETS)
    schedule_target: str = ""

    @property
    def routes(self) -> tuple:
        """What routes events to the services, whatever the bus: its rules (Classic) or its subscribers (Custom
        Event Bus). Each has ``name``, ``subscription``, ``service``, ``pattern``, ``emits`` and ``target``."""
        return self.subscribers if self.bus_kind == "custom" else self.rules

    def rule(self, name: str):
        """The rule (or, on a Custom Event Bus, the subscriber) named ``name`` or standing for subscription ``name``."""
        for rule in self.routes:
            if rule.name == name or rule.subscription == name:
                return rule
        raise KeyError(f"no {'subscriber' if self.bus_kind == 'custom' else 'rule'} {name!r} in the plan")

    def service(self, name: str) -> ServicePlan:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r} in the plan")

    def bus_arn(self) -> str:
        """The bus's ARN. A Custom Event Bus's ARN ends in an id EventBridge generates at creation ("a bus ARN
        cannot be derived from its name", UG "What is a Custom Event Bus"): here ``*`` stands for it, as in a
        policy's Resource."""
        if self.bus_kind == "custom":
            return f"arn:{self.partition}:events:{self.region}:{self.account}:event-busv2/{self.bus}/*"
        return f"arn:{self.partition}:events:{self.region}:{self.account}:event-bus/{self.bus}"

    def role_arn(self, role: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role{ROLE_PATH}{role}"

    def schedule_group_arn(self) -> str:
        return f"arn:{self.partition}:scheduler:{self.region}:{self.account}:schedule-group/{self.schedule_group}"

    def schedules_arn(self) -> str:
        """Every schedule of the plan's group (what a scheduling service may create and delete)."""
        return f"arn:{self.partition}:scheduler:{self.region}:{self.account}:schedule/{self.schedule_group}/*"

    def archive_arn(self) -> str:
        return f"arn:{self.partition}:events:{self.region}:{self.account}:archive/{self.archive}"

    def rule_arn(self, rule: str) -> str:
        return f"arn:{self.partition}:events:{self.region}:{self.account}:rule/{self.bus}/{rule}"

    def queue_arn(self, queue: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{queue}"

    def target_arn(self, rule) -> str:
        """What EventBridge delivers a rule's (or subscriber's) events to: its service's queue, or its function
        (``kind="lambda"``)."""
        if rule.target.kind == "lambda":
            return self.function_arn(rule.service)
        return self.queue_arn(rule.target.queue)

    def function_arn(self, service: str) -> str:
        """The ARN of ``service``'s Lambda function."""
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.service(service).function}"

    def table_arn(self, table: str) -> str:
        return f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{table}"

    def log_group_arn(self, function: str) -> str:
        """The ARN of a function's log group, streams included (what ``logs:PutLogEvents`` is granted on)."""
        return f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:/aws/lambda/{function}:*"

    @property
    def state_machine(self) -> str:
        """The name of the saga's Step Functions state machine (the orchestration style)."""
        return f"{self.prefix}-order-saga"

    def state_machine_arn(self) -> str:
        return f"arn:{self.partition}:states:{self.region}:{self.account}:stateMachine:{self.state_machine}"

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data. A Custom Event Bus plan has no archive (the bus keeps its events itself,
        ``retention_days``) and no rules: those keys are left out rather than shown empty or Classic's."""
        data = asdict(self)
        if self.bus_kind == "custom":
            for key in ("archive", "archive_retention_days", "rules"):
                data.pop(key, None)
        return data


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
    >>> from yafdp.plan import build_plan
    >>> kinds = {r.kind for r in plan_resources(build_plan(load_catalog()))}
    >>> sorted(kinds)
    ['archive', 'dead-letter queue', 'event bus', 'function', 'queue', 'role', 'rule', 'schedule group', 'table', 'target']
    """
    if plan.bus_kind == "custom":
        found = [Resource("event bus", plan.bus, "", {"Name": plan.bus, "Tags": plan.tags,
                                                      "StorageConfiguration": {"RetentionPeriodInDays": plan.retention_days}})]
    else:
        found = [
            Resource("event bus", plan.bus, "", {"Name": plan.bus, "Tags": plan.tags}),
            Resource("archive", plan.archive, "", {"EventSourceArn": plan.bus_arn(),
                                                   "RetentionDays": plan.archive_retention_days}),
        ]
    for subscriber in plan.subscribers:
        found.append(Resource("subscriber", subscriber.name, subscriber.service,
                              {k: v for k, v in subscriber.request(plan, plan.bus_arn()).items() if k != "EventBusArn"}))
        if subscriber.target.dead_letter_queue:
            found.append(Resource("dead-letter queue", subscriber.target.dead_letter_queue, subscriber.service,
                                  {"for": f"subscriber {subscriber.name}"}))
    for rule in plan.rules:
        target = rule.target
        arn = plan.function_arn(rule.service) if target.kind == "lambda" else plan.queue_arn(target.queue)
        definition = {"Arn": arn, "Handler": target.handler, "RetryPolicy": target.retry_policy.to_aws()}
        if target.dead_letter_queue:
            definition["DeadLetterConfig"] = {"Arn": plan.queue_arn(target.dead_letter_queue)}
        found += [
            Resource("rule", rule.name, rule.service, {"EventBusName": plan.bus, "EventPattern": rule.pattern}),
            Resource("target", f"{rule.name}/{target.id}", rule.service, definition),
        ]
        if target.dead_letter_queue:
            found.append(Resource("dead-letter queue", target.dead_letter_queue, rule.service, {"for": f"rule {rule.name}"}))
    if plan.schedule_group:
        found += [Resource("schedule group", plan.schedule_group, "", {"Name": plan.schedule_group, "Tags": plan.tags}),
                  Resource("role", plan.scheduler_role, "", {"Policy": plan.scheduler_policy})]
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
        if service.delivery_role:
            found.append(Resource("role", service.delivery_role, service.name, {"Policy": service.delivery_policy}))
    return found


# The longest name AWS allows for each kind of resource a plan names (EventBridge rules 64, SQS queues 80, Lambda
# functions 64, IAM roles 64, EventBridge archives 48).
NAME_LIMITS = {"rule": 64, "queue": 80, "function": 64, "role": 64, "archive": 48, "subscriber": 256, "event bus": 256,
               "schedule group": 64}


class PlanError(ConfigurationError):
    """The plan cannot be deployed as it is (e.g. a name longer than AWS allows)."""


def check_names(plan: DeploymentPlan) -> None:
    """Refuse, as :class:`PlanError`, a plan with a name longer than AWS allows (``yafdp plan`` and ``deploy``)."""
    names = [("archive", plan.archive)] + [("rule", r.name) for r in plan.rules]
    names += [("subscriber", s.name) for s in plan.subscribers] + [("event bus", plan.bus)]
    names += [("queue", r.target.dead_letter_queue) for r in plan.routes if r.target.dead_letter_queue]
    names += [("schedule group", plan.schedule_group), ("role", plan.scheduler_role)] if plan.schedule_group else []
    for s in plan.services:
        names += [("queue", s.queue), ("queue", s.queue_dead_letter_queue), ("function", s.function), ("role", s.role)]
        names += [("role", s.delivery_role)] if s.delivery_role else []
    too_long = [f"{kind} {name!r} ({len(name)} > {NAME_LIMITS[kind]})" for kind, name in names if len(name) > NAME_LIMITS[kind]]
    if too_long:
        raise PlanError(f"names longer than AWS allows: {', '.join(too_long)}; choose a shorter prefix than {plan.prefix!r}")
