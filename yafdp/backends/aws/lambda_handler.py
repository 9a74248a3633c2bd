"""The Lambda entry point of every service function: an SQS batch in, the messages that failed out.

The function's environment (set by the deployer) says which service it is; the catalog is the one bundled
in the package. boto3 clients are made on the first invocation and reused while the container is warm.
"""

from __future__ import annotations

import json
import os

from yafdp.errors import RefusedError, RequestRefusedError

_function = None


def lambda_handler(event: dict, context) -> dict:
    """Handle an SQS batch (``{"Records": [...]}``), an event from a rule that targets the function directly
    (``{"rule", "event"}``, the rule's input transformer), or a direct API call (``{"entrypoint", "payload"}``).

    An SQS batch returns ``{"batchItemFailures": [...]}``; an API call returns ``{"result": ...}`` or
    ``{"error": {"type", "message", "field"}}`` when the service refused it.
    """
    function = _service_function()
    if "Records" in event:
        return function.handle_batch(event)
    if "rule" in event and "event" in event:  # a rule with a "lambda" target: EventBridge invoked it directly
        # Asynchronously: raising makes Lambda retry the event (twice), then discard it (or send it to the
        # function's on-failure destination, when one is configured).
        return {"outcome": function.handle_message({"messageId": event["event"].get("id"), "body": json.dumps(event),
                                                    "attributes": {}})}
    if "entrypoint" in event:
        try:
            return {"result": function.call(event["entrypoint"], event.get("payload"))}
        except RefusedError as exc:  # a refused call (a request the service refused, PublishError): the caller's answer
            refused = isinstance(exc, RequestRefusedError)
            return {"error": {"type": type(exc).__name__, "message": str(exc), "field": exc.field,
                              "problem": exc.problem if refused else str(exc), "request_refused": refused}}
    raise RefusedError(f"unexpected event with keys {sorted(event)}: expected an SQS batch or an API call")


def _service_function():
    global _function
    if _function is None:
        import boto3

        from yafdp.backends.aws.function import FunctionConfig, ServiceFunction
        from yafdp.catalog import load_catalog
        from yafdp.plan import build_plan

        config = FunctionConfig.from_environment(os.environ)
        catalog = load_catalog()  # the catalog folder the package carries (data/), its handlers and its world
        _function = ServiceFunction(config, catalog, build_plan(catalog, config.prefix), catalog.code.world(),
                                    boto3.client("events"), boto3.client("dynamodb"))
    return _function
