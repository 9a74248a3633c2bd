"""The deployment plan as an AWS CloudFormation template: the same resources the boto3 deployer creates, with
the same names, settings, tags and IAM policies, for teams that deploy with their usual tools.

ARNs are written with the pseudo-parameters ``${AWS::Partition}``, ``${AWS::Region}`` and ``${AWS::AccountId}``
(``Fn::Sub``), so one template deploys to any account, Region and partition ("Pseudo parameters reference",
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html). Every resource that
holds data gets the ``DeletionPolicy`` and ``UpdateReplacePolicy`` the plan chose for its kind
(:data:`yafdp.plan.model.REMOVAL_POLICIES`, each with its reason). The functions' code is the package ``yafdp`` builds
(:func:`yafdp.backends.aws.package.build_package`), uploaded to S3 by the user: its bucket and key are the
template's two parameters.

On a Custom Event Bus (``plan.bus_kind == "custom"``) the template holds the ``AWS::EventsV2`` resources instead of
the Classic bus, its archive and rules ("Creating Custom Event Bus resources with AWS CloudFormation",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-cloudformation.html: "The ``AWS::Events``
types belong to Custom Event Bus - Classic and cannot configure a Custom Event Bus"): the bus with its retention,
one ``AWS::EventsV2::Subscriber`` per subscriber, each the plan's ``CreateSubscriber`` request
(:meth:`~yafdp.plan.custom_bus.SubscriberPlan.request`) with its ARNs as ``Fn::GetAtt`` of the template's own
resources, SQS FIFO service and on-failure queues, and a delivery role per service in place of the queues'
resource policies (the subscriber's ``RoleArn`` "must name a role in the same account as the subscriber", same
page). What CloudFormation does not check (one filter per scope, the 4,096 bytes of a subscriber's filters,
JSONata expressions) the plan has checked already: :func:`~yafdp.plan.builder.build_plan` asks the Custom Event
Bus's own ``CreateSubscriber`` checks about every subscriber and refuses the catalog otherwise.

Which Regions have the ``AWS::EventsV2`` types AWS does not say; cfn-lint's bundled resource schemas list them in
some (``eu-west-1``, ``us-east-1`` among them) and not in others (``sa-east-1``: E3006). The template stays the same
for every Region, as the Classic one does: ``yafdp plan`` neither guesses availability from a linter's data nor
refuses a Region, and CloudFormation refuses the template where a type is missing before it creates anything
("Unrecognized resource types", https://aws.amazon.com/premiumsupport/knowledge-center/cloudformation-template-validation/).
"""

from __future__ import annotations

import json
import re

from yafdp.catalog import Catalog
from yafdp.plan.builder import build_plan
from yafdp.plan.custom_bus import (ON_FAILURE_FIFO_ATTRIBUTES, REPLACEMENT_CAVEAT, delivery_trust_policy,
                                    refuse_function_targets)
from yafdp.plan.model import (DEAD_LETTER_RETENTION_SECONDS, HANDLER, LOG_RETENTION_DAYS, MEMORY_MB, POLICY_NAME,
                              QUEUE_RETENTION_SECONDS, ROLE_PATH, RUNTIME, TABLE_ATTRIBUTES, TABLE_KEY_SCHEMA,
                              DeploymentPlan, ServicePlan, scheduler_trust_policy)

FORMATS = ("json", "yaml")


def template_plan(catalog: Catalog, prefix: str, **options) -> DeploymentPlan:
    """The plan with the account, Region and partition left to CloudFormation (``${AWS::AccountId}``,
    ``${AWS::Region}``, ``${AWS::Partition}``); ``options`` go to :func:`~yafdp.plan.builder.build_plan` (``bus``
    among them). Raises what ``build_plan`` raises (:class:`~yafdp.catalog.model.CatalogError` for a subscriber the
    Custom Event Bus would refuse)."""
    return build_plan(catalog, prefix, account="${AWS::AccountId}", region="${AWS::Region}",
                      partition="${AWS::Partition}", run_id=prefix, **options)


