"""The Lambda entry point of every service function: an SQS batch in, the messages that failed out; a Step Functions
Task's payload in, the Task's output out.

The function's environment (set by the deployer) says which service it is; the catalog is the one bundled
in the package. boto3 clients are made on the first invocation and reused while the container is warm.
"""

from __future__ import annotations

import json
import os

from yafdp.errors import RefusedError, RequestRefusedError

_functions: dict = {}  # by configuration: one per function in Lambda; several where a test drives them all


def lambda_handler(event: dict, context) -> dict:
    """Handle an SQS batch (``{"Records": [...]}``), a Step Functions Task (``{"task", "rule", "handler", "event"}``
    or ``{..., "failure"}``, the Task's ``Payload``), an event from a rule that targets the function directly
    (``{"rule", "event"}``, the rule's input transformer), a one-time schedule whose target is the function
    (``{"schedule", "Source", "DetailType", "Detail"}``: its event is published, ``{"published": [event ids]}``), or a
    direct API call (``{"entrypoint", "payload"}``).

    An SQS batch returns ``{"batchItemFailures": [...]}``; a Task returns its output ``{"emitted", "event"}``, or
    raises the failure event for the state's ``Catch`` (:meth:`~yafdp.backends.aws.function.ServiceFunction.run_task`);
    an API call returns ``{"result": ...}`` or ``{"error": {"type", "message", "field"}}`` when the service refused it.
    """
    function = _service_function(context)
    if "Records" in event:
        return function.handle_batch(event)
    if "task" in event and "rule" in event:  # Step Functions' lambda:invoke with a Task's Payload
        return function.run_task(event)
    if "rule" in event and "event" in event:  # a rule with a "lambda" target: EventBridge invoked it directly
        # Asynchronously: raising makes Lambda retry the event (twice), then discard it (or send it to the
        # function's on-failure destination, when one is configured).
        return {"outcome": function.handle_message({"messageId": event["event"].get("id"), "body": json.dumps(event),
                                                    "attributes": {}})}
    if "schedule" in event and "DetailType" in event:  # EventBridge Scheduler: a schedule whose target is the function
        # (a Custom Event Bus's schedule_target "function"): raising fails the invocation, which Scheduler retries
        return {"published": function.put_scheduled(event)}
    if "entrypoint" in event:
        try:
            return {"result": function.call(event["entrypoint"], event.get("payload"))}
        except RefusedError as exc:  # a refused call (a request the service refused, PublishError): the caller's answer
            refused = isinstance(exc, RequestRefusedError)
            return {"error": {"type": type(exc).__name__, "message": str(exc), "field": exc.field,
                              "problem": exc.problem if refused else str(exc), "request_refused": refused}}
    raise RefusedError(f"unexpected event with keys {sorted(event)}: expected an SQS batch, a Task, a schedule's event "
                       "or an API call")


def _service_function(context):
    """The function of the service the environment names, made once per configuration. Its plan names the ARNs of
    the partition, account and Region the function runs in: read from the invoked function's ARN (the Lambda
    context's ``invoked_function_arn``), or, without a context, from the default session and STS."""
    from yafdp.backends.aws.function import FunctionConfig

    config = FunctionConfig.from_environment(os.environ)
    function = _functions.get(config)
    if function is None:
        import boto3

        from yafdp.backends.aws.function import ServiceFunction, publisher
        from yafdp.catalog import load_catalog
        from yafdp.plan import build_plan

        arn = getattr(context, "invoked_function_arn", None)
        if arn:  # arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME
            partition, _, region, account = arn.split(":")[1:5]
        else:
            region = boto3.session.Session().region_name
            caller = boto3.client("sts").get_caller_identity()
            account, partition = caller["Account"], caller["Arn"].split(":")[1]
        catalog = load_catalog()  # the catalog folder the package carries (data/), its handlers and its world
        plan = build_plan(catalog, config.prefix, region=region, account=account, partition=partition,
                          run_id=config.prefix, bus=config.bus_kind)
        bus = boto3.client("eventbridgev2") if plan.bus_kind == "custom" else None
        function = _functions[config] = ServiceFunction(
            config, catalog, plan, catalog.code.world(), publisher(plan, boto3.client("events"), bus, config.bus_arn),
            boto3.client("dynamodb"), scheduler=boto3.client("scheduler"))
    return function
