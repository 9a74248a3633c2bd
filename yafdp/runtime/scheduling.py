"""A handler's schedule requests (``uow.schedule``, ``uow.cancel_schedule``) as EventBridge Scheduler calls, the same for
every backend: the local emulator (:mod:`yafdp.backends.local.eventbridge_scheduler`) and boto3's ``scheduler`` client.

A request is checked like a publication: the event must be one the service may schedule (its catalog entry point's
``schedules``) and its detail must pass the event's schema. It becomes a one-time schedule in the plan's schedule group,
``at()`` the requested time (UTC, whole seconds), with no flexible window, deleted after it runs, whose target is the
saga's bus: the templated EventBridge PutEvents target, ``EventBridgeParameters`` naming the event's ``DetailType`` and
the service's ``Source``, ``Input`` the detail, sent with the plan's scheduler role ("EventBridge Scheduler: using
templated targets", https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from yafdp.catalog import Catalog
from yafdp.plan.model import DeploymentPlan
from yafdp.runtime.publishing import INVALID_ARGUMENT, DeliveryError


def at_expression(epoch_seconds: float) -> str:
    """The ``at()`` expression of a one-time schedule due at ``epoch_seconds`` (UTC), rounded up to the whole second
    (the expression has no fraction of a second: a deadline is never early).

    Examples
    --------
    >>> at_expression(1_767_225_600.2)
    'at(2026-01-01T00:00:01)'
    """
    whole = int(-(-epoch_seconds // 1))
    return f"at({datetime.fromtimestamp(whole, timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')})"


def schedule_calls(catalog: Catalog, plan: DeploymentPlan, service: str, requests, now_epoch: float) -> list[tuple[str, dict]]:
    """The Scheduler API calls for ``service``'s schedule requests made at ``now_epoch`` (epoch seconds):
    ``("create_schedule", kwargs)`` and ``("delete_schedule", kwargs)`` in request order.

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
    allowed = catalog.services[service].may_schedule()
    calls = []
    for request in requests:
        if request[0] == "delete":
            calls.append(("delete_schedule", {"Name": request[1], "GroupName": plan.schedule_group}))
            continue
        _, name, after_seconds, detail_type, detail = request
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
            "Target": {"Arn": plan.bus_arn(), "RoleArn": plan.role_arn(plan.scheduler_role),
                       "EventBridgeParameters": {"DetailType": detail_type, "Source": catalog.services[service].source},
                       "Input": json.dumps(detail, separators=(",", ":"))},
        }))
    return calls
