"""The orchestration as exported runs on Lambda: the state machine ``deploy_state_machine`` creates, executed by an
Amazon States Language interpreter that is not ours (moto's Step Functions, which runs LocalStack's), invokes the
services' functions through the Lambda entry point exactly as Step Functions' ``lambda:invoke`` does (the Task's
``Payload`` in; the function's answer, or its error as Lambda reports it, out), and every order ends as the local
runner ends it.

moto cannot execute Lambda code without a container engine, so its Lambda's invoke is pointed at
``yafdp.backends.aws.lambda_handler.lambda_handler`` in this process, with the function's environment variables and a
context whose ``invoked_function_arn`` is the function's: what the Lambda runtime gives the entry point. An error the
entry point raises is answered as the Python runtime answers it (``errorType``, the exception's class name, and
``errorMessage``), which is what Step Functions matches a ``Catch`` against."""

import json
import os
import threading
import time
import types

import pytest

from yafdp.backends.aws import lambda_handler as entry
from yafdp.backends.aws.clients import make_clients
from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.dynamo_state import items_of, scan
from yafdp.backends.aws.step_functions import deploy_state_machine
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs import RunOptions, run_saga
from yafdp.runs.workload import planned_requests
from yafdp.runtime.envelope import epoch_of, make_envelope

CATALOG = load_catalog()
WORLD = load_marketplace()
# Seed 20's five orders end every way: delivered, card declined, restaurant rejected (refund), delivery failed
# (refund, loyalty reverted).
RATES = {"payment_failure": 0.3, "restaurant_reject": 0.3, "delivery_failure": 0.3}
ORDERS = planned_requests(CATALOG, 5, seed=20, rates=RATES)


@pytest.fixture
def aws(monkeypatch):
    """moto in this process with its Step Functions executing state machines, its Lambda running the entry point."""
    from moto import mock_aws
    from moto.awslambda.models import LambdaFunction

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(key, value)
    one_at_a_time = threading.Lock()  # Parallel branches invoke at once; the environment is the process's

    def invoke(function, event=None):
        # The entry point reads the function's environment from os.environ; it is given its own (this process's
        # plus the function's variables) instead of the process's being changed under moto's other threads.
        with one_at_a_time:
            monkeypatch.setattr(entry, "os", types.SimpleNamespace(environ={**os.environ, **function.environment_vars}))
            try:
                context = types.SimpleNamespace(invoked_function_arn=function.function_arn)
                return json.dumps(entry.lambda_handler(event, context)), False, ""
            except Exception as exc:  # the Python runtime's answer for an unhandled exception
                return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []}), True, ""
            finally:
                monkeypatch.setattr(entry, "os", os)

    monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield make_clients()
    entry._functions.clear()  # their clients were made inside the mock


def _execute(sfn, machine, envelope) -> dict:
    # named (moto names every unnamed execution "None", so a second one is refused as existing)
    arn = sfn.start_execution(stateMachineArn=machine, name=f"order-{envelope['id']}",
                              input=json.dumps({"emitted": envelope["detail-type"], "event": envelope}))["executionArn"]
    deadline = time.monotonic() + 600  # moto runs the execution in a thread of its own: wait for it (a hang guard)
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.05)
    return described


