"""A handler's schedule requests (``uow.schedule``, ``uow.cancel_schedule``) as EventBridge Scheduler calls, the same for
every backend: the local emulator (:mod:`yafdp.backends.local.eventbridge_scheduler`) and boto3's ``scheduler`` client.

A request is checked like a publication: the event must be one the service may schedule (its catalog entry point's
``schedules``) and its detail must pass the event's schema. It becomes a one-time schedule in the plan's schedule group,
``at()`` the requested time (UTC, whole seconds), with no flexible window, deleted after it runs, sent with the plan's
scheduler role. Its target (:func:`schedule_target`) puts the event on the saga's bus:

* on the Classic bus, the templated EventBridge PutEvents target: the bus's ARN, ``EventBridgeParameters`` naming the
  event's ``DetailType`` and the service's ``Source``, ``Input`` the detail ("Using templated targets",
  https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html);
* on a Custom Event Bus, what ``bus.json``'s ``custom_event_bus.schedule_target`` says, as AWS's Scheduler pages do
  not name the Custom Event Bus (:data:`yafdp.catalog.model.SCHEDULE_TARGETS`): ``"function"``, the scheduling
  service's own function (the templated Lambda Invoke target), ``Input`` ``{"schedule", "Source", "DetailType",
  "Detail"}``, which the function publishes (:meth:`yafdp.backends.aws.function.ServiceFunction.put_scheduled`); or
  ``"universal"``, the universal target ``arn:aws:scheduler:::aws-sdk:eventbridgev2:putEvents`` ("Using universal
  targets", https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html: the service is
  the AWS SDK's identifier, boto3's ``eventbridgev2``), ``Input`` the PutEvents request: ``EventBusArn`` and the
  entry with its ``EventGroupId`` and a ``DeduplicationId`` naming the schedule.

:func:`scheduled_entries` reads any of the three back: what the target puts on the bus.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache

from yafdp.catalog import Catalog
from yafdp.plan.model import DeploymentPlan
from yafdp.runtime.json_text import compact_ascii
from yafdp.runtime.publishing import INVALID_ARGUMENT, DeliveryError, PreparedEntry, custom_bus_entries

UNIVERSAL_PUT_EVENTS = "arn:{partition}:scheduler:::aws-sdk:eventbridgev2:putEvents"  # the Custom Event Bus's PutEvents


def at_expression(epoch_seconds: float) -> str:
    """The ``at()`` expression of a one-time schedule due at ``epoch_seconds`` (UTC), rounded up to the whole second
    (the expression has no fraction of a second: a deadline is never early).

    Examples
    --------
    >>> at_expression(1_767_225_600.2)
    'at(2026-01-01T00:00:01)'
    """
    return _at_whole_second(int(-(-epoch_seconds // 1)))


@lru_cache(maxsize=256)  # a run's deadlines fall on the same seconds, many orders per second
def _at_whole_second(whole: int) -> str:
    return f"at({datetime.fromtimestamp(whole, timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')})"


def schedule_calls(catalog: Catalog, plan: DeploymentPlan, service: str, requests, now_epoch: float, *,
                   bus_arn: str | None = None) -> list[tuple[str, dict]]:
    """The Scheduler API calls for ``service``'s schedule requests made at ``now_epoch`` (epoch seconds):
    ``("create_schedule", kwargs)`` and ``("delete_schedule", kwargs)`` in request order. ``bus_arn`` is the
    deployed Custom Event Bus's ARN (its id is EventBridge's; the plan's ARN ends in ``*``), which a universal
    target names.

    Raises :class:`~yafdp.runtime.publishing.DeliveryError` for an event the service may not schedule or a detail its
    schema refuses: the handler's call then fails, and nothing of it is committed.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> catalog = load_catalog()
    >>> detail = {"order_id": "ord-1", "customer_id": "cus-1", "restaurant_id": "res-napoli", "deadline_seconds": 900}
    >>> [(call, kwargs["ScheduleExpression"]) for call, kwargs in schedule_calls(
    ...     catalog, build_plan(catalog), "order", [("create", "deadline-ord-1", 900, "Order_Timed_Out", detail)],
    ...     1_767_225_600.0)]
    [('create_schedule', 'at(2026-01-01T00:15:00)')]
    """
    allowed = None  # what the service may schedule, asked once a request creates a schedule
    calls = []
    for request in requests:
        if request[0] == "delete":
            calls.append(("delete_schedule", {"Name": request[1], "GroupName": plan.schedule_group}))
            continue
        _, name, after_seconds, detail_type, detail = request
        if allowed is None:
            allowed = catalog.services[service].may_schedule()
        if detail_type not in allowed:
            raise DeliveryError(INVALID_ARGUMENT, f"service {service!r} may not schedule {detail_type!r} (its catalog "
                                                  f"entry points schedule {sorted(allowed) or 'nothing'})")
        try:
            catalog.validate_detail(detail_type, detail)
        except Exception as exc:  # fastjsonschema names the field
            raise DeliveryError(INVALID_ARGUMENT, f"the scheduled {detail_type} breaks its schema: {exc}") from None
        calls.append(("create_schedule", {
            "Name": name, "GroupName": plan.schedule_group,
            "ScheduleExpression": at_expression(now_epoch + float(after_seconds)),
            "ScheduleExpressionTimezone": "UTC", "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": schedule_target(catalog, plan, service, name, detail_type, detail, bus_arn=bus_arn),
        }))
    return calls


def schedule_target(catalog: Catalog, plan: DeploymentPlan, service: str, name: str, detail_type: str, detail: dict,
                    *, bus_arn: str | None = None) -> dict:
    """The ``Target`` of ``service``'s one-time schedule ``name`` that puts ``detail_type`` with ``detail`` on the
    plan's bus (see the module's docstring for the three kinds).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> shipped = load_catalog()  # a Custom Event Bus's schedule_target: "function"
    >>> for bus in ("classic", "custom"):
    ...     print(schedule_target(shipped, build_plan(shipped, bus=bus), "order", "d-1", "Order_Timed_Out", {})["Arn"])
    arn:aws:events:eu-west-1:000000000000:event-bus/yafdp-saga
    arn:aws:lambda:eu-west-1:000000000000:function:yafdp-order
    """
    source, role = catalog.services[service].source, plan.role_arn(plan.scheduler_role)
    text = compact_ascii(detail)
    if plan.bus_kind != "custom":
        return {"Arn": plan.bus_arn(), "RoleArn": role, "Input": text,
                "EventBridgeParameters": {"DetailType": detail_type, "Source": source}}
    settings = catalog.bus.custom
    if settings.schedule_target == "function":
        return {"Arn": plan.function_arn(service), "RoleArn": role, "Input": compact_ascii(
            {"schedule": name, "Source": source, "DetailType": detail_type, "Detail": detail})}
    entries = custom_bus_entries([PreparedEntry(source, detail_type, detail, text)], settings, f"schedule#{name}",
                                 plan.deduplication == "id")
    return {"Arn": UNIVERSAL_PUT_EVENTS.format(partition=plan.partition), "RoleArn": role,
            "Input": compact_ascii({"EventBusArn": bus_arn or plan.bus_arn(), "Entries": entries})}


def scheduled_entries(target: dict) -> list[tuple[str, str, str]]:
    """What a schedule's ``Target`` (one :func:`schedule_target` makes) puts on the bus when it runs:
    ``[(source, detail_type, detail_text)]``.

    Raises :class:`ValueError`, saying what is wrong, for a target of another kind or an ``Input`` it cannot read.

    Examples
    --------
    >>> scheduled_entries({"Arn": "arn:aws:lambda:eu-west-1:1:function:f", "Input": '{"schedule": "d-1", '
    ...                    '"Source": "yafdp.order", "DetailType": "Order_Timed_Out", "Detail": {"order_id": "o"}}'})
    [('yafdp.order', 'Order_Timed_Out', '{"order_id":"o"}')]
    """
    arn = target.get("Arn") if isinstance(target, dict) else None
    try:
        request = json.loads(target.get("Input", "{}")) if isinstance(arn, str) else None
    except (TypeError, ValueError):
        request = None
    if not isinstance(request, dict):
        raise ValueError("Target needs an Arn and an Input that is a JSON object")
    if ":event-bus/" in arn:  # the templated EventBridge PutEvents target
        parameters = target.get("EventBridgeParameters")
        if not isinstance(parameters, dict) or not all(isinstance(parameters.get(k), str) and parameters[k]
                                                       for k in ("DetailType", "Source")):
            raise ValueError("an event bus target needs EventBridgeParameters with a DetailType and a Source")
        return [(parameters["Source"], parameters["DetailType"], target["Input"])]
    if arn.endswith(":aws-sdk:eventbridgev2:putEvents"):
        entries = request.get("Entries")
        if not isinstance(request.get("EventBusArn"), str) or not isinstance(entries, list) or not entries or \
                not all(isinstance(e, dict) and all(isinstance(e.get(k), str) for k in ("Source", "DetailType", "Detail"))
                        for e in entries):
            raise ValueError("the eventbridgev2:putEvents target's Input needs an EventBusArn and Entries, each with a "
                             "Source, a DetailType and a Detail")
        return [(e["Source"], e["DetailType"], e["Detail"]) for e in entries]
    if ":lambda:" in arn and ":function:" in arn:
        if not all(isinstance(request.get(k), str) for k in ("schedule", "Source", "DetailType")) or \
                not isinstance(request.get("Detail"), dict):
            raise ValueError("a function target's Input needs a schedule, a Source, a DetailType and a Detail object")
        return [(request["Source"], request["DetailType"], compact_ascii(request["Detail"]))]
    raise ValueError(f"a target {arn!r} that puts no event on the saga's bus: expected an event bus, the saga "
                     "service's function or arn:aws:scheduler:::aws-sdk:eventbridgev2:putEvents")
