"""A deployment's Custom Event Bus on AWS (or on the bus ``yafdp serve`` serves next to a moto account): the bus
and its subscribers, made, found again by name and tags, and removed, with boto3's ``eventbridgev2`` client.

A bus's ARN ends in an id EventBridge generates ("a bus ARN cannot be derived from its name", UG "What is a
Custom Event Bus", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-what-is.html), so the
bus is found by its name (``ListEventBuses`` with ``NamePrefix``) and its ARN passed on. Creating and deleting a
bus are asynchronous: the deployer waits for ``ACTIVE`` with botocore's ``EventBusActive`` waiter and teardown for
it to be gone with ``EventBusDeleted`` (M ``waiters-2.json``). Only ``Name``, ``EventBusArn``, ``Type``,
``StartingPosition``, ``PointInTimeConfiguration`` and the target are fixed once a subscriber exists (UG
"Updating a subscriber", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-update.html): a
subscriber that differs in one of them is replaced, any other difference is an ``UpdateSubscriber``.
"""

from __future__ import annotations

import json
from typing import Iterator

from yafdp.errors import BackendError, RefusedError
from yafdp.plan import DeploymentPlan

# What UpdateSubscriber may change, as CreateSubscriber names it (M UpdateSubscriberRequest).
MUTABLE = ("Description", "State", "FilterConfiguration", "BatchConfiguration", "Transformer", "RetryPolicy",
           "OnFailureConfiguration", "LogConfiguration")
# What CreateSubscriber fixes for good, with AWS's default when a request leaves it out (SPEC.md Appendix A.1).
FIXED = {"Type": "UNORDERED", "StartingPosition": "LATEST", "PointInTimeConfiguration": None}
WAIT_SECONDS = 300  # how long a waiter waits for a bus to be ACTIVE or gone before it gives up


def _waiting(clients) -> dict:
    """The waiters' ``WaiterConfig``: a look every ``clients.bus_waiter_delay`` seconds, for up to :data:`WAIT_SECONDS`."""
    delay = clients.bus_waiter_delay
    return {"Delay": delay, "MaxAttempts": round(WAIT_SECONDS / delay)}


def client_of(clients):
    """The deployment's ``eventbridgev2`` client; :class:`~yafdp.errors.RefusedError` when there is none (moto
    alone has no Custom Event Bus: ``yafdp serve`` serves one)."""
    if clients.eventbridgev2 is None:
        raise RefusedError("a Custom Event Bus deployment needs an endpoint that serves the Custom Event Bus: moto has "
                           "none; start one with `yafdp serve --endpoint-url <the moto server>` and pass its URL "
                           "as --bus-endpoint-url")
    return clients.eventbridgev2


def find_bus(client, name: str) -> dict | None:
    """The bus named ``name`` (its ``ListEventBuses`` summary), or None."""
    for page in client.get_paginator("list_event_buses").paginate(NamePrefix=name):
        for bus in page["EventBuses"]:
            if bus["Name"] == name and bus.get("State") != "DELETING":
                return bus
    return None


def find_subscriber(client, bus_arn: str, name: str) -> dict | None:
    for page in client.get_paginator("list_subscribers").paginate(EventBusArn=bus_arn, NamePrefix=name):
        for subscriber in page["Subscribers"]:
            if subscriber["Name"] == name:
                return subscriber
    return None


def deployed_bus_arn(plan: DeploymentPlan, clients) -> str:
    """The ARN of the plan's Custom Event Bus as deployed; :class:`~yafdp.errors.BackendError` when it is not."""
    bus = find_bus(client_of(clients), plan.bus)
    if bus is None:
        raise BackendError(f"the Custom Event Bus {plan.bus} is not deployed: `yafdp deploy --bus custom` makes it")
    return bus["EventBusArn"]


# ---------------------------------------------------------------- applying the plan

def apply_bus(applier) -> str:
    """Create the plan's bus (retention as planned, tagged) or bring its retention up to date; wait until it is
    ``ACTIVE``; return its ARN. ``applier`` is the deployer's (``plan``, ``c`` the clients, ``changed``)."""
    plan, client = applier.plan, client_of(applier.c)
    storage = {"RetentionPeriodInDays": plan.retention_days}
    found = find_bus(client, plan.bus)
    if found is None:
        arn = client.create_event_bus(Name=plan.bus, StorageConfiguration=storage, Tags=dict(plan.tags),
                                      Description=f"the {plan.prefix} saga")["EventBusArn"]
        applier.changed("create", "event bus", plan.bus)
    else:
        arn = found["EventBusArn"]
        client.get_waiter("event_bus_active").wait(EventBusArn=arn, WaiterConfig=_waiting(applier.c))
        current = client.describe_event_bus(EventBusArn=arn).get("StorageConfiguration", {})
        if current.get("RetentionPeriodInDays") != plan.retention_days:
            client.update_event_bus(EventBusArn=arn, StorageConfiguration=storage)
            applier.changed("update", "event bus", f"{plan.bus} (retention {plan.retention_days} days)")
    client.get_waiter("event_bus_active").wait(EventBusArn=arn, WaiterConfig=_waiting(applier.c))
    return arn


