"""The local Step Functions runner applies the States language as Step Functions does: a failing Parallel branch
stops its siblings and fails the state; Retry runs before Catch with each retrier's own count, interval, backoff,
cap and jitter; InputPath, Parameters, ResultSelector, ResultPath and OutputPath, in Catch too; an Express execution
past five minutes times out (States.Timeout) and is billed up to the limit; a Task past its TimeoutSeconds fails
with States.Timeout; States.Runtime is never retried nor caught; a Choice rule the runner does not evaluate is refused
before the run; and the two workflow types differ in what the runner models as "Standard vs. Express Workflows"
documents.

Sources: https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-standard-vs-express.html,
https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html."""

import copy

import pytest

from yafdp.backends.local import asl
from yafdp.backends.local.step_functions import LocalStepFunctions
from yafdp.backends.local.timing import MeasuredTiming
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.plan import build_plan
from yafdp.plan.step_functions import LAMBDA_INVOKE, OrchestrationError, state_machine_definition
from yafdp.runs.bootstrap import timing_for
from yafdp.runs.workload import planned_requests
from yafdp.runtime import rundb

CATALOG = load_catalog()
PLAN = build_plan(CATALOG)
WORLD = load_marketplace()
DEFINITION = state_machine_definition(CATALOG, PLAN)
HAPPY = {"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0}


class VirtualTiming(MeasuredTiming):
    """Virtual time recorded as it is; every handler call takes ``seconds``."""

    def __init__(self, seconds: float = 0.0):
        super().__init__()
        self.seconds = seconds

    def now(self, virtual: float) -> float:
        return virtual

    def reserve(self, service: str, virtual: float) -> tuple[float, float]:
        return virtual, virtual + self.seconds


class Recording(LocalStepFunctions):
    """The runner, keeping how each execution ended."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timing", VirtualTiming())
        super().__init__(CATALOG, PLAN, WORLD, rundb.connect(":memory:"), *args, **kwargs)
        self.ended = []

    def _end_execution(self, execution, status, t, error=None, output=None):
        super()._end_execution(execution, status, t, error, output)
        self.ended.append((status, t, error, output))


def run(runner, orders=1, seed=3):
    for order in planned_requests(CATALOG, orders, seed=seed, rates=HAPPY):
        runner.call("order", "place_order", order.request)
    runner.run()
    return runner


def deliveries(runner, rule=None):
    query = "SELECT rule, attempt, delivered_at, finished_at, outcome FROM deliveries"
    rows = runner.db.execute(query + (" WHERE rule = ?" if rule else "") + " ORDER BY delivered_at, attempt",
                             (rule,) if rule else ()).fetchall()
    return [(r.removeprefix("yafdp-"), *rest) for r, *rest in rows]


def failing(times, error=RuntimeError):
    """A handler that raises ``error`` its first ``times`` calls, then does nothing."""
    calls = []

    def handler(event, uow):
        calls.append(event["id"])
        if len(calls) <= times:
            raise error("down")
    handler.calls = calls
    return handler


class FlakyError(Exception):
    """A handler's own error: Lambda reports it by its class name, the name Retry and Catch match."""


def edited(change):
    definition = copy.deepcopy(DEFINITION)
    change(definition)
    return definition


def task(definition, rule, event="Order_Initiated"):
    for name, state in _walk(definition):
        if state["Type"] == "Task" and state["Parameters"]["Payload"]["rule"] == rule and name.endswith(f"on {event}"):
            return state
    raise KeyError(rule)


def _walk(scope):
    for name, state in scope["States"].items():
        yield name, state
        for branch in state.get("Branches", ()):
            yield from _walk(branch)


# ---------------------------------------------------------------- Parallel


def test_a_failing_branch_stops_its_siblings_and_fails_the_parallel_state():
    # Tried: the notification branch failed and the payment branch went on (restaurant confirmed, delivery scheduled,
    # loyalty added) before the execution failed. Nothing after the failure runs in any branch.
    runner = run(Recording(handlers={"notification-tells-customer": failing(99)}))
    assert [status for status, *_ in runner.ended] == ["FAILED"]
    assert runner.ended[0][2]["Error"] == "RuntimeError"
    ran = {rule for rule, *_ in deliveries(runner)}
    assert ran <= {"notification-tells-customer", "payment-charges-order"}, ran
    assert runner.executions_failed == 1 and runner.executions_succeeded == 0


def test_a_failing_branch_stops_a_sibling_that_was_further_along():
    # The payment branch's Tasks take 1 s and the notifications 30 s: the payment branch has gone on by the time the
    # first notification fails; Tasks in flight then run to their end (a Lambda invocation is not recalled), and no
    # Task is invoked after it.
    class SlowNotifications(VirtualTiming):
        def reserve(self, service, virtual):
            return virtual, virtual + (30.0 if service == "notification" else 1.0)

    runner = run(Recording(handlers={"notification-tells-customer": failing(1)}, timing=SlowNotifications()))
    assert [status for status, *_ in runner.ended] == ["FAILED"]
    ran = deliveries(runner)
    assert runner.ended[0][1] == 30.0 and all(delivered <= 30.0 for _, _, delivered, _, _ in ran)
    assert any(finished > 30.0 for _, _, _, finished, _ in ran)  # in flight when the branch failed


def test_a_catch_on_the_parallel_state_catches_its_branchs_error_with_the_state_input():
    def change(definition):
        top = definition["States"][definition["StartAt"]]
        top.pop("End")
        top["Next"] = "Ended anyway"
        top["Catch"] = [{"ErrorEquals": ["RuntimeError"], "ResultPath": "$.failure", "Next": "Handled"}]
        definition["States"]["Handled"] = {"Type": "Pass", "OutputPath": "$.failure.Error", "End": True}
        definition["States"]["Ended anyway"] = {"Type": "Succeed"}

    runner = run(Recording(definition=edited(change), handlers={"notification-tells-customer": failing(99)}))
    assert [(status, output) for status, _, _, output in runner.ended] == [("SUCCEEDED", "RuntimeError")]


# ---------------------------------------------------------------- Retry before Catch


def _retrying(retry, catch=("States.ALL",)):
    def change(definition):
        state = task(definition, "payment-charges-order")
        state["Retry"] = retry
        state["Catch"] = [{"ErrorEquals": list(catch), "ResultPath": "$.error", "Next": "Caught"}]
        branch = next(b for b in definition["States"]["Order_Initiated"]["Branches"]
                      if b["StartAt"].startswith("payment"))
        branch["States"]["Caught"] = {"Type": "Fail", "Error": "Caught", "Cause": "the catcher ran"}
    return edited(change)


def test_retry_runs_before_catch_with_its_interval_and_backoff():
    # Tried: a task with a Retry went straight to its catcher.
    flaky = failing(2, FlakyError)
    runner = run(Recording(definition=_retrying([{"ErrorEquals": ["FlakyError"], "IntervalSeconds": 2,
                                                   "BackoffRate": 3, "MaxAttempts": 2}]),
                           handlers={"payment-charges-order": flaky}))
    attempts = deliveries(runner, "yafdp-payment-charges-order")
    assert [(a, outcome) for _, a, _, _, outcome in attempts] == [(1, "failed"), (2, "failed"), (3, "ok")]
    times = [delivered for _, _, delivered, _, _ in attempts]
    assert [b - a for a, b in zip(times, times[1:])] == [2.0, 6.0]  # 2 × 3^0, 2 × 3^1
    assert [status for status, *_ in runner.ended] == ["SUCCEEDED"]


def test_when_the_matching_retriers_attempts_are_used_up_the_catcher_runs():
    runner = run(Recording(definition=_retrying([{"ErrorEquals": ["FlakyError"], "MaxAttempts": 1,
                                                   "IntervalSeconds": 1}]),
                           handlers={"payment-charges-order": failing(99, FlakyError)}))
    assert len(deliveries(runner, "yafdp-payment-charges-order")) == 2  # one try, one retry
    assert [(status, error["Error"]) for status, _, error, _ in runner.ended] == [("FAILED", "Caught")]


def test_only_the_first_retrier_that_names_the_error_applies_and_max_attempts_0_never_retries():
    # "MaxAttempts: 0 ... the error is never retried"; the States.ALL retrier after it does not get a turn.
    runner = run(Recording(definition=_retrying([{"ErrorEquals": ["FlakyError"], "MaxAttempts": 0},
                                                  {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}]),
                           handlers={"payment-charges-order": failing(99, FlakyError)}))
    assert len(deliveries(runner, "yafdp-payment-charges-order")) == 1
    assert runner.ended[0][2]["Error"] == "Caught"


def test_retriers_are_scanned_in_order_and_each_counts_its_own_retries():
    runner = run(Recording(definition=_retrying([{"ErrorEquals": ["OtherError"], "MaxAttempts": 5},
                                                  {"ErrorEquals": ["States.ALL"], "MaxAttempts": 2,
                                                   "IntervalSeconds": 1}]),
                           handlers={"payment-charges-order": failing(99, FlakyError)}))
    assert len(deliveries(runner, "yafdp-payment-charges-order")) == 3
    assert runner.ended[0][2]["Error"] == "Caught"


def test_max_delay_seconds_caps_the_backoff_and_full_jitter_draws_below_it():
    capped = run(Recording(definition=_retrying([{"ErrorEquals": ["FlakyError"], "IntervalSeconds": 10,
                                                  "BackoffRate": 2, "MaxAttempts": 3, "MaxDelaySeconds": 15}]),
                           handlers={"payment-charges-order": failing(3, FlakyError)}))
    times = [d for _, _, d, _, _ in deliveries(capped, "yafdp-payment-charges-order")]
    assert [b - a for a, b in zip(times, times[1:])] == [10.0, 15.0, 15.0]
    jittered = run(Recording(definition=_retrying([{"ErrorEquals": ["FlakyError"], "IntervalSeconds": 10,
                                                    "BackoffRate": 2, "MaxAttempts": 3, "JitterStrategy": "FULL"}]),
                             handlers={"payment-charges-order": failing(3, FlakyError)}))
    times = [d for _, _, d, _, _ in deliveries(jittered, "yafdp-payment-charges-order")]
    waits = [b - a for a, b in zip(times, times[1:])]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, [10, 20, 40])) and waits != [10.0, 20.0, 40.0]