def cloudformation_template(plan: DeploymentPlan, *, environment: dict[str, dict[str, str]] | None = None) -> dict:
    """The plan as a CloudFormation template (a dict, as JSON would hold it): the Classic bus with its archive and
    rules, or, for a Custom Event Bus plan, the ``AWS::EventsV2`` bus and subscribers (see the module's docstring).

    ``environment`` maps a service to its function's environment variables (default: the service, bus,
    table and prefix, as :class:`~yafdp.backends.aws.function.FunctionConfig` sets them without faults; on a Custom
    Event Bus also the bus's kind and ARN). Raises :class:`~yafdp.errors.RefusedError` for a Custom Event Bus
    subscriber whose target is a function.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> template = cloudformation_template(template_plan(load_catalog(), "demo"))
    >>> template["Resources"]["Bus"]["Properties"]["Name"], sorted(template["Parameters"])
    ('demo-saga', ['CodeS3Bucket', 'CodeS3Key'])
    >>> custom = cloudformation_template(template_plan(load_catalog(), "demo", bus="custom"))
    >>> custom["Resources"]["Bus"]["Type"], custom["Outputs"]["EventBusArn"]["Value"]
    ('AWS::EventsV2::EventBus', {'Fn::GetAtt': ['Bus', 'EventBusArn']})
    """
    tags = [{"Key": k, "Value": v} for k, v in sorted(plan.tags.items())]
    custom = plan.bus_kind == "custom"
    resources = _custom_bus(plan, tags) if custom else _classic_bus(plan, tags)
    for service in plan.services:
        resources.update(_service(plan, service, tags, (environment or {}).get(service.name)))
    if plan.schedule_group:
        resources.update(_schedules(plan, tags, {"Fn::GetAtt": ["Bus", "EventBusArn"]} if custom else None))
    if custom:
        for subscriber in plan.subscribers:
            resources[_logical("Subscriber", subscriber.name)] = _subscriber(plan, subscriber, tags)
    else:
        for rule in plan.rules:
            resources.update(_rule(plan, rule))
    on = ("an EventBridge Custom Event Bus (subscribers), SQS FIFO queues" if custom else "EventBridge, SQS")
    description = f"yafdp: the choreography saga on {on}, Lambda and DynamoDB (prefix {plan.prefix})"
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": description + (f". {REPLACEMENT_CAVEAT}" if custom else ""),
        "Parameters": {
            "CodeS3Bucket": {"Type": "String", "Description": "the S3 bucket holding the Lambda package yafdp builds"},
            "CodeS3Key": {"Type": "String", "Description": "the package's key in that bucket"},
        },
        "Resources": _substituted(resources),
        "Outputs": {"EventBusArn": {"Value": {"Fn::GetAtt": ["Bus", "EventBusArn" if custom else "Arn"]}}},
    }


def _schedules(plan: DeploymentPlan, tags: list, bus_arn: dict | None) -> dict:
    """EventBridge Scheduler: the group of the services' one-time schedules (the saga's deadlines) and the role they
    put their events on the bus with; ``bus_arn`` replaces the plan's bus ARN in the role's policy (a Custom Event
    Bus's ARN ends in an id EventBridge generates, which only ``Fn::GetAtt`` names)."""
    policy = plan.scheduler_policy
    if bus_arn is not None:
        policy = {**policy, "Statement": [{**st, "Resource": bus_arn} if st["Action"] == "events:PutEvents" else st
                                          for st in policy["Statement"]]}
    return {
        "ScheduleGroup": {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": plan.schedule_group,
                                                                                   "Tags": tags}},
        _logical("Role", plan.scheduler_role): {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": plan.scheduler_role, "Path": ROLE_PATH,
            "AssumeRolePolicyDocument": scheduler_trust_policy(plan.account),
            "Description": "EventBridge Scheduler's one-time schedules: put the scheduled events on the bus",
            "Policies": [{"PolicyName": POLICY_NAME, "PolicyDocument": policy}], "Tags": tags}},
    }


