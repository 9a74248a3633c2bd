"""The saga's timeout: a restaurant that never answers is given up on at the deadline, a one-time EventBridge
Scheduler schedule per order, with its compensation; the run passes `yafdp check`. Locally on both buses and with the
orchestration; on moto, the schedule is created for an order and deleted when the order ends."""

import json

import pytest

from yafdp.analysis.check import check_run
from yafdp.analysis.trace import load_run
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs import RunOptions, finish, start_saga

WORLD = load_marketplace()
SILENT = {"order_id": "ord-silent-1", "customer_id": "cus-ada", "restaurant_id": "res-silent",
          "items": [{"item_id": "lasagne", "quantity": 1, "unit_price": 12.0}], "amount": 12.0, "currency": "EUR",
          "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
FINE = {**SILENT, "order_id": "ord-fine-1", "restaurant_id": "res-napoli",
        "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}], "amount": 17.0}


def _run(tmp_path, **options):
    options = RunOptions(orders=0, seed=4, out=tmp_path / "run", latency_model="aws-eu-west-1", **options)
    bus = start_saga(options)
    for request in (SILENT, FINE):
        bus.call("order", "place_order", request)
    bus.run()
    report = bus.services.schedules.report()
    finish(bus, options, options.out, 0.0)
    return load_run(options.out), report


@pytest.mark.parametrize("bus", ["classic", "custom"])
def test_the_deadline_fires_for_the_order_nobody_answers_and_its_compensation_follows(tmp_path, bus):
    run, report = _run(tmp_path, bus=bus)
    statuses = run.orders.set_index("order_id")["status"].to_dict()
    assert statuses == {"ord-silent-1": "CANCELLED", "ord-fine-1": "DELIVERY_SCHEDULED"}
    events = run.events.set_index("detail_type")
    timed_out = run.events[run.events["detail_type"] == "Order_Timed_Out"]
    assert list(timed_out["order_id"]) == ["ord-silent-1"] and list(timed_out["published_by"]) == ["schedule#deadline-ord-silent-1"]
    placed = run.events[(run.events["detail_type"] == "Order_Initiated") & (run.events["order_id"] == "ord-silent-1")]
    assert float(timed_out["published_at"].iloc[0] - placed["published_at"].iloc[0]) == pytest.approx(
        WORLD.saga_timeout_seconds, abs=1.0)  # at() has whole seconds
    rejected = json.loads(events.loc["Restaurant_Rejected_Order", "detail"])
    assert rejected["reason"] == "no_answer"
    assert "Payment_Refunded" in set(run.events.loc[run.events["order_id"] == "ord-silent-1", "detail_type"])
    assert report == {"schedules_created": 2, "schedules_deleted": 1, "schedules_invoked": 1}
    assert all(result.passed for result in check_run(run.path)), [r.name for r in check_run(run.path) if not r.passed]


def test_without_a_restaurant_that_never_answers_no_deadline_fires_and_the_run_ends_with_its_orders(tmp_path):
    options = RunOptions(orders=30, seed=2, out=tmp_path / "run", latency_model="aws-eu-west-1")
    bus = start_saga(options)
    bus.run()
    assert bus.services.schedules.report() == {"schedules_created": 30, "schedules_deleted": 30, "schedules_invoked": 0}
    assert bus.vt < 60  # the deadlines were called off: nothing waited for them
    finish(bus, options, options.out, 0.0)
    assert "Order_Timed_Out" not in set(load_run(options.out).events["detail_type"])


def test_a_deadline_pending_when_a_file_store_run_is_stopped_fires_after_the_resume(tmp_path):
    """The schedules lived in the process's memory only: a run killed while an order's deadline was pending lost
    it, so a resume left that order stuck (and counted a deletion short for each one that ended). run.db keeps
    them now, committed with the order that asked for them."""
    from yafdp.runs import lifecycle, resume_saga

    options = RunOptions(orders=0, seed=4, out=tmp_path / "run", store="file", latency_model="aws-eu-west-1")
    bus = start_saga(options)
    for request in (SILENT, FINE):
        bus.call("order", "place_order", request)  # a durable bus commits each call: the client was answered
    lifecycle._close(bus, options.out)  # stopped here, as a kill would (nothing after the last commit is kept)
    summary = resume_saga(options.out, progress=False)
    run = load_run(options.out)
    assert run.orders.set_index("order_id")["status"].to_dict() == {"ord-silent-1": "CANCELLED",
                                                                     "ord-fine-1": "DELIVERY_SCHEDULED"}
    assert list(run.events.loc[run.events["detail_type"] == "Order_Timed_Out", "order_id"]) == ["ord-silent-1"]
    assert summary["scheduler"] == {"schedules_created": 2, "schedules_deleted": 1, "schedules_invoked": 1}
    assert all(result.passed for result in check_run(run.path))


@pytest.mark.parametrize("kept, said", [
    ('{"Name": "deadline-ord-silent-1", "GroupName": "yafdp-deadlines"}',
     'Missing required parameter in input: "ScheduleExpression"; Missing required parameter in input: "Target"'),
    ('{"Name": "deadline-ord-silent-1", "GroupName": "yafdp-deadlines", "ScheduleExpression": "at(2020-01-01T00:00:00)", "Target": {}, '
     '"FlexibleTimeWindow": {"Mode": "OFF"}}', 'ValidationException: Missing required parameter in Target: "Arn"'),
    ('{"Name": "deadline-ord-other", "GroupName": "yafdp-deadlines", "ScheduleExpression": "at(2020-01-01T00:00:00)", '
     '"Target": {}, "FlexibleTimeWindow": {"Mode": "OFF"}}', "a request for another schedule: its GroupName and Name are 'yafdp-deadlines' and 'deadline-ord-other', not "
     "the row's"),
] + [(json.dumps({"Name": "deadline-ord-silent-1", "GroupName": "yafdp-deadlines",
                    "ScheduleExpression": "at(2030-01-01T00:00:00)", "FlexibleTimeWindow": {"Mode": "OFF"},
                    "ActionAfterCompletion": "DELETE",
                    "Target": {"Arn": "arn:aws:events:eu-west-1:000000000000:event-bus/yafdp-saga",
                               "RoleArn": "arn:aws:iam::000000000000:role/yafdp/yafdp-scheduler",
                               "Input": json.dumps(detail),
                               "EventBridgeParameters": {"DetailType": detail_type, "Source": source}}}),
       "holds an event the bus would refuse when it fires") for source, detail_type, detail in (
    ("yafdp.order", "Order_Timed_Out", {"order_id": "ord-nope"}),
    ("yafdp.order", "Bogus", {"order_id": "ord-silent-1"}),
    ("yafdp.nobody", "Order_Timed_Out", {"order_id": "ord-silent-1", "customer_id": "cus-ada",
                                         "restaurant_id": "res-silent", "deadline_seconds": 900.0}))],
    ids=["parameters-missing", "refused-by-the-api", "another-schedules-request", "detail-breaks-its-schema",
         "unknown-detail-type", "unknown-source"])
def test_a_kept_schedule_the_scheduler_api_refuses_stops_the_resume_in_one_line_and_changes_nothing(tmp_path, kept, said):
    import sqlite3
    import subprocess
    import sys

    from yafdp.runs import lifecycle

    options = RunOptions(orders=0, seed=4, out=tmp_path / "run", store="file", latency_model="aws-eu-west-1")
    bus = start_saga(options)
    bus.call("order", "place_order", SILENT)
    lifecycle._close(bus, options.out)
    with sqlite3.connect(options.out / "run.db") as db:
        db.execute("UPDATE schedules SET request = ?", (kept,))
    db.close()
    before = {p.name: p.read_bytes() for p in options.out.iterdir()}
    result = subprocess.run([sys.executable, "-m", "yafdp", "resume", "--out", str(options.out)], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{options.out / 'run.db'}: the schedule yafdp-deadlines/deadline-ord-silent-1 holds " in result.stderr
    assert said in result.stderr
    assert {p.name: p.read_bytes() for p in options.out.iterdir()} == before


def _kept_and_resumed(tmp_path, edit):
    """A file-store run stopped with the silent order's deadline pending, its kept CreateSchedule request edited by
    ``edit(request)``, then ``yafdp resume`` through the command line: (result, run folder, files before)."""
    import sqlite3
    import subprocess
    import sys

    from yafdp.runs import lifecycle

    options = RunOptions(orders=0, seed=4, out=tmp_path / "run", store="file", latency_model="aws-eu-west-1")
    bus = start_saga(options)
    bus.call("order", "place_order", SILENT)
    lifecycle._close(bus, options.out)
    with sqlite3.connect(options.out / "run.db") as db:
        [(text,)] = db.execute("SELECT request FROM schedules").fetchall()
        request = json.loads(text)
        edit(request)
        db.execute("UPDATE schedules SET request = ?", (json.dumps(request),))
    db.close()
    before = {p.name: p.read_bytes() for p in options.out.iterdir()}
    result = subprocess.run([sys.executable, "-m", "yafdp", "resume", "--out", str(options.out)], capture_output=True,
                            text=True, timeout=600)
    return result, options.out, before


def test_a_kept_request_with_a_description_createschedule_accepts_is_restored_and_its_deadline_fires(tmp_path):
    """The reviewer's first finding: Description, which CreateSchedule takes, stopped the resume."""
    result, out, _ = _kept_and_resumed(tmp_path, lambda request: request.update(Description="the order's deadline"))
    assert result.returncode == 0, result.stderr
    run = load_run(out)
    assert list(run.events.loc[run.events["detail_type"] == "Order_Timed_Out", "order_id"]) == ["ord-silent-1"]
    assert run.orders.set_index("order_id")["status"].to_dict() == {"ord-silent-1": "CANCELLED"}


def _set(path, value):
    def edit(request):
        *parents, last = path
        for key in parents:
            request = request[key]
        request[last] = value
    return edit


@pytest.mark.parametrize("edit, said", [
    (_set(("Target", "Arn"), "arn:aws:events:eu-west-1:000000000000:event-bus/another-bus"),
     "holds a request CreateSchedule accepts but the local EventBridge Scheduler does not support Target.Arn "
     "arn:aws:events:eu-west-1:000000000000:event-bus/another-bus (another event bus"),
    (_set(("FlexibleTimeWindow",), {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": True}),
     "Invalid type for parameter FlexibleTimeWindow.MaximumWindowInMinutes, value: True, type: <class 'bool'>"),
    (_set(("Priority",), "high"), 'Unknown parameter in input: "Priority"'),
    (_set(("Target", "Input"), {"order_id": "ord-silent-1"}), "Invalid type for parameter Target.Input"),
    (_set(("FlexibleTimeWindow",), {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1441}),
     "FlexibleTimeWindow.MaximumWindowInMinutes, value: 1441, valid max value: 1440"),
    (_set(("ActionAfterCompletion",), "ARCHIVE"), "ActionAfterCompletion, value: 'ARCHIVE', valid values: NONE, DELETE"),
    (_set(("Target", "RetryPolicy"), {"MaximumRetryAttempts": 3}), "does not support Target.RetryPolicy"),
], ids=["another-event-bus", "window-a-boolean", "unknown-member", "wrong-type", "out-of-range", "not-in-enum",
        "valid-but-not-modelled"])
def test_a_kept_request_not_of_createschedules_shape_or_not_runnable_here_stops_the_resume_in_one_line(
        tmp_path, edit, said):
    """The reviewer's second and third findings and their kind: the kept request is checked against CreateSchedule's
    shape in botocore's service model, and what the local Scheduler cannot run is refused as such, not run otherwise
    (another bus's schedule delivered to the saga's bus)."""
    result, out, before = _kept_and_resumed(tmp_path, edit)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"{out / 'run.db'}: the schedule yafdp-deadlines/deadline-ord-silent-1 holds " in result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_restoring_a_schedule_that_fired_keeps_it_fired_and_takes_its_group_as_the_api_defaults_it():
    """ActionAfterCompletion NONE: a fired schedule stays, fired. Restoring it wrote fired = 0 back (a second kill
    and resume would have fired it again), and a kept request without GroupName (the API's default, "default")
    raised KeyError."""
    import random

    from yafdp.backends.local.eventbridge_scheduler import LocalScheduler
    from yafdp.backends.local.scheduler import Scheduler
    from yafdp.runtime import rundb

    db = rundb.connect(None)
    request = {"Name": "reminder", "ScheduleExpression": "at(2030-01-01T00:00:00)",
               "Target": {"Arn": "arn:aws:events:eu-west-1:123456789012:event-bus/yafdp",
                          "RoleArn": "arn:aws:iam::123456789012:role/scheduler", "Input": "{}",
                          "EventBridgeParameters": {"Source": "yafdp.order", "DetailType": "Reminder"}},
               "FlexibleTimeWindow": {"Mode": "OFF"}}
    db.execute("INSERT INTO schedules (grp, name, request, fired) VALUES ('default', 'reminder', ?, 1)",
               (json.dumps(request),))
    scheduler = LocalScheduler(Scheduler(random.Random(1)), 0.0, lambda *entry: None, store=db,
                               bus="arn:aws:events:eu-west-1:123456789012:event-bus/yafdp")
    assert scheduler.restore() == 1
    assert scheduler.schedules[("default", "reminder")].fired
    assert db.execute("SELECT fired FROM schedules").fetchall() == [(1,)]


def test_the_orchestration_calls_the_deadlines_off_too(tmp_path):
    options = RunOptions(orders=10, seed=2, out=tmp_path / "run", style="orchestration")
    bus = start_saga(options)
    bus.run()
    assert bus.services.schedules.report() == {"schedules_created": 10, "schedules_deleted": 10, "schedules_invoked": 0}
    finish(bus, options, options.out, 0.0)


def test_a_deadline_schedule_is_created_on_aws_for_an_order_and_deleted_when_it_ends(clients, tmp_path):
    from yafdp.backends.aws.deployment import deploy
    from yafdp.backends.aws.function import FunctionConfig, ServiceFunction
    from yafdp.backends.aws.teardown import destroy

    catalog = load_catalog()
    plan = deploy(clients, catalog, backend="moto", prefix="tmo", echo=lambda line: None)
    try:
        order = ServiceFunction(FunctionConfig.for_service(plan, "order"), catalog, plan, WORLD, clients.events,
                                clients.dynamodb, scheduler=clients.scheduler)
        order.call("place_order", FINE)
        schedule = clients.scheduler.get_schedule(Name="deadline-ord-fine-1", GroupName="tmo-deadlines")
        assert schedule["ScheduleExpression"].startswith("at(") and schedule["ActionAfterCompletion"] == "DELETE"
        target = schedule["Target"]
        assert target["Arn"] == plan.bus_arn() and target["RoleArn"] == plan.role_arn("tmo-scheduler")
        assert target["EventBridgeParameters"] == {"DetailType": "Order_Timed_Out", "Source": "yafdp.order"}
        assert json.loads(target["Input"])["order_id"] == "ord-fine-1"
        delivered = {"id": "e-1", "detail-type": "Delivery_Scheduled", "source": "yafdp.delivery",
                     "detail": {"order_id": "ord-fine-1"}, "time": "2026-01-01T00:00:00Z", "version": "0",
                     "account": plan.account, "region": plan.region, "resources": []}
        order.handle_message({"messageId": "m-1", "attributes": {},
                              "body": json.dumps({"rule": plan.rule("order-tracks-status").name, "event": delivered})})
        with pytest.raises(clients.scheduler.exceptions.ResourceNotFoundException):
            clients.scheduler.get_schedule(Name="deadline-ord-fine-1", GroupName="tmo-deadlines")
    finally:
        destroy(clients, "tmo", echo=lambda line: None)
    assert not clients.scheduler.list_schedule_groups(NamePrefix="tmo-")["ScheduleGroups"]


@pytest.mark.slow
@pytest.mark.parametrize("schedule_target", ["function", "universal"])
def test_on_a_custom_event_bus_the_deadline_targets_what_the_catalog_chooses_and_puts_its_event_once(
        moto_url, tmp_path, schedule_target):
    """AWS's Scheduler pages name no Custom Event Bus target, so bus.json's custom_event_bus.schedule_target chooses:
    the Order function (templated Lambda Invoke), which publishes the deadline when Scheduler invokes it with the
    schedule's Input, once however often it is invoked; or the universal target eventbridgev2:putEvents, whose Input
    is a PutEvents request the Custom Event Bus (`yafdp serve`) takes as it is, answered DEDUPLICATED when repeated."""
    from dataclasses import replace

    from yafdp.backends.aws.clients import make_clients
    from yafdp.backends.aws.custom_bus import deployed_bus_arn
    from yafdp.backends.aws.deployment import deploy
    from yafdp.backends.aws.function import FunctionConfig, ServiceFunction, publisher
    from yafdp.backends.aws.teardown import destroy
    from yafdp.runs.bootstrap import serve_custom_event_bus

    catalog = load_catalog()
    catalog = replace(catalog, bus=replace(catalog.bus, custom=replace(catalog.bus.custom,
                                                                        schedule_target=schedule_target)))
    prefix = f"tcs{schedule_target[0]}"
    with serve_custom_event_bus(endpoint_url=moto_url) as served:
        clients = make_clients(moto_url, bus_endpoint_url=served.url)
        plan = deploy(clients, catalog, backend="moto", prefix=prefix, echo=lambda line: None, bus="custom")
        try:
            bus_arn = deployed_bus_arn(plan, clients)
            order = ServiceFunction(FunctionConfig.for_service(plan, "order", bus_arn=bus_arn), catalog, plan, WORLD,
                                    publisher(plan, clients.events, clients.eventbridgev2, bus_arn), clients.dynamodb,
                                    scheduler=clients.scheduler)
            order.call("place_order", FINE)
            target = clients.scheduler.get_schedule(Name="deadline-ord-fine-1", GroupName=f"{prefix}-deadlines")["Target"]
            request = json.loads(target["Input"])
            policy = json.dumps(plan.scheduler_policy)
            if schedule_target == "function":
                assert target["Arn"] == plan.function_arn("order") and "lambda:InvokeFunction" in policy
                assert (request["Source"], request["DetailType"]) == ("yafdp.order", "Order_Timed_Out")
                first = order.put_scheduled(request)  # what Lambda hands the function: the schedule's Input
                assert len(first) == 1 and order.put_scheduled(request) == []  # invoked again: nothing twice
            else:
                assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:eventbridgev2:putEvents"
                assert request["EventBusArn"] == bus_arn and "events:PutEvents" in policy
                [entry] = request["Entries"]
                assert entry["SystemMetadata"]["EventGroupId"] == "ord-fine-1"
                answers = [clients.eventbridgev2.put_events(**request)["Entries"][0] for _ in range(2)]
                assert [a.get("SuccessCode") for a in answers] == ["PUBLISHED", "DEDUPLICATED"]
                assert answers[0]["EventId"] == answers[1]["EventId"]
        finally:
            destroy(clients, prefix, echo=lambda line: None)


def test_the_lambda_entry_point_hands_a_schedules_input_to_put_scheduled(monkeypatch):
    """What EventBridge Scheduler's Lambda Invoke target sends the function (the schedule's Input) reaches
    put_scheduled, and its answer names the published events; an event of another shape is still refused."""
    from yafdp.backends.aws import lambda_handler
    from yafdp.errors import RefusedError

    class Function:
        def put_scheduled(self, request):
            self.request = request
            return ["e-1"]

    function = Function()
    monkeypatch.setattr(lambda_handler, "_service_function", lambda context: function)
    request = {"schedule": "deadline-ord-1", "Source": "yafdp.order", "DetailType": "Order_Timed_Out",
               "Detail": {"order_id": "ord-1"}}
    assert lambda_handler.lambda_handler(request, None) == {"published": ["e-1"]} and function.request == request
    with pytest.raises(RefusedError, match="a schedule's event"):
        lambda_handler.lambda_handler({"DetailType": "Order_Timed_Out"}, None)
