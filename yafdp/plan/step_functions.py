"""The same order saga as an AWS Step Functions state machine generated from the catalog: orchestration.

Every subscription becomes a Task state that invokes its service's Lambda function with the event it reacts
to. The event the handler publishes decides what runs next (a Choice), a failure event is raised as an error
that a ``Catch`` sends to the compensation steps, and an event several services react to fans out in a
``Parallel`` state. What each Task runs is :class:`yafdp.backends.tasks.TaskRunner`; the local runner is
:mod:`yafdp.backends.local.step_functions`, and :mod:`yafdp.backends.aws.step_functions` deploys it.
"""

from __future__ import annotations

from typing import Any

from yafdp.catalog import Catalog, Subscription, envelope_pattern
from yafdp.errors import ConfigurationError
from yafdp.plan.model import DeploymentPlan

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"  # in the aws partition; lambda_invoke(partition) in any
MAX_STATE_NAME = 80
# Step Functions' recommended retry for the Lambda service's own transient errors (not the handler's).
LAMBDA_RETRY = {
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0,
}


def lambda_invoke(partition: str) -> str:
    """The Step Functions resource of Lambda's optimized integration in ``partition`` ("Invoke an AWS Lambda
    function with Step Functions", https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html: its
    examples name ``arn:aws:states:::lambda:invoke`` and, in China, ``arn:aws-cn:states:::lambda:invoke``).

    Examples
    --------
    >>> lambda_invoke("aws-cn")
    'arn:aws-cn:states:::lambda:invoke'
    """
    return f"arn:{partition}:states:::lambda:invoke"


def is_lambda_invoke(resource: str) -> bool:
    """Whether a Task's ``Resource`` is Lambda's optimized integration, in whatever partition (its callback form,
    ``.waitForTaskToken``, included)."""
    return resource.startswith("arn:") and resource.removesuffix(WAIT_FOR_TASK_TOKEN).endswith(
        ":states:::lambda:invoke") and resource.count(":") == 6


# The callback pattern: the Task invokes the function with a task token and waits, until SendTaskSuccess or
# SendTaskFailure with that token, or its TimeoutSeconds ("Wait for a Callback with Task Token",
# https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token). A Standard
# workflow's, only (data/workflows.json).
WAIT_FOR_TASK_TOKEN = ".waitForTaskToken"


def is_callback(resource: str) -> bool:
    """Whether a Task's ``Resource`` waits for a task token (``….waitForTaskToken``)."""
    return resource.endswith(WAIT_FOR_TASK_TOKEN)


def with_human_step(definition: dict, rule: str, *, timeout_seconds: int, on_timeout: dict) -> dict:
    """A copy of ``definition`` in which every Task running ``rule`` waits for a person: its resource becomes
    ``lambda:invoke.waitForTaskToken``, its payload carries the task token (``"taskToken.$": "$$.Task.Token"``), it
    gives up after ``timeout_seconds`` (``TimeoutSeconds``: the Task fails with ``States.Timeout``) and a ``Catch``
    sends that timeout to the Task ``on_timeout`` (``{"rule", "handler", "service_function"}``: what runs then, whose
    own failure events are caught as the Task's were).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> catalog = load_catalog()
    >>> plan = build_plan(catalog)
    >>> human = with_human_step(state_machine_definition(catalog, plan), "restaurant-reviews-paid-order",
    ...     timeout_seconds=900, on_timeout={"rule": "restaurant-rejects-timed-out-order", "handler": "time_out_order",
    ...                                      "service_function": plan.service("restaurant").function})
    >>> [(s["Resource"].rsplit(":", 1)[1], s["TimeoutSeconds"]) for _, s in walk_states(human)
    ...  if s["Type"] == "Task" and s["Parameters"]["Payload"]["rule"] == "restaurant-reviews-paid-order"]
    [('invoke.waitForTaskToken', 900)]
    """
    import copy

    result = copy.deepcopy(definition)

    def visit(scope: dict) -> None:
        states = scope["States"]
        for name, state in list(states.items()):
            for branch in state.get("Branches", ()):
                visit(branch)
            if state["Type"] != "Task" or state["Parameters"]["Payload"].get("rule") != rule:
                continue
            state["Resource"] += WAIT_FOR_TASK_TOKEN
            state["Parameters"]["Payload"]["taskToken.$"] = "$$.Task.Token"
            state["TimeoutSeconds"] = timeout_seconds
            timeout = f"{name} timed out"[:MAX_STATE_NAME]
            states[timeout] = {
                "Type": "Task", "Comment": f"{name} had no answer within {timeout_seconds} s",
                "Resource": state["Resource"].removesuffix(WAIT_FOR_TASK_TOKEN),
                "Parameters": {"FunctionName": on_timeout["service_function"],
                               "Payload": {"task.$": "$$.State.Name", "rule": on_timeout["rule"],
                                           "handler": on_timeout["handler"], "event.$": "$.event"}},
                "ResultSelector": dict(state["ResultSelector"]), "Retry": [dict(LAMBDA_RETRY)],
                "Catch": [dict(c) for c in state.get("Catch", ())], "End": True}
            state["Catch"] = state.get("Catch", []) + [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error",
                                                        "Next": timeout}]

    visit(result)
    return result


