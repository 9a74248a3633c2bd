"""The hybrid design, run (chapter 09): events between services, and the Restaurant service's review of a paid order
as a workflow of its own inside the service.

Between services nothing changes: the Restaurant still hears ``Payment_Success`` on the bus and publishes
``Restaurant_Confirmed_Order`` or ``Restaurant_Rejected_Order``. Inside it, the review is an Express workflow of four
steps, each a function of the Restaurant's own: is the kitchen open, are the items available, book a kitchen slot,
then publish the decision; a closed kitchen or a missing item is an error a ``Catch`` turns into the rejection. The
service's handler starts it synchronously (``StartSyncExecution``; the runner is a field of
:class:`WorkflowRestaurant`, :func:`yafdp.backends.local.sync_execution.start_sync_execution` by default) and the
whole execution commits with the delivery, as the shipped :func:`~yafdp.services.restaurant.review_order` does.
Nobody outside the Restaurant sees the workflow.

What the handler keeps outside the workflow is what only the service's state decides: an order decided already
(a duplicate delivery, a late payment after the deadline) and a restaurant that never answers (a person's step would
need a Standard workflow and ``.waitForTaskToken``, which an Express workflow cannot use: chapter 09's human step).

A variant of the shipped Restaurant for the course, run in memory (:func:`with_workflow_restaurant`), not deployed:
``yafdp plan``/``deploy`` know the shipped Restaurant only. On AWS the handler would call
``StartSyncExecution`` of a state machine of the Restaurant's stack, each Task a Lambda function of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from yafdp.backends.local.sync_execution import start_sync_execution
from yafdp.errors import BackendError
from yafdp.plan.step_functions import LAMBDA_INVOKE
from yafdp.runtime.unit_of_work import Envelope, UnitOfWork
from yafdp.services.restaurant import confirm, paid_order_to_review, reject


class KitchenClosed(Exception):
    """The restaurant is closed (a Task's error, which the workflow catches)."""


class ItemUnavailable(Exception):
    """Items of the order are sold out; the message is their ids, as JSON (a Task's error, caught)."""


class ReviewFailedError(BackendError):
    """The review's execution failed with an error nothing caught: the delivery fails, and is retried."""


def _task(name: str, function: str, payload: dict, **more) -> tuple[str, dict]:
    return name, {"Type": "Task", "Resource": LAMBDA_INVOKE,
                  "Parameters": {"FunctionName": function, "Payload": payload}, **more}


def review_definition() -> dict:
    """The review as an Amazon States Language definition (its Tasks: the ``restaurant-*`` functions of
    :class:`WorkflowRestaurant`). The execution's input is ``{"order": <the Payment_Success detail>}``."""
    rejected = {"ErrorEquals": ["KitchenClosed"], "ResultPath": "$.error", "Next": "Closed"}
    sold_out = {"ErrorEquals": ["ItemUnavailable"], "ResultPath": "$.error", "Next": "Sold out"}
    states = dict([
        _task("Is the kitchen open?", "restaurant-check-kitchen", {"restaurant_id.$": "$.order.restaurant_id"},
              ResultPath=None, Catch=[rejected], Next="Are the items available?"),
        _task("Are the items available?", "restaurant-check-items",
              {"restaurant_id.$": "$.order.restaurant_id", "items.$": "$.order.items"},
              ResultPath=None, Catch=[sold_out], Next="Book a kitchen slot"),
        _task("Book a kitchen slot", "restaurant-book-slot", {"restaurant_id.$": "$.order.restaurant_id"},
              ResultSelector={"ready_in_minutes.$": "$.Payload.ready_in_minutes"}, ResultPath="$.slot",
              Next="Confirm"),
        _task("Confirm", "restaurant-decide", {"decision": "confirmed", "order.$": "$.order", "slot.$": "$.slot"},
              ResultPath=None, End=True),
        ("Closed", {"Type": "Pass", "Result": "restaurant_closed", "ResultPath": "$.reason", "Next": "Reject"}),
        ("Sold out", {"Type": "Pass", "Result": "item_unavailable", "ResultPath": "$.reason", "Next": "Reject"}),
        _task("Reject", "restaurant-decide", {"decision": "rejected", "order.$": "$.order", "reason.$": "$.reason",
                                              "error.$": "$.error"}, ResultPath=None, End=True),
    ])
    return {"Comment": "The Restaurant's review of a paid order, inside the service (the hybrid design).",
            "StartAt": "Is the kitchen open?", "States": states}


@dataclass
class WorkflowRestaurant:
    """The Restaurant's ``review_order`` handler running :func:`review_definition` with ``start_sync_execution``
    (``(definition, functions, input, name=) -> execution`` with ``status``, ``error``, ``cause``, ``states`` and
    ``invocations``, as :func:`yafdp.backends.local.sync_execution.start_sync_execution`), and what its executions
    did: ``executions``, for the comparison."""

    start_sync_execution: Callable[..., Any] = start_sync_execution
    definition: dict = field(default_factory=review_definition)
    executions: list = field(default_factory=list)

    def review_order(self, event: Envelope, uow: UnitOfWork) -> None:
        """The handler of ``restaurant-reviews-paid-order`` (``Payment_Success``): decide as the workflow does.

        Raises :class:`ReviewFailedError` when the execution fails with an error nothing caught."""
        reviewing = paid_order_to_review(event, uow)
        if reviewing is None:
            return
        paid, who, restaurant = reviewing

        def check_kitchen(payload):
            if not restaurant["open"]:
                raise KitchenClosed(payload["restaurant_id"])
            return {}

        def check_items(payload):
            missing = [i["item_id"] for i in payload["items"] if not restaurant["menu"][i["item_id"]]["available"]]
            if missing:
                raise ItemUnavailable(json.dumps(missing))
            return {}

        def decide(payload):
            if payload["decision"] == "confirmed":
                confirm(uow, who, paid, payload["slot"]["ready_in_minutes"])
            else:
                cause = json.loads(payload["error"]["Cause"])
                missing = json.loads(cause["errorMessage"]) if cause["errorType"] == "ItemUnavailable" else []
                reject(uow, who, payload["reason"], unavailable=missing)
            return {}

        functions = {"restaurant-check-kitchen": check_kitchen, "restaurant-check-items": check_items,
                     "restaurant-book-slot": lambda payload: {"ready_in_minutes": restaurant["prep_minutes"]},
                     "restaurant-decide": decide}
        execution = self.start_sync_execution(self.definition, functions, {"order": paid}, name=event["id"])
        self.executions.append(execution)
        if execution.status != "SUCCEEDED":
            raise ReviewFailedError(f"the review of {who['order_id']} failed: {execution.error}: {execution.cause}")


def with_workflow_restaurant(catalog, restaurant: WorkflowRestaurant):
    """``catalog`` (the shipped one, or a copy of it) with its Restaurant service reviewing paid orders through
    ``restaurant``'s workflow: the same document (rules, events, source), its other handlers the shipped ones."""
    from yafdp.catalog.inline import add_service, copy_of
    from yafdp.services.restaurant import cancel_order, time_out_order

    document = copy_of(catalog, "restaurant", "restaurant")  # the same service, as a document to run in memory
    return add_service(catalog.without("restaurant"), document, {
        "review_order": restaurant.review_order, "cancel_order": cancel_order, "time_out_order": time_out_order})