def test_retries_are_billed_as_state_transitions():
    plain = run(Recording(handlers={"payment-charges-order": failing(0)}))
    retried = run(Recording(definition=_retrying([{"ErrorEquals": ["FlakyError"], "MaxAttempts": 2,
                                                   "IntervalSeconds": 1}]),
                            handlers={"payment-charges-order": failing(2, FlakyError)}))
    assert retried.transitions == plain.transitions + 2


@pytest.mark.parametrize("retry, problem", [
    ([{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["FlakyError"]}], "States.ALL must appear alone"),
    ([{"ErrorEquals": ["States.ALL", "FlakyError"]}], "States.ALL must appear alone"),
    ([{"ErrorEquals": []}], "non-empty list"),
    ([{"ErrorEquals": ["X"], "MaxAttempts": -1}], "MaxAttempts"),
    ([{"ErrorEquals": ["X"], "IntervalSeconds": 0}], "IntervalSeconds"),
    ([{"ErrorEquals": ["X"], "BackoffRate": 0.5}], "BackoffRate"),
    ([{"ErrorEquals": ["X"], "MaxDelaySeconds": 0}], "MaxDelaySeconds"),
    ([{"ErrorEquals": ["X"], "JitterStrategy": "HALF"}], "JitterStrategy"),
])
def test_a_retrier_step_functions_would_refuse_is_refused_before_anything_runs(retry, problem):
    with pytest.raises(OrchestrationError, match=problem):
        Recording(definition=_retrying(retry))


