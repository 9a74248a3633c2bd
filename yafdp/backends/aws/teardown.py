"""Find what a deployment created (by name prefix and its ``Project``/``RunId`` tags) and remove it.

:func:`destroy` deletes in the order AWS requires: event source mappings before functions, targets before
rules before the bus (the archive, with its managed rule, before the bus too), a Custom Event Bus's subscribers
before it (when the clients reach a Custom Event Bus), and role policies before roles. Anything already gone is
skipped, so it is safe to run again after an interruption.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

from botocore.exceptions import ClientError

from yafdp.plan.model import PROJECT_TAG

from yafdp.backends.aws import custom_bus
from yafdp.backends.aws.clients import AwsClients
from yafdp.backends.aws.deployer import ROLE_PATH, Change

_GONE = {"ResourceNotFoundException", "NoSuchEntity", "AWS.SimpleQueueService.NonExistentQueue",
         "QueueDoesNotExist"}

_BUSY = {"ValidationException", "ResourceInUseException", "DeleteConflict", "ConcurrentModificationException"}
_TRIES = 15

# Deletion order: what must go before what (AWS refuses to delete a bus with rules, a rule with targets...).
ORDER = ("event source mapping", "function", "log group", "schedule group", "archive", "target", "rule", "subscriber",
         "custom event bus", "event bus", "queue", "table", "role policy", "role")


@dataclass(frozen=True)
class Found:
    """A resource of the deployment: its kind, name and what deleting it needs (URL, bus, role, ...)."""

    kind: str
    name: str
    handle: tuple = ()

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def inventory(clients: AwsClients, prefix: str, run_id: str | None = None) -> list[Found]:
    """Every resource named ``<prefix>-…`` and tagged ``Project=yafdp`` and ``RunId=<run_id>``
    (``run_id`` defaults to the prefix, as :func:`yafdp.backends.aws.deployment.deploy` tags them), in deletion order.

    (Run in ``tests/integration/test_documented_examples.py``: destroy removes everything the inventory found.)
    """
    run_id = run_id or prefix
    ours = _Tags(run_id)
    found = list(_functions(clients, prefix, ours)) + list(_event_bridge(clients, prefix, ours))
    found += [Found(kind, name, handle) for kind, name, handle in custom_bus.owned(clients, prefix, ours)]
    found += _queues(clients, prefix, ours) + _tables(clients, prefix, ours) + list(_roles(clients, prefix, ours))
    found += _log_groups(clients, prefix, ours) + _schedule_groups(clients, prefix, ours)
    return sorted(found, key=lambda r: (ORDER.index(r.kind), r.name))


def looks_custom(found: list[Found]) -> bool:
    """Whether an inventory made without a Custom Event Bus client is of a Custom Event Bus deployment: its service
    queues are FIFO and it has no Classic event bus (what ``yafdp export``/``destroy`` without ``--bus custom``
    would otherwise half-do)."""
    return (any(r.kind == "queue" and r.name.endswith(".fifo") for r in found)
            and not any(r.kind == "event bus" for r in found))


def destroy(clients: AwsClients, prefix: str, run_id: str | None = None,
            echo: Callable[[str], None] = print, found: list[Found] | None = None) -> list[Change]:
    """Delete everything :func:`inventory` finds (``found``: that inventory, when the caller has just read it);
    returns (and echoes) what was deleted."""
    deleted = []
    for resource in inventory(clients, prefix, run_id) if found is None else found:
        if not _delete(clients, resource):
            continue
        change = Change("delete", resource.kind, resource.name)
        deleted.append(change)
        echo(str(change))
    return deleted


def _delete(clients: AwsClients, resource: Found) -> bool:
    """Delete one resource; False if it was gone already. AWS may refuse for a few seconds while what
    depended on it is still going away (a bus whose archive rule is being removed): then try again."""
    for attempt in range(_TRIES):
        try:
            _DELETE[resource.kind](clients, resource)
            return True
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _GONE:
                return False
            if code not in _BUSY or attempt == _TRIES - 1:
                raise
            time.sleep(2)
    return False


class _Tags:
    def __init__(self, run_id: str):
        self.run_id = run_id

    def match(self, tags: dict) -> bool:
        return tags.get("Project") == PROJECT_TAG and tags.get("RunId") == self.run_id


def _pairs(tags: list[dict]) -> dict:
    return {t["Key"]: t["Value"] for t in tags}


def _functions(c: AwsClients, prefix: str, ours: _Tags) -> Iterator[Found]:
    for page in c.lambda_.get_paginator("list_functions").paginate():
        for function in page["Functions"]:
            name = function["FunctionName"]
            if not name.startswith(prefix + "-") or not ours.match(c.lambda_.list_tags(Resource=function["FunctionArn"])["Tags"]):
                continue
            for mapping in c.lambda_.list_event_source_mappings(FunctionName=name)["EventSourceMappings"]:
                queue = mapping["EventSourceArn"].rsplit(":", 1)[-1]
                yield Found("event source mapping", f"{queue} → {name}", (mapping["UUID"],))
            yield Found("function", name)


def _event_bridge(c: AwsClients, prefix: str, ours: _Tags) -> Iterator[Found]:
    events = c.events
    for bus in events.list_event_buses(NamePrefix=prefix + "-").get("EventBuses", []):
        if not ours.match(_pairs(events.list_tags_for_resource(ResourceARN=bus["Arn"])["Tags"])):
            continue
        for archive in events.list_archives(NamePrefix=prefix + "-").get("Archives", []):
            if archive.get("EventSourceArn") == bus["Arn"]:  # archives take no tags: theirs is the bus's
                yield Found("archive", archive["ArchiveName"])
        for rule in _rules(events, bus["Name"], prefix):
            if not ours.match(_pairs(events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"])):
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus["Name"])["Targets"]:
                yield Found("target", f"{rule['Name']}/{target['Id']}", (rule["Name"], bus["Name"], target["Id"]))
            yield Found("rule", rule["Name"], (bus["Name"],))
        yield Found("event bus", bus["Name"])


def _rules(events, bus: str, prefix: str) -> Iterator[dict]:
    token = None
    while True:
        page = events.list_rules(EventBusName=bus, NamePrefix=prefix + "-", **({"NextToken": token} if token else {}))
        yield from page.get("Rules", [])
        token = page.get("NextToken")
        if not token:
            return


def _queues(c: AwsClients, prefix: str, ours: _Tags) -> list[Found]:
    found = []
    for page in c.sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix + "-"):
        for url in page.get("QueueUrls", []):
            if ours.match(c.sqs.list_queue_tags(QueueUrl=url).get("Tags", {})):
                found.append(Found("queue", url.rsplit("/", 1)[-1], (url,)))
    return found


def _tables(c: AwsClients, prefix: str, ours: _Tags) -> list[Found]:
    found = []
    for page in c.dynamodb.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            if not name.startswith(prefix + "-"):
                continue
            arn = c.dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            if ours.match(_pairs(c.dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", []))):
                found.append(Found("table", name))
    return found


def _log_groups(c: AwsClients, prefix: str, ours: _Tags) -> list[Found]:
    found = []
    for page in c.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=f"/aws/lambda/{prefix}-"):
        for group in page["logGroups"]:
            arn = group["arn"].removesuffix(":*")
            if ours.match(c.logs.list_tags_for_resource(resourceArn=arn).get("tags", {})):
                found.append(Found("log group", group["logGroupName"]))
    return found


def _schedule_groups(c: AwsClients, prefix: str, ours: _Tags) -> list[Found]:
    """The deployment's EventBridge Scheduler group (deleting it deletes the schedules in it)."""
    if c.scheduler is None:
        return []
    found = []
    for page in c.scheduler.get_paginator("list_schedule_groups").paginate(NamePrefix=prefix + "-"):
        for group in page["ScheduleGroups"]:
            tags = c.scheduler.list_tags_for_resource(ResourceArn=group["Arn"]).get("Tags", [])
            if ours.match(_pairs(tags)):
                found.append(Found("schedule group", group["Name"]))
    return found