def apply_subscriber(applier, subscriber, bus_arn: str) -> None:
    """Create ``subscriber`` (a :class:`~yafdp.plan.custom_bus.SubscriberPlan`) on the bus, update what may change,
    or replace it when what may not change differs."""
    plan, client = applier.plan, client_of(applier.c)
    wanted = subscriber.request(plan, bus_arn)
    found = find_subscriber(client, bus_arn, subscriber.name)
    if found is not None:
        current = client.describe_subscriber(SubscriberArn=found["SubscriberArn"])
        fixed = [k for k, default in FIXED.items() if _normal(current.get(k)) != _normal(wanted.get(k, default))]
        if current["InvokeConfiguration"]["TargetArn"] != wanted["InvokeConfiguration"]["TargetArn"]:
            fixed.append("InvokeConfiguration.TargetArn")
        if not fixed:
            changes = {}
            for member in MUTABLE:  # one the plan leaves out keeps AWS's default, except a filter or DLQ: {} removes it
                if member in wanted or member in ("FilterConfiguration", "OnFailureConfiguration"):
                    if _normal(current.get(member)) != _normal(wanted.get(member)):
                        changes[member] = wanted.get(member, {})
            invoke = {k: v for k, v in wanted["InvokeConfiguration"].items() if k != "TargetArn"}
            if _normal({k: v for k, v in current["InvokeConfiguration"].items() if k != "TargetArn"}) != _normal(invoke):
                changes["InvokeConfiguration"] = invoke
            if changes:
                client.update_subscriber(SubscriberArn=found["SubscriberArn"], **changes)
                applier.changed("update", "subscriber", f"{subscriber.name} ({', '.join(sorted(changes))})")
            return
        client.delete_subscriber(SubscriberArn=found["SubscriberArn"])
        applier.changed("delete", "subscriber", f"{subscriber.name} (its {', '.join(fixed)} cannot change)")
    client.create_subscriber(**wanted, Tags=dict(plan.tags))
    applier.changed("create", "subscriber", subscriber.name)


def _normal(value):
    """A subscriber member as a comparable value: patterns parsed, filters by scope, empty blocks as absent."""
    if isinstance(value, dict):
        if "Filters" in value:
            value = {**value, "Filters": sorted(({**f, "Pattern": json.loads(f["Pattern"])} if isinstance(
                f.get("Pattern"), str) else f for f in value["Filters"]), key=lambda f: str(f.get("Scope")))}
        return {k: _normal(v) for k, v in value.items() if v not in ({}, None)} or None
    return value


# ---------------------------------------------------------------- ownership and teardown

def existing(plan: DeploymentPlan, clients) -> Iterator[tuple[str, str, dict]]:
    """``(kind, name, tags)`` of the plan's bus and subscribers that exist now (read calls only)."""
    client = client_of(clients)
    bus = find_bus(client, plan.bus)
    if bus is None:
        return
    yield "event bus", plan.bus, client.list_tags_for_resource(ResourceArn=bus["EventBusArn"])["Tags"]
    for subscriber in plan.subscribers:
        found = find_subscriber(client, bus["EventBusArn"], subscriber.name)
        if found is not None:
            yield "subscriber", subscriber.name, client.list_tags_for_resource(ResourceArn=found["SubscriberArn"])["Tags"]


def owned(clients, prefix: str, ours) -> Iterator[tuple[str, str, tuple]]:
    """``(kind, name, handle)`` of the subscribers and Custom Event Buses named ``<prefix>-…`` whose tags ``ours``
    matches: each subscriber first (a bus with subscribers cannot be deleted, M ``DeleteEventBus``)."""
    client = clients.eventbridgev2
    if client is None:
        return
    for page in client.get_paginator("list_event_buses").paginate(NamePrefix=prefix + "-"):
        for bus in page["EventBuses"]:
            if bus.get("State") == "DELETING" or not ours.match(
                    client.list_tags_for_resource(ResourceArn=bus["EventBusArn"])["Tags"]):
                continue
            for subscribers in client.get_paginator("list_subscribers").paginate(EventBusArn=bus["EventBusArn"]):
                for subscriber in subscribers["Subscribers"]:
                    tags = client.list_tags_for_resource(ResourceArn=subscriber["SubscriberArn"])["Tags"]
                    if ours.match(tags):
                        yield "subscriber", subscriber["Name"], (subscriber["SubscriberArn"],)
            yield "custom event bus", bus["Name"], (bus["EventBusArn"],)


def delete_subscriber(clients, arn: str) -> None:
    clients.eventbridgev2.delete_subscriber(SubscriberArn=arn)


def delete_bus(clients, arn: str) -> None:
    """Delete a bus and wait until it is gone (``DELETING`` first: its name is taken until then)."""
    client = clients.eventbridgev2
    client.delete_event_bus(EventBusArn=arn)
    client.get_waiter("event_bus_deleted").wait(EventBusArn=arn, WaiterConfig=_waiting(clients))