def test_a_state_the_runner_does_not_model_is_refused_naming_it():
    definition = edited(lambda d: d["States"].update({"Wait a bit": {"Type": "Wait", "Seconds": 5, "End": True}}))
    with pytest.raises(OrchestrationError, match="'Wait a bit' is a Wait state"):
        Recording(definition=definition)


# ---------------------------------------------------------------- input and output processing


def _one_task(**fields):
    charge = {"Type": "Task", "Resource": LAMBDA_INVOKE,
              "Parameters": {"FunctionName": PLAN.function_arn("payment"),
                             "Payload": {"rule": "payment-charges-order", "handler": "charge_order", "event.$": "$.event"}},
              "Next": "Done", **fields}
    return {"StartAt": "Charge", "States": {"Charge": charge, "Done": {"Type": "Succeed"}}}


def test_result_selector_result_path_and_output_path_shape_a_tasks_output():
    runner = run(Recording(definition=_one_task(
        ResultSelector={"emitted.$": "$.Payload.emitted", "status.$": "$.StatusCode", "fixed": [1, {"a.$": "$.StatusCode"}]},
        ResultPath="$.charge.result", OutputPath="$.charge")))
    [(status, _, _, output)] = runner.ended
    assert status == "SUCCEEDED"
    assert output == {"result": {"emitted": "Payment_Success", "status": 200, "fixed": [1, {"a": 200}]}}