def _roles(c: AwsClients, prefix: str, ours: _Tags) -> Iterator[Found]:
    for page in c.iam.get_paginator("list_roles").paginate(PathPrefix=ROLE_PATH):
        for role in page["Roles"]:
            name = role["RoleName"]
            if not name.startswith(prefix + "-") or not ours.match(_pairs(c.iam.list_role_tags(RoleName=name)["Tags"])):
                continue
            for policy in c.iam.list_role_policies(RoleName=name)["PolicyNames"]:
                yield Found("role policy", f"{name}/{policy}", (name, policy))
            yield Found("role", name)


_DELETE = {
    "event source mapping": lambda c, r: c.lambda_.delete_event_source_mapping(UUID=r.handle[0]),
    "function": lambda c, r: c.lambda_.delete_function(FunctionName=r.name),
    "log group": lambda c, r: c.logs.delete_log_group(logGroupName=r.name),
    "archive": lambda c, r: c.events.delete_archive(ArchiveName=r.name),
    "target": lambda c, r: c.events.remove_targets(Rule=r.handle[0], EventBusName=r.handle[1], Ids=[r.handle[2]]),
    "rule": lambda c, r: c.events.delete_rule(Name=r.name, EventBusName=r.handle[0]),
    "event bus": lambda c, r: c.events.delete_event_bus(Name=r.name),
    "subscriber": lambda c, r: custom_bus.delete_subscriber(c, r.handle[0]),
    "custom event bus": lambda c, r: custom_bus.delete_bus(c, r.handle[0]),
    "queue": lambda c, r: c.sqs.delete_queue(QueueUrl=r.handle[0]),
    "table": lambda c, r: c.dynamodb.delete_table(TableName=r.name),
    "role policy": lambda c, r: c.iam.delete_role_policy(RoleName=r.handle[0], PolicyName=r.handle[1]),
    "role": lambda c, r: c.iam.delete_role(RoleName=r.name),
    "schedule group": lambda c, r: c.scheduler.delete_schedule_group(Name=r.name),
}