def _classic_bus(plan: DeploymentPlan, tags: list) -> dict:
    """The Classic bus, its archive and each rule's dead-letter queue (the rules come after the services' queues)."""
    resources: dict[str, dict] = {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": plan.bus, "Tags": tags}},
        "Archive": {"Type": "AWS::Events::Archive", "Properties": {
            "ArchiveName": plan.archive, "SourceArn": {"Fn::GetAtt": ["Bus", "Arn"]},
            "RetentionDays": plan.archive_retention_days, "Description": f"every event on {plan.bus}"}},
    }
    for rule in plan.rules:
        resources[_logical("DeadLetterQueue", rule.target.dead_letter_queue)] = _queue(
            plan, rule.target.dead_letter_queue, tags, {"MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS},
            kind="dead-letter queue")
        resources[_logical("DeadLetterQueuePolicy", rule.target.dead_letter_queue)] = _queue_policy(
            rule.target.dead_letter_queue, rule.target.dead_letter_queue_policy)
    return resources


def _rule(plan: DeploymentPlan, rule) -> dict:
    """A Classic rule with its one target: the service's queue, or its function (``kind="lambda"``), which the rule,
    and only it, may then invoke (the function's resource-based policy, as the deployer grants it)."""
    target, rule_id = rule.target, _logical("Rule", rule.name)
    direct = target.kind == "lambda"
    arn = _logical("Function" if direct else "Queue", plan.service(rule.service).function if direct else target.queue)
    resources = {rule_id: {
        "Type": "AWS::Events::Rule",
        # the bus by name (its Ref is the name too; moto's CloudFormation only takes the plain name)
        "DependsOn": ["Bus", _logical("QueuePolicy", target.queue),
                      _logical("DeadLetterQueuePolicy", target.dead_letter_queue)],
        "Properties": {
            "Name": rule.name, "EventBusName": plan.bus, "EventPattern": rule.pattern, "State": "ENABLED",
            "Description": rule.purpose[:512],
            "Targets": [{"Id": target.id, "Arn": {"Fn::GetAtt": [arn, "Arn"]},
                         "InputTransformer": {"InputTemplate": rule.input_template},
                         "RetryPolicy": target.retry_policy.to_aws(),
                         "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [_logical("DeadLetterQueue", target.dead_letter_queue),
                                                                     "Arn"]}}}]}}}
    if direct:
        resources[_logical("Permission", rule.name)] = {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": {"Ref": arn}, "Action": "lambda:InvokeFunction", "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}}
    return resources


