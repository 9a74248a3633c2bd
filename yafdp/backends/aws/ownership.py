"""Touch only what this deployment owns: before :func:`~yafdp.backends.aws.deployer.apply` changes anything,
every resource of the plan that already exists must carry the deployment's ``Project`` and ``RunId`` tags.

A name is not proof of ownership: someone else's role or queue may be called ``<prefix>-order-role`` or
``<prefix>-order``. Updating it would replace their trust policy or queue attributes, so the deployment is
refused instead, naming every such resource, before anything is created or changed. Archives take no tags:
an existing archive is ours when it archives this deployment's bus.
"""

from __future__ import annotations

from typing import Callable, Iterator

from yafdp.errors import RefusedError
from yafdp.plan import DeploymentPlan

from yafdp.backends.aws import custom_bus
from yafdp.backends.aws.clients import AwsClients


class NotOwnedError(RefusedError):
    """Resources the plan would update exist but are not this deployment's; ``resources`` names them as
    ``(kind, name, what their tags say)``."""

    def __init__(self, plan: DeploymentPlan, resources: list[tuple[str, str, str]]):
        self.resources = resources
        wanted = ", ".join(f"{k}={v}" for k, v in sorted(plan.tags.items()))
        found = "; ".join(f"{kind} {name} ({tags})" for kind, name, tags in resources)
        super().__init__(f"refused to deploy {plan.prefix}: {found} already exist(s) and not tagged {wanted}, so not "
                         f"this deployment's; nothing was changed. Choose another --prefix, or remove them if they are yours")


def check_ownership(plan: DeploymentPlan, clients: AwsClients) -> None:
    """Raise :class:`NotOwnedError` if any resource of ``plan`` exists without the plan's ``Project`` and
    ``RunId`` tags (bus, rules or subscribers, queues, tables, functions, roles, log groups; archives by their bus).
    Makes read calls only."""
    strangers = [(kind, name, _describe(tags)) for kind, name, tags in _existing(plan, clients)
                 if not all(tags.get(k) == v for k, v in plan.tags.items())]
    if strangers:
        raise NotOwnedError(plan, strangers)


def _describe(tags: dict | None) -> str:
    if not tags:
        return "no tags"
    return "tags " + ", ".join(f"{k}={v}" for k, v in sorted(tags.items()))


def _pairs(tags: list[dict]) -> dict:
    return {t["Key"]: t["Value"] for t in tags}


def _existing(plan: DeploymentPlan, c: AwsClients) -> Iterator[tuple[str, str, dict]]:
    """``(kind, name, tags)`` of every resource of the plan that exists now."""
    events = c.events
    if plan.bus_kind == "custom":
        yield from custom_bus.existing(plan, c)
    bus = None if plan.bus_kind == "custom" else \
        _found(lambda: events.describe_event_bus(Name=plan.bus), events.exceptions.ResourceNotFoundException)
    if bus is not None:
        yield "event bus", plan.bus, _pairs(events.list_tags_for_resource(ResourceARN=bus["Arn"])["Tags"])
        for rule in plan.rules:
            found = _found(lambda: events.describe_rule(Name=rule.name, EventBusName=plan.bus),
                           events.exceptions.ResourceNotFoundException)
            if found is not None:
                yield "rule", rule.name, _pairs(events.list_tags_for_resource(ResourceARN=found["Arn"])["Tags"])
    archive = None if plan.bus_kind == "custom" else \
        _found(lambda: events.describe_archive(ArchiveName=plan.archive), events.exceptions.ResourceNotFoundException)
    if archive is not None and archive.get("EventSourceArn") != plan.bus_arn():
        yield "archive", plan.archive, {"archives": archive.get("EventSourceArn", "?")}
    queues = [r.target.dead_letter_queue for r in plan.routes if r.target.dead_letter_queue]
    queues += [q for s in plan.services for q in (s.queue_dead_letter_queue, s.queue)]
    for name in queues:
        url = _found(lambda: c.sqs.get_queue_url(QueueName=name)["QueueUrl"], c.sqs.exceptions.QueueDoesNotExist)
        if url is not None:
            yield "queue", name, c.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    for service in plan.services:
        table = _found(lambda: c.dynamodb.describe_table(TableName=service.table)["Table"],
                       c.dynamodb.exceptions.ResourceNotFoundException)
        if table is not None:
            yield "table", service.table, _pairs(c.dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", []))
        for name in filter(None, (service.role, service.delivery_role)):
            role = _found(lambda: c.iam.get_role(RoleName=name)["Role"], c.iam.exceptions.NoSuchEntityException)
            if role is not None:
                yield "role", name, _pairs(c.iam.list_role_tags(RoleName=name)["Tags"])
        function = _found(lambda: c.lambda_.get_function(FunctionName=service.function),
                          c.lambda_.exceptions.ResourceNotFoundException)
        if function is not None:
            yield "function", service.function, function.get("Tags", {})
        group = f"/aws/lambda/{service.function}"
        for found in c.logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", []):
            if found["logGroupName"] == group:
                arn = found["arn"].removesuffix(":*")
                yield "log group", group, c.logs.list_tags_for_resource(resourceArn=arn).get("tags", {})


def _found(call: Callable, missing: type[Exception]):
    """What ``call`` returns, or None when it raises ``missing`` (the resource does not exist)."""
    try:
        return call()
    except missing:
        return None
