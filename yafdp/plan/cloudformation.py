"""The deployment plan as an AWS CloudFormation template: the same resources the boto3 deployer creates, with
the same names, settings, tags and IAM policies, for teams that deploy with their usual tools.

ARNs are written with the pseudo-parameters ``${AWS::Partition}``, ``${AWS::Region}`` and ``${AWS::AccountId}``
(``Fn::Sub``), so one template deploys to any account, Region and partition ("Pseudo parameters reference",
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html). Every resource that
holds data gets the ``DeletionPolicy`` and ``UpdateReplacePolicy`` the plan chose for its kind
(:data:`yafdp.plan.model.REMOVAL_POLICIES`, each with its reason). The functions' code is the package ``yafdp`` builds
(:func:`yafdp.backends.aws.package.build_package`), uploaded to S3 by the user: its bucket and key are the
template's two parameters.
"""

from __future__ import annotations

import json
import re

from yafdp.catalog import Catalog
from yafdp.plan.builder import build_plan
from yafdp.plan.model import (DEAD_LETTER_RETENTION_SECONDS, HANDLER, LOG_RETENTION_DAYS, MEMORY_MB, POLICY_NAME,
                              QUEUE_RETENTION_SECONDS, ROLE_PATH, RUNTIME, TABLE_ATTRIBUTES, TABLE_KEY_SCHEMA,
                              DeploymentPlan, ServicePlan)

FORMATS = ("json", "yaml")


def template_plan(catalog: Catalog, prefix: str, **options) -> DeploymentPlan:
    """The plan with the account, Region and partition left to CloudFormation (``${AWS::AccountId}``,
    ``${AWS::Region}``, ``${AWS::Partition}``); ``options`` go to :func:`~yafdp.plan.builder.build_plan`."""
    return build_plan(catalog, prefix, account="${AWS::AccountId}", region="${AWS::Region}",
                      partition="${AWS::Partition}", run_id=prefix, **options)


def cloudformation_template(plan: DeploymentPlan, *, environment: dict[str, dict[str, str]] | None = None) -> dict:
    """The plan as a CloudFormation template (a dict, as JSON would hold it).

    ``environment`` maps a service to its function's environment variables (default: the service, bus,
    table and prefix, as :class:`~yafdp.backends.aws.function.FunctionConfig` sets them without faults).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> template = cloudformation_template(template_plan(load_catalog(), "demo"))
    >>> template["Resources"]["Bus"]["Properties"]["Name"], sorted(template["Parameters"])
    ('demo-saga', ['CodeS3Bucket', 'CodeS3Key'])
    """
    tags = [{"Key": k, "Value": v} for k, v in sorted(plan.tags.items())]
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
    for service in plan.services:
        resources.update(_service(plan, service, tags, (environment or {}).get(service.name)))
    for rule in plan.rules:
        target = rule.target
        resources[_logical("Rule", rule.name)] = {
            "Type": "AWS::Events::Rule",
            # the bus by name (its Ref is the name too; moto's CloudFormation only takes the plain name)
            "DependsOn": ["Bus", _logical("QueuePolicy", target.queue),
                          _logical("DeadLetterQueuePolicy", target.dead_letter_queue)],
            "Properties": {
                "Name": rule.name, "EventBusName": plan.bus, "EventPattern": rule.pattern, "State": "ENABLED",
                "Description": rule.purpose[:512],
                "Targets": [{"Id": target.id, "Arn": {"Fn::GetAtt": [_logical("Queue", target.queue), "Arn"]},
                             "InputTransformer": {"InputTemplate": rule.input_template},
                             "RetryPolicy": target.retry_policy.to_aws(),
                             "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [_logical("DeadLetterQueue", target.dead_letter_queue),
                                                                         "Arn"]}}}]}}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"yafdp: the choreography saga on EventBridge, SQS, Lambda and DynamoDB (prefix {plan.prefix})",
        "Parameters": {
            "CodeS3Bucket": {"Type": "String", "Description": "the S3 bucket holding the Lambda package yafdp builds"},
            "CodeS3Key": {"Type": "String", "Description": "the package's key in that bucket"},
        },
        "Resources": _substituted(resources),
        "Outputs": {"EventBusArn": {"Value": {"Fn::GetAtt": ["Bus", "Arn"]}}},
    }


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
    return {
        dead: _queue(plan, service.queue_dead_letter_queue, tags, {"MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS},
                     kind="dead-letter queue"),
        queue: _queue(plan, service.queue, tags, {
            "VisibilityTimeout": service.visibility_timeout_seconds, "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dead, "Arn"]},
                              "maxReceiveCount": service.max_receive_count}}, kind="queue"),
        _logical("QueuePolicy", service.queue): _queue_policy(service.queue, service.queue_policy),
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
