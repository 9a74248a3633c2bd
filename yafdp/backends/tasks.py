"""What a Step Functions Task runs: the handler a Task names, on the event it carries, the same way in Lambda
(:mod:`yafdp.backends.aws.lambda_handler`, through :meth:`yafdp.backends.aws.function.ServiceFunction.run_task`) and in
the local runner (:mod:`yafdp.backends.local.step_functions`); a failure event becomes the error a ``Catch`` matches.
"""

from __future__ import annotations

import json
from typing import Any

from yafdp.catalog import Catalog, Subscription
from yafdp.errors import YafdpError
from yafdp.plan.step_functions import OrchestrationError
from yafdp.runtime.publishing import check_outbox


class SagaStepFailedError(YafdpError):
    """A handler published a failure event; raised to Step Functions so that a ``Catch`` runs the compensation.

    The error's name (the Lambda ``errorType``) is the event's detail-type, and its message the event as JSON.
    """

    def __init__(self, envelope: dict):
        self.envelope = envelope
        super().__init__(json.dumps(envelope))


_FAILURES: dict[str, type] = {}


def step_failed(envelope: dict) -> SagaStepFailedError:
    """The exception to raise for a failure event: its class is named after the event, because Lambda reports
    the class name as the error that ``Catch`` matches."""
    name = envelope["detail-type"]
    if name not in _FAILURES:
        _FAILURES[name] = type(name, (SagaStepFailedError,), {"__module__": __name__})
    return _FAILURES[name](envelope)


class TaskRunner:
    """Runs the handler a Task names on the event it carries, the same way in Lambda and in the local orchestrator.

    :meth:`run` calls the handler with the event envelope and a unit of work and checks what it publishes (as
    every backend does); the caller commits the unit of work, gives the published events their ids, then
    :meth:`output` turns them into the Task's output, or raises the failure event for the state's ``Catch``.
    """

    def __init__(self, catalog: Catalog, handlers: dict[str, Any] | None = None):
        self.catalog = catalog
        self._subscriptions = {s.rule: s for s in catalog.subscriptions}
        self._handlers: dict[str, Any] = dict(handlers or {})  # by catalog rule name; the others are resolved

    def subscription(self, payload: dict) -> Subscription:
        try:
            return self._subscriptions[payload["rule"]]
        except KeyError:
            raise OrchestrationError(f"the task names rule {payload.get('rule')!r}, which is not in the catalog") from None

    def run(self, payload: dict, uow) -> list[tuple]:
        """Run the handler; return what it published as ``(source, detail_type, detail, detail_json)`` tuples."""
        sub = self.subscription(payload)
        handler = self._handlers.get(sub.rule)
        if handler is None:
            handler = self._handlers[sub.rule] = self.catalog.handler(sub.service, sub.handler)
        handler(task_event(payload), uow)
        return check_outbox(self.catalog, sub.service, frozenset(sub.emits), uow.outbox)

    def output(self, envelopes: list[dict]) -> dict:
        """The Task's output for the events its handler published (at most one that is not a failure)."""
        failures = [e for e in envelopes if self.catalog.events[e["detail-type"]].kind == "failure"]
        if failures:
            raise step_failed(failures[0])
        if len(envelopes) > 1:
            raise OrchestrationError("a handler run by the state machine may publish one event, not "
                                     + ", ".join(e["detail-type"] for e in envelopes))
        if not envelopes:
            return {"emitted": "", "event": None}
        return {"emitted": envelopes[0]["detail-type"], "event": envelopes[0]}


def task_event(payload: dict) -> dict:
    """The event a Task reacts to: ``payload["event"]``, or the failure event inside a caught error's Cause
    (Lambda's error JSON, whose ``errorMessage`` is the event).

    Examples
    --------
    >>> failed = {"id": "e-1", "detail-type": "Payment_Failed", "detail": {"order_id": "ord-1"}}
    >>> task_event({"rule": "order-tracks-status", "failure": lambda_error(step_failed(failed))})["detail-type"]
    'Payment_Failed'
    """
    if "event" in payload:
        return payload["event"]
    cause = json.loads(payload["failure"]["Cause"])
    return json.loads(cause["errorMessage"]) if "errorMessage" in cause else cause


def lambda_error(exc: BaseException) -> dict:
    """The ``{"Error", "Cause"}`` Step Functions puts at a Catch's ResultPath when a Lambda raises ``exc``."""
    name = type(exc).__name__
    return {"Error": name, "Cause": json.dumps({"errorMessage": str(exc), "errorType": name})}