def test_result_path_null_keeps_the_input_and_output_path_null_gives_an_empty_object():
    kept = run(Recording(definition=_one_task(ResultPath=None, OutputPath="$.emitted")))
    assert kept.ended[0][3] == "Order_Initiated"
    emptied = run(Recording(definition=_one_task(OutputPath=None)))
    assert emptied.ended[0][3] == {}


def test_input_path_null_gives_the_task_an_empty_object_so_its_parameters_path_names_nothing():
    runner = run(Recording(definition=_one_task(InputPath=None)))
    [(status, _, error, _)] = runner.ended
    assert (status, error["Error"]) == ("FAILED", "States.Runtime")  # $.event does not exist in {}


def test_a_catchers_result_path_places_the_error_output_in_the_states_raw_input():
    def definition(result_path, output_path="$"):
        d = _one_task(Catch=[{"ErrorEquals": ["States.TaskFailed"], "Next": "Done",
                              **({} if result_path == "absent" else {"ResultPath": result_path})}])
        d["States"]["Done"] = {"Type": "Succeed", "OutputPath": output_path}
        return d

    handlers = {"payment-charges-order": failing(99)}
    nested = run(Recording(definition=definition("$.failure.detail", "$.failure.detail.Error"), handlers=handlers))
    assert nested.ended[0][:1] + nested.ended[0][3:] == ("SUCCEEDED", "RuntimeError")
    whole = run(Recording(definition=definition("absent"), handlers={"payment-charges-order": failing(99)}))
    assert set(whole.ended[0][3]) == {"Error", "Cause"}  # the default "$": the error output replaces the input
    kept = run(Recording(definition=definition(None, "$.emitted"), handlers={"payment-charges-order": failing(99)}))
    assert kept.ended[0][3] == "Order_Initiated"


def test_paths_follow_the_asl_edge_values():
    data = {"a": {"b": [10, {"c": "x"}]}, "list": [1]}
    assert asl.select(data, None) == {} and asl.select(data, "$") is data
    assert asl.read_path(data, "$.a.b[1].c") == "x" and asl.read_path(data, "$['a']['b'][0]") == 10
    with pytest.raises(asl.StatesError, match="States.Runtime"):
        asl.read_path(data, "$.a.missing")
    assert asl.place(data, 1, None) is data
    assert asl.place(data, 1, "$") == 1
    assert asl.place(data, 1, "$.new.deep") == {**data, "new": {"deep": 1}} and "new" not in data
    assert asl.place(data, 2, "$.list[0]")["list"] == [2]
    with pytest.raises(asl.StatesError, match="States.ResultPathMatchFailure"):
        asl.place(data, 1, "$.a.b.c")  # b is an array
    with pytest.raises(asl.StatesError, match="States.ResultPathMatchFailure"):
        asl.place("text", 1, "$.x")
    with pytest.raises(OrchestrationError, match="reference paths only"):
        asl.reference_path("$.a[*]")
    assert asl.fill({"k.$": "$$.State.Name", "v": 1}, {}, {"State": {"Name": "S"}}) == {"k": "S", "v": 1}


# ---------------------------------------------------------------- Express's five minutes, and the other differences


def test_an_express_execution_past_five_minutes_times_out_billed_up_to_the_limit():
    # Tried: a 480 s Express execution succeeded and was billed 480 s.
    runner = run(Recording(workflow="express", timing=VirtualTiming(seconds=120.0)))
    [(status, ended_at, error, _)] = runner.ended
    assert (status, ended_at, error["Error"]) == ("TIMED_OUT", 300.0, "States.Timeout")
    assert runner.express_billed_seconds == pytest.approx(300.0) and runner.execution_seconds == pytest.approx(300.0)
    assert runner.executions_timed_out == 1 and runner.report()["orchestration"]["executions_timed_out"] == 1
    assert all(delivered <= 300.0 for _, _, delivered, _, _ in deliveries(runner))  # nothing invoked after it


