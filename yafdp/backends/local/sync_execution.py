"""A synchronous Express workflow execution (``StartSyncExecution``), run in this process: a workflow inside one
service, the hybrid design's part (chapter 09).

"Synchronous Express Workflows start a workflow, wait until it completes, and then return the result", and can be
invoked from AWS Lambda ("Synchronous and Asynchronous Express Workflows",
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-express-synchronous.html); ``StartSyncExecution``
"will return a 200 OK response, even if your execution fails" (AWS Step Functions API Reference,
https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html), so the caller reads the
status; a synchronous Express execution runs at most once ("At-most-once workflow execution",
https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html, as ``data/workflows.json``
quotes it):
a service's function calls it and gets the output, or the error, back. Here the caller is a handler and the Tasks are
Python functions standing for the service's own Lambda functions, run one after the other in the handler's unit of
work, so what the workflow stores and publishes commits with the delivery, or not at all.

The States language is the local Step Functions runner's (:mod:`yafdp.backends.local.asl`): the same definition
checks, input and output processing (``InputPath``, ``Parameters``, ``ResultSelector``, ``ResultPath``,
``OutputPath``), error names, ``Retry`` before ``Catch``, and Choice rules. What this runner adds is running to the end
at once, on no clock: a retrier's interval is not waited (its ``MaxAttempts`` are counted), and the five-minute limit
cannot be reached. It refuses what it cannot run as Step Functions would, before anything runs: ``Parallel`` states,
``TimeoutSeconds``, and callback Tasks (``.waitForTaskToken``: Express workflows "do not support Run a Job (.sync) or
Wait for Callback (.waitForTaskToken)", https://docs.aws.amazon.com/step-functions/latest/dg/connect-supported-services.html).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from yafdp.backends.local import asl
from yafdp.backends.tasks import lambda_error
from yafdp.plan.step_functions import OrchestrationError, is_callback, is_lambda_invoke, walk_states

MAX_STATES_ENTERED = 10_000  # a loop that never ends is refused as a failed execution, not run for ever


@dataclass
class SyncExecution:
    """How one execution ended: ``status`` ``SUCCEEDED`` (with ``output``) or ``FAILED`` (with ``error`` and
    ``cause``), as ``StartSyncExecution`` answers; ``states`` the names of the states entered, in order (each entry
    and each retry a state transition); ``invocations`` how many times its Tasks invoked a function (retries
    included)."""

    status: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    states: list[str] = field(default_factory=list)
    invocations: int = 0


def check_express_definition(definition: dict) -> None:
    """Refuse a definition this runner cannot run as Step Functions would (see the module), naming the state.

    Raises :class:`~yafdp.plan.step_functions.OrchestrationError`."""
    asl.check_definition(definition)
    if "TimeoutSeconds" in definition:
        raise OrchestrationError("TimeoutSeconds: a synchronous execution here runs on no clock")
    for name, state in walk_states(definition):
        if state["Type"] == "Parallel":
            raise OrchestrationError(f"state {name!r}: Parallel states are not run by the synchronous runner")
        if state["Type"] == "Task":
            if is_callback(state["Resource"]):
                raise OrchestrationError(f"state {name!r}: an Express workflow cannot wait for a task token "
                                         "(.waitForTaskToken): a person's step needs a Standard workflow")
            if not is_lambda_invoke(state["Resource"]):
                raise OrchestrationError(f"state {name!r}: the synchronous runner invokes Lambda functions only "
                                         "(arn:aws:states:::lambda:invoke)")
            if "TimeoutSeconds" in state:
                raise OrchestrationError(f"state {name!r}: TimeoutSeconds: a synchronous execution here runs on no clock")


def start_sync_execution(definition: dict, functions: Mapping[str, Callable[[Any], Any]], execution_input: Any, *,
                         name: str = "", seed: int = 0) -> SyncExecution:
    """Run ``definition`` on ``execution_input`` to its end and return how it ended.

    ``functions`` maps each Task's ``Parameters.FunctionName`` to ``function(payload) -> result``: the Task's result is
    ``{"ExecutedVersion", "Payload": result, "StatusCode": 200}`` as Lambda's optimized integration returns it, and an
    exception is the Task's error, named after its type, as Lambda reports a function error
    (:func:`yafdp.backends.tasks.lambda_error`). A FunctionName not in ``functions`` fails the Task with
    ``Lambda.ResourceNotFoundException``. ``name`` is the execution's name (``$$.Execution.Name``).

    Raises :class:`~yafdp.plan.step_functions.OrchestrationError` for a definition it cannot run
    (:func:`check_express_definition`); an exception a Task's function raises is the Task's error, not raised."""
    check_express_definition(definition)
    states, name_of_state = definition["States"], definition["StartAt"]
    data, entered, invoked = execution_input, [], [0]
    jitter = random.Random(seed)

    def ended(status: str, output=None, error=None, cause=None) -> SyncExecution:
        return SyncExecution(status, output, error, cause, entered, invoked[0])

    while True:
        if len(entered) >= MAX_STATES_ENTERED:
            return ended("FAILED", None, asl.RUNTIME, f"more than {MAX_STATES_ENTERED} states entered")
        state, current = states[name_of_state], name_of_state
        entered.append(current)
        context = {"State": {"Name": current}, "Execution": {"Name": name, "Input": execution_input}}
        kind = state["Type"]
        try:
            if kind == "Succeed":
                return ended("SUCCEEDED", asl.select(asl.select(data, state.get("InputPath", "$")),
                                                     state.get("OutputPath", "$")))
            if kind == "Fail":
                return ended("FAILED", None, state.get("Error", ""), state.get("Cause", ""))
            effective = asl.select(data, state.get("InputPath", "$"))
            if kind == "Choice":
                name_of_state = asl.choose(current, state, effective)
                data = asl.select(effective, state.get("OutputPath", "$"))
                continue
            if "Parameters" in state:
                effective = asl.filler(state["Parameters"])(effective, context)
            if kind == "Pass":
                result = state.get("Result", effective)
            else:
                result, error = _invoke(state, effective, functions, jitter, entered, current, invoked)
                if error is not None:
                    caught = asl.catcher_for(state.get("Catch", ()), error["Error"])
                    if caught is None:
                        return ended("FAILED", None, error["Error"], error["Cause"])
                    data, name_of_state = asl.place(data, error, caught.get("ResultPath", "$")), caught["Next"]
                    continue
            if "ResultSelector" in state:
                result = asl.filler(state["ResultSelector"])(result, None)
            data = asl.select(asl.place(data, result, state.get("ResultPath", "$")), state.get("OutputPath", "$"))
        except asl.StatesError as exc:
            return ended("FAILED", None, exc.error, exc.cause)
        if state.get("End"):
            return ended("SUCCEEDED", data)
        name_of_state = state["Next"]


def _invoke(state: dict, effective, functions, jitter: random.Random, entered: list, name: str, invoked: list):
    """Invoke the Task's function, retrying as its ``Retry`` says (at once), each call counted in ``invoked[0]``:
    ``(result, None)`` or ``(None, error)``."""
    retries = [0] * len(state.get("Retry", ()))
    while True:
        function = functions.get(effective.get("FunctionName")) if isinstance(effective, dict) else None
        if function is None:
            error = {"Error": "Lambda.ResourceNotFoundException",
                     "Cause": f"Function not found: {effective.get('FunctionName') if isinstance(effective, dict) else effective}"}
        else:
            invoked[0] += 1
            try:
                return {"ExecutedVersion": "$LATEST", "Payload": function(effective.get("Payload", {})),
                        "StatusCode": 200}, None
            except Exception as exc:  # the function's error is the Task's, as Lambda reports it
                error = lambda_error(exc)
        retry = asl.next_retry(state.get("Retry", ()), error["Error"], retries, jitter)
        if retry is None:
            return None, error  # no retrier names it, or its attempts are used up: on to the catchers
        retries[retry[0]] += 1
        entered.append(name)  # "Retries are treated as state transitions"

