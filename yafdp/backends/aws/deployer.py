"""Apply a deployment plan with boto3: create what is missing, update what differs, leave the rest alone.

Running :func:`apply` twice changes nothing the second time. Every resource carries the plan's prefix in
its name and the tags ``Project`` and ``RunId`` (archives cannot be tagged: they are found by name and
bus), which is how :mod:`yafdp.backends.aws.teardown` finds them again.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from yafdp.runtime.faults import Faults
from yafdp.plan import DeploymentPlan, RulePlan, ServicePlan
from yafdp.plan.model import (DEAD_LETTER_RETENTION_SECONDS, HANDLER, LOG_RETENTION_DAYS, MEMORY_MB, POLICY_NAME,
                              QUEUE_RETENTION_SECONDS, ROLE_PATH, RUNTIME, TABLE_ATTRIBUTES, TABLE_KEY_SCHEMA, PlanError)  # noqa: F401
from yafdp.patterns import pattern_text
from yafdp.plan.service_quotas import check_deployable

from yafdp.plan.custom_bus import delivery_trust_policy

from yafdp.backends.aws import custom_bus
from yafdp.backends.aws.clients import AwsClients
from yafdp.backends.aws.package import code_sha256
from yafdp.backends.aws.function import FunctionConfig
from yafdp.backends.aws.ownership import check_ownership

ROLE_PROPAGATION_SECONDS = 60  # a new IAM role can take a few seconds before Lambda may assume it


@dataclass(frozen=True)
class Change:
    """One thing :func:`apply` or :func:`~yafdp.backends.aws.teardown.destroy` did: ``create``, ``update`` or ``delete``."""

    action: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.action} {self.kind} {self.name}"


def input_template(rule: RulePlan) -> str:
    """What the rule's target receives: the event and the rule's name, so the function knows which
    handler to run (``aws.events.event.json`` is the whole original event).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> input_template(build_plan(load_catalog(), "demo").rule("payment-charges-order"))
    '{"rule": "demo-payment-charges-order", "event": <aws.events.event.json>}'
    """
    return rule.input_template


def apply(plan: DeploymentPlan, clients: AwsClients, package: bytes, *, run_functions: bool = True,
          faults: Faults = Faults(), seed: int = 0, echo: Callable[[str], None] = print) -> list[Change]:
    """Create or update everything in ``plan``; returns (and echoes) what changed, nothing when up to date.

    Parameters
    ----------
    plan
        from :func:`yafdp.plan.build_plan` with the target account and region.
    clients
        boto3 clients for AWS or a moto server.
    package
        the Lambda zip (:func:`yafdp.backends.aws.package.build_package`).
    run_functions
        enable the SQS event source mappings, so Lambda runs the handlers. On moto, which cannot execute
        Lambda code without a container engine, they are created disabled and
        :mod:`yafdp.backends.aws.poller` does their work in-process.
    faults, seed
        handler faults the functions inject (transient crashes, poison events), as on the local bus.

    Raises :class:`PlanError` for names longer than AWS allows or a quota exceeded
    (:func:`~yafdp.plan.service_quotas.check_deployable`), and
    :class:`~yafdp.backends.aws.ownership.NotOwnedError` when a resource of the plan exists without the
    plan's ``Project``/``RunId`` tags; nothing is changed then.

    (Run in ``tests/integration/test_documented_examples.py``: applying a plan twice changes nothing the second time.)
    """
    check_deployable(plan)
    check_ownership(plan, clients)  # before any change: refuse to update what another deployment (or anyone) owns
    return _Applier(plan, clients, echo).run(package, run_functions, faults, seed)


class _Applier:
    def __init__(self, plan: DeploymentPlan, clients: AwsClients, echo):
        self.plan, self.c, self.echo = plan, clients, echo
        self.changes: list[Change] = []
        self.tag_list = [{"Key": k, "Value": v} for k, v in plan.tags.items()]

    def changed(self, action: str, kind: str, name: str) -> None:
        change = Change(action, kind, name)
        self.changes.append(change)
        self.echo(str(change))

    def run(self, package: bytes, run_functions: bool, faults: Faults, seed: int) -> list[Change]:
        plan = self.plan
        custom = plan.bus_kind == "custom"
        if custom:  # the Custom Event Bus keeps its events itself: no archive
            bus_arn = custom_bus.apply_bus(self)
        else:
            bus_arn = ""
            self.bus()
            self.archive()
        for route in plan.routes:
            if route.target.dead_letter_queue:
                self.queue(route.target.dead_letter_queue, self.dead_letter_attributes(
                    route.target.dead_letter_queue_policy, route.target.dead_letter_queue))
        for service in plan.services:
            self.queue(service.queue_dead_letter_queue, self.dead_letter_attributes(None, service.queue_dead_letter_queue))
            self.queue(service.queue, {
                **plan.queue_attributes, **_fifo(service.queue),
                "VisibilityTimeout": str(service.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(QUEUE_RETENTION_SECONDS),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": plan.queue_arn(service.queue_dead_letter_queue),
                                             "maxReceiveCount": service.max_receive_count}),
                # On a Custom Event Bus the subscribers' delivery roles send: no queue policy (UG subscribers).
                **({"Policy": json.dumps(service.queue_policy)} if service.queue_policy else {})})
            self.table(service.table)
            role_arn = self.role(service.role, service.trust_policy, service.policy,
                                 f"the {service.name} service's function: least privilege")
            if service.delivery_role:
                self.role(service.delivery_role, delivery_trust_policy(plan.account), service.delivery_policy,
                          f"what the {service.name} service's Custom Event Bus subscribers deliver with")
            self.log_group(service)
            self.function(service, role_arn, package, FunctionConfig.for_service(plan, service.name, faults, seed, bus_arn))
            self.event_source_mapping(service, run_functions)
        for route in plan.routes:  # last: by now every queue a rule sends to exists and is allowed to receive
            if custom:
                custom_bus.apply_subscriber(self, route, bus_arn)
            else:
                self.rule(route)
        return self.changes

    # ---------------------------------------------------------------- EventBridge

    def bus(self) -> None:
        events = self.c.events
        try:
            events.describe_event_bus(Name=self.plan.bus)
        except events.exceptions.ResourceNotFoundException:
            events.create_event_bus(Name=self.plan.bus, Tags=self.tag_list)
            self.changed("create", "event bus", self.plan.bus)

    def archive(self) -> None:
        events, plan = self.c.events, self.plan
        try:
            current = events.describe_archive(ArchiveName=plan.archive)
        except events.exceptions.ResourceNotFoundException:
            events.create_archive(ArchiveName=plan.archive, EventSourceArn=plan.bus_arn(),
                                  RetentionDays=plan.archive_retention_days, Description=f"every event on {plan.bus}")
            self.changed("create", "archive", plan.archive)
            return
        if current.get("RetentionDays") != plan.archive_retention_days:
            events.update_archive(ArchiveName=plan.archive, RetentionDays=plan.archive_retention_days)
            self.changed("update", "archive", plan.archive)

    def rule(self, rule: RulePlan) -> None:
        events, plan = self.c.events, self.plan
        description = rule.purpose[:512]
        try:
            current = events.describe_rule(Name=rule.name, EventBusName=plan.bus)
            same = (json.loads(current.get("EventPattern", "{}")) == rule.pattern and current.get("State") == "ENABLED"
                    and current.get("Description", "") == description)
        except events.exceptions.ResourceNotFoundException:
            current, same = None, False
        if not same:
            events.put_rule(Name=rule.name, EventBusName=plan.bus, EventPattern=pattern_text(rule.pattern),
                            State="ENABLED", Description=description, Tags=self.tag_list)
            self.changed("update" if current else "create", "rule", rule.name)
        target = rule.target
        wanted = {"Id": target.id, "Arn": plan.target_arn(rule),
                  "InputTransformer": {"InputTemplate": input_template(rule)},
                  "RetryPolicy": target.retry_policy.to_aws()}
        if target.dead_letter_queue:
            wanted["DeadLetterConfig"] = {"Arn": plan.queue_arn(target.dead_letter_queue)}
        if target.kind == "lambda":
            self.invoke_permission(rule)
        existing = {t["Id"]: t for t in events.list_targets_by_rule(Rule=rule.name, EventBusName=plan.bus)["Targets"]}
        have = existing.get(target.id)
        if have is None or any(_normal(have.get(k)) != _normal(v) for k, v in wanted.items()):
            events.put_targets(Rule=rule.name, EventBusName=plan.bus, Targets=[wanted])
            self.changed("update" if have else "create", "target", f"{rule.name}/{target.id}")
        strays = [i for i in existing if i != target.id]
        if strays:
            events.remove_targets(Rule=rule.name, EventBusName=plan.bus, Ids=strays)
            self.changed("delete", "target", f"{rule.name}/{','.join(strays)}")

    def invoke_permission(self, rule: RulePlan) -> None:
        """Let EventBridge invoke the function of a rule with a ``"lambda"`` target, for that rule only (the
        function's resource-based policy; without it EventBridge's delivery fails with NO_PERMISSIONS)."""
        lam, statement = self.c.lambda_, f"events-{rule.name}"[:100]
        try:
            lam.add_permission(FunctionName=self.plan.service(rule.service).function, StatementId=statement,
                               Action="lambda:InvokeFunction", Principal="events.amazonaws.com",
                               SourceArn=self.plan.rule_arn(rule.name))
            self.changed("create", "permission", statement)
        except lam.exceptions.ResourceConflictException:
            pass  # granted already

    # ---------------------------------------------------------------- SQS

    def dead_letter_attributes(self, policy: dict | None, name: str = "") -> dict:
        attributes = {**self.plan.queue_attributes, **_fifo(name),
                      "MessageRetentionPeriod": str(DEAD_LETTER_RETENTION_SECONDS)}
        if policy:
            attributes["Policy"] = json.dumps(policy)
        return attributes

    def queue(self, name: str, attributes: dict) -> None:
        sqs = self.c.sqs
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            sqs.create_queue(QueueName=name, Attributes=attributes, tags=dict(self.plan.tags))
            self.changed("create", "queue", name)
            return
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        differ = {k: v for k, v in attributes.items() if _attribute(k, current.get(k)) != _attribute(k, v)}
        if differ:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=differ)
            self.changed("update", "queue", f"{name} ({', '.join(sorted(differ))})")

    # ---------------------------------------------------------------- DynamoDB

    def table(self, name: str) -> None:
        dynamodb = self.c.dynamodb
        try:
            dynamodb.describe_table(TableName=name)
        except dynamodb.exceptions.ResourceNotFoundException:
            dynamodb.create_table(TableName=name, KeySchema=TABLE_KEY_SCHEMA, AttributeDefinitions=TABLE_ATTRIBUTES,
                                  BillingMode="PAY_PER_REQUEST", Tags=self.tag_list)
            dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            self.changed("create", "table", name)
        wanted = self.plan.point_in_time_recovery
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        status = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        if (status == "ENABLED") != wanted:
            dynamodb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": wanted})
            self.changed("update", "table", f"{name} (point-in-time recovery {'on' if wanted else 'off'})")

    # ---------------------------------------------------------------- IAM

    def role(self, name: str, trust: dict, policy: dict, description: str) -> str:
        """Create or update the role ``name`` (path ``/yafdp/``, tagged) with its trust policy and its one inline
        policy; returns its ARN."""
        iam = self.c.iam
        try:
            role = iam.get_role(RoleName=name)["Role"]
            if policy_document(role["AssumeRolePolicyDocument"]) != trust:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                self.changed("update", "role", f"{name} (trust policy)")
        except iam.exceptions.NoSuchEntityException:
            role = iam.create_role(RoleName=name, Path=ROLE_PATH, Tags=self.tag_list,
                                   AssumeRolePolicyDocument=json.dumps(trust), Description=description)["Role"]
            self.changed("create", "role", name)
        try:
            current = policy_document(iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)["PolicyDocument"])
        except iam.exceptions.NoSuchEntityException:
            current = None
        if current != policy:
            iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
            self.changed("create" if current is None else "update", "role policy", f"{name}/{POLICY_NAME}")
        return role["Arn"]

    # ---------------------------------------------------------------- CloudWatch Logs

    def log_group(self, service: ServicePlan) -> None:
        """The function's log group, made here (tagged, with a retention) so that destroy removes it too."""
        logs, name = self.c.logs, log_group_name(service)
        found = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if not any(g["logGroupName"] == name for g in found):
            logs.create_log_group(logGroupName=name, tags=dict(self.plan.tags))
            logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)
            self.changed("create", "log group", name)

    # ---------------------------------------------------------------- Lambda

    def function(self, service: ServicePlan, role_arn: str, package: bytes, config: FunctionConfig) -> None:
        lam = self.c.lambda_
        settings = {"Role": role_arn, "Handler": HANDLER, "Runtime": RUNTIME, "Timeout": service.function_timeout_seconds,
                    "MemorySize": MEMORY_MB, "Environment": {"Variables": config.to_environment()}}
        try:
            current = lam.get_function(FunctionName=service.function)["Configuration"]
        except lam.exceptions.ResourceNotFoundException:
            self._create_function(service, settings, package)
            self.changed("create", "function", service.function)
            return
        if current.get("CodeSha256") != code_sha256(package):
            lam.update_function_code(FunctionName=service.function, ZipFile=package)
            lam.get_waiter("function_updated_v2").wait(FunctionName=service.function)
            self.changed("update", "function", f"{service.function} (code)")
        differ = [k for k, v in settings.items() if current.get(k) != v]
        if differ:
            lam.update_function_configuration(FunctionName=service.function, **settings)
            lam.get_waiter("function_updated_v2").wait(FunctionName=service.function)
            self.changed("update", "function", f"{service.function} ({', '.join(differ)})")

    def _create_function(self, service: ServicePlan, settings: dict, package: bytes) -> None:
        lam = self.c.lambda_
        deadline = time.monotonic() + ROLE_PROPAGATION_SECONDS
        while True:
            try:
                lam.create_function(FunctionName=service.function, Code={"ZipFile": package}, Tags=dict(self.plan.tags),
                                    Description=f"yafdp {service.name} service", **settings)
                break
            except lam.exceptions.InvalidParameterValueException as exc:
                if "cannot be assumed" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2)  # the role was just created; IAM is eventually consistent
        lam.get_waiter("function_active_v2").wait(FunctionName=service.function)

    def event_source_mapping(self, service: ServicePlan, enabled: bool) -> None:
        lam, queue_arn = self.c.lambda_, self.plan.queue_arn(service.queue)
        wanted = {"BatchSize": service.batch_size, "FunctionResponseTypes": ["ReportBatchItemFailures"]}
        found = [m for m in lam.list_event_source_mappings(FunctionName=service.function)["EventSourceMappings"]
                 if m["EventSourceArn"] == queue_arn]
        if not found:
            lam.create_event_source_mapping(FunctionName=service.function, EventSourceArn=queue_arn, Enabled=enabled,
                                            Tags=dict(self.plan.tags), **wanted)
            self.changed("create", "event source mapping", f"{service.queue} → {service.function}"
                         + ("" if enabled else " (disabled: polled in-process)"))
            return
        current = found[0]
        is_enabled = current.get("State") in ("Enabled", "Enabling", "Updating", "Creating")
        if is_enabled != enabled or any(current.get(k) != v for k, v in wanted.items()):
            lam.update_event_source_mapping(UUID=current["UUID"], Enabled=enabled, **wanted)
            self.changed("update", "event source mapping", f"{service.queue} → {service.function}")


def _fifo(queue: str) -> dict:
    """A FIFO queue's attribute, which only CreateQueue takes (a queue named ``….fifo`` is one, SQS developer guide)."""
    return {"FifoQueue": "true"} if queue.endswith(".fifo") else {}


def log_group_name(service: ServicePlan) -> str:
    """Where Lambda writes the function's logs."""
    return f"/aws/lambda/{service.function}"


def policy_document(value) -> dict:
    """An IAM policy document as a dict (the API may hand it back URL-encoded)."""
    if isinstance(value, str):
        return json.loads(urllib.parse.unquote(value))
    return value


def _attribute(name: str, value):
    """A queue attribute in a form that compares equal however SQS spelled it back."""
    if value is None or name not in ("Policy", "RedrivePolicy"):
        return value
    document = json.loads(value)
    if "maxReceiveCount" in document:
        document["maxReceiveCount"] = int(document["maxReceiveCount"])
    return document


def _normal(value):
    """A target field as a comparable value (the API may drop empty maps)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v not in ({}, None)}
    return value