def test_a_standard_execution_of_the_same_length_succeeds():
    runner = run(Recording(workflow="standard", timing=VirtualTiming(seconds=120.0)))
    [(status, ended_at, _, _)] = runner.ended
    assert status == "SUCCEEDED" and ended_at > 300.0


def test_a_failed_express_execution_is_billed_for_its_duration_too():
    runner = run(Recording(workflow="express", timing=VirtualTiming(seconds=0.25),
                           handlers={"notification-tells-customer": failing(99)}))
    assert runner.ended[0][0] == "FAILED" and runner.express_billed_seconds == pytest.approx(0.3)


def test_only_standard_workflows_are_throttled_on_state_transitions_and_they_start_fewer_executions_a_second():
    def report(workflow):
        timing = timing_for("aws-eu-west-1", seed=1, quota_scale=0.001, invocation="direct")
        return run(LocalStepFunctions(CATALOG, PLAN, WORLD, rundb.connect(":memory:"), seed=1, timing=timing,
                                      workflow=workflow), orders=40).report()["orchestration"]

    standard, express = report("standard"), report("express")
    assert standard["transitions_throttled"] > 0 and express["transitions_throttled"] == 0
    # StartExecution: 300 a second for Standard in eu-west-1, 6,000 for Express (data/quotas.json)
    assert standard["starts_throttled"] > express["starts_throttled"]
    assert standard["executions_succeeded"] == express["executions_succeeded"] == 40


# ---------------------------------------------------------------- a Task's TimeoutSeconds, States.Runtime, Choice rules


def test_a_task_past_its_timeout_seconds_fails_with_states_timeout_at_the_timeout():
    # Tried: a payment Task with TimeoutSeconds 5 and a 30 s handler ended SUCCEEDED after 30 s (state-task.html:
    # "If the task runs longer than the specified seconds, this state fails with a States.Timeout error").
    runner = run(Recording(definition=_one_task(TimeoutSeconds=5), timing=VirtualTiming(seconds=30.0)))
    [(status, ended_at, error, _)] = runner.ended
    assert (status, ended_at, error["Error"]) == ("FAILED", 5.0, "States.Timeout")
    # the handler had started: it runs to its end (its result ignored), as a Lambda invocation is not recalled
    assert [(attempt, outcome) for _, attempt, _, _, outcome in deliveries(runner)] == [(1, "ok")]


def test_a_task_that_ends_exactly_at_its_timeout_or_has_none_succeeds():
    at_limit = run(Recording(definition=_one_task(TimeoutSeconds=30), timing=VirtualTiming(seconds=30.0)))
    unlimited = run(Recording(definition=_one_task(), timing=VirtualTiming(seconds=30.0)))
    ended = [[(status, t) for status, t, _, _ in runner.ended] for runner in (at_limit, unlimited)]
    assert ended == [[("SUCCEEDED", 30.0)]] * 2


