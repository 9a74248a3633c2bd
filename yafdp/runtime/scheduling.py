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

import re
from datetime import datetime, timezone
from functools import lru_cache

from yafdp.catalog import Catalog
from yafdp.plan.model import DeploymentPlan
from yafdp.runtime.json_text import compact_ascii, loads
from yafdp.runtime.publishing import INVALID_ARGUMENT, DeliveryError, PreparedEntry, custom_bus_entries

# CreateSchedule's Name: "Length Constraints: Minimum length of 1. Maximum length of 64. Pattern: ^[0-9a-zA-Z-_.]+$"
# (https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html; a unit test compares it with
# botocore's service model). The one member of the saga's CreateSchedule requests a handler chooses.
SCHEDULE_NAME = re.compile(r"[0-9a-zA-Z\-_.]{1,64}")
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
    target names. (:class:`ScheduleCalls` makes them, with what every request of the service shares worked out once.)

    Raises :class:`~yafdp.runtime.publishing.DeliveryError` for a schedule name CreateSchedule refuses, an event the
    service may not schedule or a detail its schema refuses: the handler's call then fails, and nothing of it is
    committed.

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
    return ScheduleCalls(catalog, plan, service, bus_arn=bus_arn).calls(requests, now_epoch)


class ScheduleCalls:
    """:func:`schedule_calls` for one service of a plan, with what all its requests share worked out once (the
    schedule group, what the service may schedule, its source, the scheduler role, the bus): a backend that turns
    every order's deadline into calls keeps one per service.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> catalog = load_catalog()
    >>> [call for call, _ in ScheduleCalls(catalog, build_plan(catalog), "order").calls([("delete", "d-1")], 0.0)]
    ['delete_schedule']
    """

    __slots__ = ("catalog", "plan", "service", "group", "bus_arn", "source", "role", "_allowed", "_classic_arn")

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, service: str, *, bus_arn: str | None = None):
        self.catalog, self.plan, self.service, self.bus_arn = catalog, plan, service, bus_arn
        self.group = plan.schedule_group
        self.source, self.role = catalog.services[service].source, plan.role_arn(plan.scheduler_role)
        self._allowed: frozenset[str] | None = None  # what the service may schedule, asked once a request creates one
        self._classic_arn = plan.bus_arn() if plan.bus_kind != "custom" else None

    def calls(self, requests, now_epoch: float) -> list[tuple[str, dict]]:
        """The calls for ``requests`` made at ``now_epoch`` (:func:`schedule_calls`, which says what it raises)."""
        calls = []
        for request in requests:
            if request[0] == "delete":
                calls.append(("delete_schedule", {"Name": request[1], "GroupName": self.group}))
                continue
            _, name, after_seconds, detail_type, detail = request
            if not isinstance(name, str) or SCHEDULE_NAME.fullmatch(name) is None:
                raise DeliveryError(INVALID_ARGUMENT, f"the schedule name {name!r} is not one CreateSchedule takes: 1 "
                                                      "to 64 letters, digits, '-', '_' or '.'")
            allowed = self._allowed
            if allowed is None:
                allowed = self._allowed = self.catalog.services[self.service].may_schedule()
            if detail_type not in allowed:
                raise DeliveryError(INVALID_ARGUMENT, f"service {self.service!r} may not schedule {detail_type!r} (its "
                                                      f"catalog entry points schedule {sorted(allowed) or 'nothing'})")
            try:
                self.catalog.validate_detail(detail_type, detail)
            except Exception as exc:  # fastjsonschema names the field
                raise DeliveryError(INVALID_ARGUMENT, f"the scheduled {detail_type} breaks its schema: {exc}") from None
            calls.append(("create_schedule", {
                "Name": name, "GroupName": self.group,
                "ScheduleExpression": at_expression(now_epoch + float(after_seconds)),
                "ScheduleExpressionTimezone": "UTC", "FlexibleTimeWindow": {"Mode": "OFF"},
                "ActionAfterCompletion": "DELETE",
                "Target": self.target(name, detail_type, detail),
            }))
        return calls

    def target(self, name: str, detail_type: str, detail: dict) -> dict:
        """The ``Target`` of the service's one-time schedule ``name`` (:func:`schedule_target`)."""
        text = compact_ascii(detail)
        if self._classic_arn is not None:
            return {"Arn": self._classic_arn, "RoleArn": self.role, "Input": text,
                    "EventBridgeParameters": {"DetailType": detail_type, "Source": self.source}}
        catalog, plan, source = self.catalog, self.plan, self.source
        settings = catalog.bus.custom
        if settings.schedule_target == "function":
            return {"Arn": plan.function_arn(self.service), "RoleArn": self.role, "Input": compact_ascii(
                {"schedule": name, "Source": source, "DetailType": detail_type, "Detail": detail})}
        entries = custom_bus_entries([PreparedEntry(source, detail_type, detail, text)], settings, f"schedule#{name}",
                                     plan.deduplication == "id")
        return {"Arn": UNIVERSAL_PUT_EVENTS.format(partition=plan.partition), "RoleArn": self.role,
                "Input": compact_ascii({"EventBusArn": self.bus_arn or plan.bus_arn(), "Entries": entries})}


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
    return ScheduleCalls(catalog, plan, service, bus_arn=bus_arn).target(name, detail_type, detail)


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
        request = loads(target.get("Input", "{}")) if isinstance(arn, str) else None
    except (TypeError, ValueError):
        request = None
    if not isinstance(request, dict):
        raise ValueError("Target needs an Arn and an Input that is a JSON object")
    if ":event-bus/" in arn:  # the templated EventBridge PutEvents target
        parameters = target.get("EventBridgeParameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        detail_type, source = parameters.get("DetailType"), parameters.get("Source")
        if not (isinstance(detail_type, str) and detail_type and isinstance(source, str) and source):
            raise ValueError("an event bus target needs EventBridgeParameters with a DetailType and a Source")
        return [(source, detail_type, target["Input"])]
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