class OrchestrationError(ConfigurationError):
    """The catalog cannot be turned into a state machine, or a state machine is not one we can run."""


# ---------------------------------------------------------------- generating the state machine


def state_machine_definition(catalog: Catalog, plan: DeploymentPlan) -> dict:
    """The order flow as an Amazon States Language definition, from the catalog's subscriptions.

    The execution's input is ``{"emitted": <start event>, "event": <its envelope>}``; every Task invokes its service's
    function with ``{"task": <state name>, "rule", "handler", "event": <envelope>}`` (or ``"failure"``: the error a
    ``Catch`` caught), and its output is ``{"emitted": <detail-type or "">, "event": <the envelope it published or
    null>}``.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> catalog = load_catalog()
    >>> definition = state_machine_definition(catalog, build_plan(catalog))
    >>> definition["StartAt"], definition["States"]["Order_Initiated"]["Type"]
    ('Order_Initiated', 'Parallel')
    """
    for sub in catalog.subscriptions:
        if envelope_pattern(sub.pattern) != dict(sub.pattern):
            raise OrchestrationError(f"rule {sub.rule!r} filters on more than source and detail-type; the generated "
                                     "state machine can only follow rules that select whole event types")
    builder = _Builder(catalog, plan)
    states: dict[str, Any] = {}
    start = builder.react(catalog.bus.start_event, states, caught=False, via=None, path=())
    return {
        "Comment": f"The {catalog.bus.name} order saga, orchestrated: generated by yafdp from the event catalog. "
                   "Each Task runs one subscription's handler; failure events are raised and caught to compensate.",
        "StartAt": start,
        "States": states,
    }