def test_a_task_timeout_is_retried_and_caught_like_any_error_each_attempt_with_its_own_timeout():
    definition = _one_task(TimeoutSeconds=5,
                           Retry=[{"ErrorEquals": ["States.Timeout"], "MaxAttempts": 1, "IntervalSeconds": 2}],
                           Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.failure", "Next": "Timed out"}])
    definition["States"]["Timed out"] = {"Type": "Pass", "OutputPath": "$.failure.Error", "End": True}
    runner = run(Recording(definition=definition, timing=VirtualTiming(seconds=30.0)))
    # tried at 0, timed out at 5, retried at 5 + 2 = 7, timed out at 12, caught
    assert [delivered for _, _, delivered, _, _ in deliveries(runner)] == [0.0, 7.0]
    assert [(s, t, output) for s, t, _, output in runner.ended] == [("SUCCEEDED", 12.0, "States.Timeout")]


@pytest.mark.parametrize("fields, problem", [
    ({"TimeoutSeconds": 0}, "TimeoutSeconds must be a positive whole number"),
    ({"TimeoutSeconds": "5"}, "TimeoutSeconds must be a positive whole number"),
    ({"TimeoutSeconds": 2.5}, "TimeoutSeconds must be a positive whole number"),
    ({"HeartbeatSeconds": 5}, "HeartbeatSeconds is not modelled"),
    ({"TimeoutSecondsPath": "$.timeout"}, "TimeoutSecondsPath is not modelled"),
])
def test_a_task_timeout_the_runner_cannot_run_as_aws_would_is_refused_before_the_run(fields, problem):
    with pytest.raises(OrchestrationError, match=f"state 'Charge': {problem}"):
        Recording(definition=_one_task(**fields))


def test_states_runtime_is_never_retried_nor_caught_even_when_named_and_fails_the_execution():
    # Tried: Retry [States.Runtime] retried it and Catch [States.Runtime] caught it. concepts-error-handling.html:
    # States.Runtime "is not retriable, and will always cause the execution to fail"; States.ALL does not catch it.
    definition = _one_task(InputPath="$.nothing",
                           Retry=[{"ErrorEquals": ["States.Runtime"], "MaxAttempts": 3, "IntervalSeconds": 1}],
                           Catch=[{"ErrorEquals": ["States.Runtime"], "Next": "Done"}])
    runner = run(Recording(definition=definition))
    assert [(status, error["Error"]) for status, _, error, _ in runner.ended] == [("FAILED", "States.Runtime")]
    assert deliveries(runner) == [] and runner.transitions == 1  # entered once: no retry, no catcher's Next
    assert not asl.error_matches(["States.Runtime"], "States.Runtime")
    assert not asl.error_matches(["States.ALL"], "States.Runtime")


def test_states_runtime_in_a_parallel_branch_fails_the_execution_past_the_parallel_states_catchers():
    def change(definition):
        top = definition["States"][definition["StartAt"]]
        top.pop("End")
        top["Next"] = "Ended anyway"
        top["Catch"] = [{"ErrorEquals": ["States.Runtime"], "Next": "Ended anyway"}]
        definition["States"]["Ended anyway"] = {"Type": "Succeed"}
        task(definition, "payment-charges-order")["InputPath"] = "$.nothing"

    runner = run(Recording(definition=edited(change)))
    assert [(status, error["Error"]) for status, _, error, _ in runner.ended] == [("FAILED", "States.Runtime")]


@pytest.mark.parametrize("rule, problem", [
    ({"Variable": "$.emitted", "NumericEquals": 1, "Next": "Done"}, "Choices\\[0\\] uses NumericEquals"),
    ({"And": [{"Variable": "$.emitted", "StringEquals": "x"}], "Next": "Done"}, "Choices\\[0\\] uses And"),
    ({"Variable": "$.emitted", "Next": "Done"}, "Choices\\[0\\] lacks StringEquals"),
    ({"Variable": "$.emitted", "StringEquals": 7, "Next": "Done"},
     "Choices\\[0\\]: Variable must be a path and StringEquals a string"),
])
def test_a_choice_rule_other_than_string_equals_is_refused_before_the_run(rule, problem):
    # Tried: a NumericEquals rule was accepted by the constructor and refused only when an execution reached it.
    definition = _one_task()
    definition["States"]["Charge"]["Next"] = "Decide"
    definition["States"]["Decide"] = {"Type": "Choice", "Choices": [rule], "Default": "Done"}
    with pytest.raises(OrchestrationError, match=f"state 'Decide': {problem}"):
        Recording(definition=definition)


def test_a_string_equals_choice_with_a_comment_runs():
    definition = _one_task(ResultSelector={"emitted.$": "$.Payload.emitted"})
    definition["States"]["Charge"]["Next"] = "Decide"
    definition["States"]["Decide"] = {"Type": "Choice", "Default": "Done", "Choices": [
        {"Comment": "paid", "Variable": "$.emitted", "StringEquals": "Payment_Success", "Next": "Paid"}]}
    definition["States"]["Paid"] = {"Type": "Pass", "Result": "paid", "End": True}
    assert [(status, output) for status, _, _, output in run(Recording(definition=definition)).ended] == \
        [("SUCCEEDED", "paid")]
