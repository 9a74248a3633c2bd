"""A synchronous Express execution run in this process (the hybrid's workflow inside one service): the States
language as the local Step Functions runner applies it, to the end at once, and the definitions it refuses."""

import pytest

from yafdp.backends.local.sync_execution import start_sync_execution
from yafdp.plan.step_functions import LAMBDA_INVOKE, OrchestrationError


def task(function, payload, **more):
    return {"Type": "Task", "Resource": LAMBDA_INVOKE, "Parameters": {"FunctionName": function, "Payload": payload},
            **more}


def test_tasks_choices_and_passes_process_their_input_and_output_as_step_functions_does():
    definition = {"StartAt": "Price", "States": {
        "Price": task("price", {"items.$": "$.order.items"},
                      ResultSelector={"total.$": "$.Payload.total", "size.$": "$.Payload.size"},
                      ResultPath="$.price", Next="Big?"),
        "Big?": {"Type": "Choice", "Choices": [{"Variable": "$.price.size", "StringEquals": "big", "Next": "Discount"}],
                 "Default": "Done"},
        "Discount": {"Type": "Pass", "Result": "10%", "ResultPath": "$.price.discount", "Next": "Done"},
        "Done": {"Type": "Succeed", "OutputPath": "$.price"},
    }}
    functions = {"price": lambda p: {"total": sum(p["items"]), "size": "big" if sum(p["items"]) > 4 else "small",
                                     "other": 1}}
    big = start_sync_execution(definition, functions, {"order": {"items": [2, 3]}})
    assert (big.status, big.output, big.states, big.invocations) == (
        "SUCCEEDED", {"total": 5, "size": "big", "discount": "10%"}, ["Price", "Big?", "Discount", "Done"], 1)
    small = start_sync_execution(definition, functions, {"order": {"items": [1]}})
    assert (small.output, small.states) == ({"total": 1, "size": "small"}, ["Price", "Big?", "Done"])
    nothing = start_sync_execution(definition, functions, {"items": [1]})  # $.order.items names nothing
    assert (nothing.status, nothing.error, nothing.invocations) == ("FAILED", "States.Runtime", 0)


def test_a_functions_error_is_caught_by_its_type_name_or_fails_the_execution():
    class SoldOut(Exception):
        pass

    def check(payload):
        raise SoldOut("tiramisu")

    caught = {"StartAt": "Check", "States": {
        "Check": task("check", {}, Catch=[{"ErrorEquals": ["SoldOut"], "ResultPath": "$.error", "Next": "Reject"}],
                      End=True),
        "Reject": {"Type": "Pass", "End": True}}}
    execution = start_sync_execution(caught, {"check": check}, {"order": 1})
    assert execution.status == "SUCCEEDED" and execution.output["error"]["Error"] == "SoldOut"
    assert '"errorMessage": "tiramisu"' in execution.output["error"]["Cause"]
    uncaught = {"StartAt": "Check", "States": {"Check": task("check", {}, End=True)}}
    failed = start_sync_execution(uncaught, {"check": check}, {})
    assert (failed.status, failed.error) == ("FAILED", "SoldOut")
    missing = start_sync_execution(uncaught, {}, {})
    assert (missing.status, missing.error) == ("FAILED", "Lambda.ResourceNotFoundException")
    stop = start_sync_execution({"StartAt": "No", "States": {"No": {"Type": "Fail", "Error": "Nope", "Cause": "c"}}},
                                {}, {})
    assert (stop.status, stop.error, stop.cause) == ("FAILED", "Nope", "c")


@pytest.mark.parametrize("attempts, status", [(2, "SUCCEEDED"), (1, "FAILED")])
def test_a_retrier_runs_before_the_catchers_and_each_retry_is_a_state_entered(attempts, status):
    calls = []

    def flaky(payload):
        calls.append(1)
        if len(calls) <= 2:
            raise TimeoutError("busy")
        return {}

    definition = {"StartAt": "Call", "States": {"Call": task("flaky", {}, End=True, Retry=[
        {"ErrorEquals": ["TimeoutError"], "MaxAttempts": attempts, "IntervalSeconds": 1}])}}
    execution = start_sync_execution(definition, {"flaky": flaky}, {})
    assert execution.status == status
    assert execution.invocations == len(calls) == min(3, attempts + 1)
    assert execution.states == ["Call"] * (attempts + 1)


@pytest.mark.parametrize("change, refused", [
    (lambda d: d["States"]["Call"].update(Resource=LAMBDA_INVOKE + ".waitForTaskToken"), "cannot wait for a task token"),
    (lambda d: d["States"]["Call"].update(TimeoutSeconds=5), "TimeoutSeconds"),
    (lambda d: d["States"].update(Call={"Type": "Parallel", "Branches": [
        {"StartAt": "X", "States": {"X": {"Type": "Succeed"}}}], "End": True}), "Parallel"),
    (lambda d: d["States"]["Call"].update(Resource="arn:aws:states:::sqs:sendMessage"), "Lambda functions only"),
])
def test_what_it_cannot_run_as_step_functions_would_is_refused_before_anything_runs(change, refused):
    definition = {"StartAt": "Call", "States": {"Call": task("f", {}, End=True)}}
    change(definition)
    ran = []
    with pytest.raises(OrchestrationError, match=refused):
        start_sync_execution(definition, {"f": ran.append}, {})
    assert ran == []