def test_the_state_machine_runs_its_tasks_on_lambda_and_ends_every_order_as_the_local_runner(aws, tmp_path):
    import boto3

    plan = deploy(aws, CATALOG, backend="moto", prefix="orch", echo=lambda line: None, point_in_time_recovery=False)
    sfn = boto3.client("stepfunctions")
    machine = deploy_state_machine(sfn, aws.iam, CATALOG, plan)
    statuses = {}
    for order in ORDERS:
        placed = json.loads(aws.lambda_.invoke(FunctionName=plan.service("order").function, Payload=json.dumps(
            {"entrypoint": "place_order", "payload": order.request}))["Payload"].read())
        if "error" in placed:
            continue  # refused before anything was charged, as on every backend
        [started] = [json.loads(item["row"]["S"]) for pk, _, item in scan(aws.dynamodb, plan.service("order").table)
                     if pk == "#trace" and json.loads(item["row"]["S"]).get("order_id") == placed["result"]
                     and json.loads(item["row"]["S"])["kind"] == "event"]
        envelope = make_envelope(started["event_id"], started["source"], started["detail_type"],
                                 json.loads(started["detail"]), epoch_of(started["time"]), region=plan.region,
                                 account=plan.account)
        described = _execute(sfn, machine, envelope)
        assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
        statuses[placed["result"]] = dict(items_of(aws.dynamodb, plan.service("order").table, "order"))[
            placed["result"]]["status"]

    local = run_saga(RunOptions(orders=len(ORDERS), seed=20, out=tmp_path, style="orchestration", rates=RATES))
    published = {json.loads(item["row"]["S"])["detail_type"] for service in plan.services
                 for pk, _, item in scan(aws.dynamodb, service.table)
                 if pk == "#trace" and json.loads(item["row"]["S"])["kind"] == "event"}
    assert {"Payment_Failed", "Restaurant_Rejected_Order", "Delivery_Failed", "Payment_Refunded",
            "Delivery_Scheduled"} <= published  # every Catch ran its compensation on Lambda
    assert set(statuses.values()) >= {"DELIVERY_SCHEDULED", "CANCELLED"}
    by_status = {}
    for status in statuses.values():
        by_status[status] = by_status.get(status, 0) + 1
    assert by_status == local["orders"]["by_status"]
    charges = [json.loads(item["item"]["S"]) for pk, _, item in scan(aws.dynamodb, plan.service("payment").table)
               if pk == "charge"]
    refunds = [json.loads(item["item"]["S"]) for pk, _, item in scan(aws.dynamodb, plan.service("payment").table)
               if pk == "refund"]
    assert round(sum(c["amount"] for c in charges), 2) == local["charged"]
    assert round(sum(r["amount"] for r in refunds), 2) == local["refunded"]


def test_a_task_invoked_again_for_the_same_event_answers_the_same_without_running_twice(aws):
    plan = deploy(aws, CATALOG, backend="moto", prefix="again", echo=lambda line: None, point_in_time_recovery=False)
    order = planned_requests(CATALOG, 1, seed=22, rates={"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0})[0].request
    placed = json.loads(aws.lambda_.invoke(FunctionName=plan.service("order").function, Payload=json.dumps(
        {"entrypoint": "place_order", "payload": order}))["Payload"].read())["result"]
    [started] = [json.loads(item["row"]["S"]) for pk, _, item in scan(aws.dynamodb, plan.service("order").table)
                 if pk == "#trace" and json.loads(item["row"]["S"])["kind"] == "event"]
    envelope = make_envelope(started["event_id"], started["source"], started["detail_type"],
                             json.loads(started["detail"]), epoch_of(started["time"]))
    task = {"task": "payment.charge_order on Order_Initiated", "rule": "payment-charges-order",
            "handler": "charge_order", "event": envelope}
    first = aws.lambda_.invoke(FunctionName=plan.service("payment").function, Payload=json.dumps(task))
    again = aws.lambda_.invoke(FunctionName=plan.service("payment").function, Payload=json.dumps(task))
    answers = [json.loads(r["Payload"].read()) for r in (first, again)]
    assert answers[0] == answers[1] and answers[0]["emitted"] == "Payment_Success" and placed
    charges = [pk for pk, _, _ in scan(aws.dynamodb, plan.service("payment").table) if pk == "charge"]
    trace = [json.loads(item["row"]["S"]) for pk, _, item in scan(aws.dynamodb, plan.service("payment").table)
             if pk == "#trace"]
    assert len(charges) == 1
    assert sorted(row["outcome"] for row in trace if row["kind"] == "delivery") == ["duplicate", "ok"]