class _Builder:
    def __init__(self, catalog: Catalog, plan: DeploymentPlan):
        self.catalog, self.plan = catalog, plan
        self.names: set[str] = set()
        self.consumers = {event: catalog.consumers(event) for event in catalog.events}

    def react(self, event: str, states: dict, *, caught: bool, via: str | None, path: tuple) -> str:
        """Add the states in which everyone subscribed to ``event`` reacts; return the name of the first."""
        if event in path:
            raise OrchestrationError(f"events trigger each other in a loop: {' -> '.join(path + (event,))}")
        subs = self.consumers[event]
        if not subs:
            name = self.unique(f"{event} (nobody reacts)", via)
            states[name] = {"Type": "Succeed"}
            return name
        if len(subs) == 1:
            return self.task(subs[0], event, states, caught=caught, via=via, path=path + (event,))
        name = self.unique(event, via)
        states[name] = {"Type": "Parallel", "Comment": f"Everyone subscribed to {event} reacts to it.",
                        "Branches": [], "End": True}
        for sub in subs:
            branch: dict[str, Any] = {}
            first = self.task(sub, event, branch, caught=caught, via=via, path=path + (event,))
            states[name]["Branches"].append({"StartAt": first, "States": branch})
        return name

    def task(self, sub: Subscription, event: str, states: dict, *, caught: bool, via: str | None, path: tuple) -> str:
        name = self.unique(f"{sub.service}.{sub.handler} on {event}", via)
        emitted = [self.catalog.events[e] for e in sub.emits]
        failures = [e.name for e in emitted if e.kind == "failure"]
        onward = [e.name for e in emitted if e.kind != "failure" and self.consumers[e.name]]
        # "task.$" gives the function the state's name (the context object's State.Name): how the Lambda entry point
        # tells a Task from the other events it handles.
        payload = {"task.$": "$$.State.Name", "rule": sub.rule, "handler": sub.handler}
        payload["failure.$" if caught else "event.$"] = "$.error" if caught else "$.event"
        # The function by its name: Lambda's Invoke takes "the name or ARN of the Lambda function" (Invoke, Lambda API
        # reference, https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), and a name is the function of
        # the state machine's own account and Region, so the definition names no account or Region: it deploys
        # anywhere (the role's policy, state_machine_policy, names the deploying account's ARNs).
        state: dict[str, Any] = {
            "Type": "Task", "Comment": sub.purpose, "Resource": lambda_invoke(self.plan.partition),
            "Parameters": {"FunctionName": self.plan.service(sub.service).function, "Payload": payload},
            "ResultSelector": {"emitted.$": "$.Payload.emitted", "event.$": "$.Payload.event"},
            "Retry": [dict(LAMBDA_RETRY)],
        }
        states[name] = state
        if failures:
            state["Catch"] = [{"ErrorEquals": [failure], "ResultPath": "$.error",
                               "Next": self.react(failure, states, caught=True, via=event, path=path)}
                              for failure in failures]
        if not onward:
            state["End"] = True
            return name
        choice = self.unique(f"after {sub.service}.{sub.handler} on {event}", via)
        state["Next"] = choice
        done = self.unique(f"{sub.service}.{sub.handler} on {event} done", via)
        states[choice] = {"Type": "Choice", "Choices": [], "Default": done}
        for next_event in onward:
            states[choice]["Choices"].append({"Variable": "$.emitted", "StringEquals": next_event,
                                              "Next": self.react(next_event, states, caught=False, via=event, path=path)})
        states[done] = {"Type": "Succeed", "Comment": "The handler published nothing more (it had decided before)."}
        return name

    def unique(self, name: str, via: str | None) -> str:
        """State names are unique in the whole definition, Parallel branches included."""
        candidates = [name] + ([f"{name} via {via}"] if via else []) + [f"{name} #{n}" for n in range(2, 100)]
        for candidate in candidates:
            if candidate not in self.names:
                if len(candidate) > MAX_STATE_NAME:
                    raise OrchestrationError(f"state name {candidate!r} is longer than {MAX_STATE_NAME} characters")
                self.names.add(candidate)
                return candidate
        raise OrchestrationError(f"too many states named {name!r}")



def walk_states(definition: dict):
    """Every ``(name, state)`` of a definition, those inside Parallel branches included."""
    for name, state in definition["States"].items():
        yield name, state
        for branch in state.get("Branches", ()):
            yield from walk_states(branch)


def callback_timeout_rules(definition: dict) -> list[str]:
    """The rules a callback Task's timeout hands its event to (the ``States.Timeout`` ``Catch`` of a
    ``.waitForTaskToken`` Task, :func:`with_human_step`): such a rule runs on the event the callback Task waited on,
    which its pattern need not match (the state machine, not EventBridge, decides what runs).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> callback_timeout_rules(state_machine_definition(load_catalog(), build_plan(load_catalog())))  # none to wait
    []

    (With chapter 09's human step, ``['restaurant-rejects-timed-out-order']``: tests/integration/test_human_step.py.)
    """
    rules: set[str] = set()

    def visit(scope: dict) -> None:
        states = scope["States"]
        for state in states.values():
            for branch in state.get("Branches", ()):
                visit(branch)
            if state["Type"] != "Task" or not is_callback(state["Resource"]):
                continue
            for catcher in state.get("Catch", ()):
                target = states.get(catcher["Next"], {})
                if "States.Timeout" in catcher["ErrorEquals"] and target.get("Type") == "Task":
                    rules.add(target["Parameters"]["Payload"]["rule"])

    visit(definition)
    return sorted(rules)


def task_rules(definition: dict) -> list[str]:
    """The catalog rule every Task state runs, in definition order (a rule may run in several places)."""
    return [state["Parameters"]["Payload"]["rule"] for _, state in walk_states(definition) if state["Type"] == "Task"]


# ---------------------------------------------------------------- its IAM policy


def state_machine_policy(plan: DeploymentPlan) -> dict:
    """The state machine role's policy: invoke the services' functions, nothing else."""
    functions = [plan.function_arn(s.name) for s in plan.services]
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "InvokeServiceFunctions", "Effect": "Allow", "Action": "lambda:InvokeFunction",
        "Resource": functions + [f + ":*" for f in functions],
    }]}