def _custom_bus(plan: DeploymentPlan, tags: list) -> dict:
    """The Custom Event Bus (its retention, and the removal policy the plan chose for it) and each subscriber's
    on-failure queue (the subscribers come after the services' queues and delivery roles).

    Raises :class:`~yafdp.errors.RefusedError` for a subscriber whose target is a function: the function would
    get the bare event, without the subscriber's name to pick its handler by (the deployer refuses it too)."""
    refuse_function_targets(plan.subscribers, "in a template")
    resources = {"Bus": kept(plan, "event bus", {"Type": "AWS::EventsV2::EventBus", "Properties": {
        "Name": plan.bus, "Description": f"the {plan.prefix} saga's events, each order one event group",
        "StorageConfiguration": {"RetentionPeriodInDays": plan.retention_days}, "Tags": tags}})}
    for subscriber in plan.subscribers:
        queue = subscriber.target.dead_letter_queue
        if queue:
            fifo = {"FifoQueue": True, **_booleans(ON_FAILURE_FIFO_ATTRIBUTES)} if queue.endswith(".fifo") else {}
            resources[_logical("DeadLetterQueue", queue)] = _queue(
                plan, queue, tags, {**fifo, "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS},
                kind="dead-letter queue")
    return resources


def _subscriber(plan: DeploymentPlan, subscriber, tags: list) -> dict:
    """The subscriber as ``AWS::EventsV2::Subscriber``: its ``CreateSubscriber`` request, whose ARNs are those of
    the template's bus, queues and delivery role (a bus's ARN ends in an id EventBridge generates: ``Fn::GetAtt``
    is the only way to name it), tagged."""
    properties = subscriber.request(plan, {"Fn::GetAtt": ["Bus", "EventBusArn"]})
    invoke = properties["InvokeConfiguration"]
    invoke["TargetArn"] = {"Fn::GetAtt": [_logical("Queue", subscriber.target.queue), "Arn"]}
    invoke["RoleArn"] = {"Fn::GetAtt": [_logical("Role", subscriber.role), "Arn"]}
    if "OnFailureConfiguration" in properties:
        properties["OnFailureConfiguration"] = {
            "Arn": {"Fn::GetAtt": [_logical("DeadLetterQueue", subscriber.target.dead_letter_queue), "Arn"]}}
    return {"Type": "AWS::EventsV2::Subscriber", "Properties": {**properties, "Tags": tags}}


def render(template: dict, output: str = "json") -> str:
    """The template as text, ``json`` or ``yaml`` (long-form intrinsic functions, e.g. ``Fn::GetAtt``, valid in both).

    Raises :class:`ValueError` for another output.
    """
    if output == "json":
        return json.dumps(template, indent=2) + "\n"
    if output == "yaml":
        import yaml

        return yaml.safe_dump(template, sort_keys=False, width=120)
    raise ValueError(f"output must be one of {FORMATS}, got {output!r}")


def _service(plan: DeploymentPlan, service: ServicePlan, tags: list, environment: dict | None) -> dict:
    queue, dead, role, group = (_logical("Queue", service.queue), _logical("DeadLetterQueue", service.queue_dead_letter_queue),
                                _logical("Role", service.role), _logical("LogGroup", service.function))
    function = _logical("Function", service.function)
    variables = environment or {"YAFDP_SERVICE": service.name, "YAFDP_PREFIX": plan.prefix, "YAFDP_BUS": plan.bus,
                                "YAFDP_TABLE": service.table, "YAFDP_MAX_RECEIVE_COUNT": str(service.max_receive_count),
                                "YAFDP_FAULTS": "{}", "YAFDP_SEED": "0"}
    if plan.bus_kind == "custom" and environment is None:  # the bus's ARN: PutEvents names the bus by it
        variables |= {"YAFDP_BUS_KIND": "custom", "YAFDP_BUS_ARN": {"Fn::GetAtt": ["Bus", "EventBusArn"]}}
    fifo = {"FifoQueue": True} if service.fifo_queue else {}  # a FIFO queue's dead-letter queue is FIFO too
    resources = {
        dead: _queue(plan, service.queue_dead_letter_queue, tags,
                     {**fifo, "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS}, kind="dead-letter queue"),
        queue: _queue(plan, service.queue, tags, {
            **fifo, "VisibilityTimeout": service.visibility_timeout_seconds,
            "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dead, "Arn"]},
                              "maxReceiveCount": service.max_receive_count}}, kind="queue"),
    }
    if service.queue_policy:  # on a Custom Event Bus the delivery role sends instead (UG subscribers)
        resources[_logical("QueuePolicy", service.queue)] = _queue_policy(service.queue, service.queue_policy)
    if service.delivery_role:
        resources[_logical("Role", service.delivery_role)] = {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": service.delivery_role, "Path": ROLE_PATH,
            "AssumeRolePolicyDocument": delivery_trust_policy(plan.account),
            "Description": f"what the {service.name} service's Custom Event Bus subscribers deliver with",
            "Policies": [{"PolicyName": POLICY_NAME, "PolicyDocument": service.delivery_policy}], "Tags": tags}}
    return resources | {
        _logical("Table", service.table): kept(plan, "table", {"Type": "AWS::DynamoDB::Table", "Properties": {
            "TableName": service.table, "KeySchema": TABLE_KEY_SCHEMA, "AttributeDefinitions": TABLE_ATTRIBUTES,
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": plan.point_in_time_recovery},
            "Tags": tags}}),
        role: {"Type": "AWS::IAM::Role", "Properties": {
            "RoleName": service.role, "Path": ROLE_PATH, "AssumeRolePolicyDocument": service.trust_policy,
            "Description": f"the {service.name} service's function: least privilege",
            "Policies": [{"PolicyName": POLICY_NAME, "PolicyDocument": service.policy}], "Tags": tags}},
        group: kept(plan, "log group", {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": f"/aws/lambda/{service.function}", "RetentionInDays": LOG_RETENTION_DAYS, "Tags": tags}}),
        function: {"Type": "AWS::Lambda::Function", "DependsOn": [group], "Properties": {
            "FunctionName": service.function, "Handler": HANDLER, "Runtime": RUNTIME,
            "Role": {"Fn::GetAtt": [role, "Arn"]}, "Timeout": service.function_timeout_seconds, "MemorySize": MEMORY_MB,
            "Environment": {"Variables": variables}, "Description": f"yafdp {service.name} service",
            "Code": {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}, "Tags": tags}},
        _logical("EventSourceMapping", service.function): {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
            "FunctionName": {"Ref": function}, "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
            "BatchSize": service.batch_size, "FunctionResponseTypes": ["ReportBatchItemFailures"], "Enabled": True}},
    }


def kept(plan: DeploymentPlan, kind: str, resource: dict) -> dict:
    """``resource`` (a template's resource that holds data) with the ``DeletionPolicy`` and ``UpdateReplacePolicy``
    the plan chose for ``kind`` (a key of ``plan.removal_policies``, e.g. ``"table"``).

    Raises :class:`KeyError` for a kind the plan has no policy for: a new kind of stateful resource needs one.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> kept(template_plan(load_catalog(), "demo"), "table", {"Type": "AWS::DynamoDB::Table"})["DeletionPolicy"]
    'Retain'
    """
    return {**resource, **plan.removal_policies[kind].to_cloudformation()}


def _queue(plan: DeploymentPlan, name: str, tags: list, properties: dict, *, kind: str) -> dict:
    encryption = {"SqsManagedSseEnabled": plan.queue_attributes.get("SqsManagedSseEnabled") == "true"}
    return kept(plan, kind, {"Type": "AWS::SQS::Queue",
                             "Properties": {"QueueName": name, **encryption, **properties, "Tags": tags}})


def _booleans(attributes: dict) -> dict:
    """SQS attributes as the API takes them (``"true"``) as CloudFormation's booleans."""
    return {name: value == "true" for name, value in attributes.items()}


def _queue_policy(queue: str, policy: dict) -> dict:
    return {"Type": "AWS::SQS::QueuePolicy",
            "Properties": {"Queues": [{"Ref": _logical("DeadLetterQueue" if queue.endswith("-dlq") else "Queue", queue)}],
                           "PolicyDocument": policy}}


def _logical(kind: str, name: str) -> str:
    """A CloudFormation logical id (alphanumeric) for a resource of ``kind`` named ``name``.

    Examples
    --------
    >>> _logical("Queue", "demo-payment-charges-order-dlq")
    'QueueDemoPaymentChargesOrderDlq'
    """
    return kind + "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _substituted(value):
    """Strings holding ``${AWS::…}`` as ``Fn::Sub``, everywhere in ``value``."""
    if isinstance(value, dict):
        return {k: _substituted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_substituted(v) for v in value]
    if isinstance(value, str) and "${AWS::" in value:
        return {"Fn::Sub": value}
    return value
