"""The local EventBridge Scheduler: one-time schedules on the run's virtual clock, with AWS's member names, its refusals,
and a deleted schedule that neither fires nor moves the clock."""

import json
import random
import re

import pytest

from yafdp.backends.local.eventbridge_scheduler import LocalScheduler, SchedulerApiError, UnsupportedLocally, at_seconds
from yafdp.backends.local.scheduler import Scheduler
from yafdp.runtime.scheduling import at_expression

EPOCH = 1_767_225_600.0
BUS = "arn:aws:events:eu-west-1:000000000000:event-bus/yafdp-saga"
ORDER_FUNCTION = "arn:aws:lambda:eu-west-1:000000000000:function:yafdp-order"
UNIVERSAL = "arn:aws:scheduler:::aws-sdk:eventbridgev2:putEvents"


def _target(detail=None):
    return {"Arn": BUS, "RoleArn": "arn:aws:iam::000000000000:role/yafdp/yafdp-scheduler",
            "EventBridgeParameters": {"DetailType": "Order_Timed_Out", "Source": "yafdp.order"},
            "Input": json.dumps(detail or {"order_id": "ord-1"})}


def _not_on_the_bus(**change):
    """A target that is no event bus: without the bus's EventBridgeParameters."""
    return {**{k: v for k, v in _target().items() if k != "EventBridgeParameters"}, **change}


def _scheduler(bus=BUS):
    clock, put = Scheduler(random.Random(0)), []
    return clock, LocalScheduler(clock, EPOCH, lambda *args: put.append((clock.vt, *args)), bus=bus,
                                 functions={ORDER_FUNCTION: "yafdp.order"}), put


def _create(api, name="deadline-ord-1", seconds=900, **extra):
    return api.create_schedule(Name=name, ScheduleExpression=at_expression(EPOCH + seconds), Target=_target(),
                               FlexibleTimeWindow={"Mode": "OFF"}, **extra)


def test_a_one_time_schedule_puts_its_event_at_its_time_and_is_deleted_after():
    clock, api, put = _scheduler()
    arn = _create(api, ActionAfterCompletion="DELETE", GroupName="yafdp-deadlines")["ScheduleArn"]
    assert arn == "arn:aws:scheduler:eu-west-1:000000000000:schedule/yafdp-deadlines/deadline-ord-1"
    clock.run()
    assert put == [(900.0, "deadline-ord-1", "yafdp.order", "Order_Timed_Out", '{"order_id": "ord-1"}')]
    with pytest.raises(SchedulerApiError, match="ResourceNotFoundException"):
        api.get_schedule(Name="deadline-ord-1", GroupName="yafdp-deadlines")
    assert api.report() == {"schedules_created": 1, "schedules_deleted": 0, "schedules_invoked": 1}


def test_a_deleted_schedule_neither_fires_nor_moves_the_clock():
    clock, api, put = _scheduler()
    _create(api)
    api.delete_schedule(Name="deadline-ord-1")
    clock.schedule(5.0, lambda: None)
    clock.run()
    assert put == [] and clock.vt == 5.0 and clock.idle


def test_a_schedule_left_after_it_fired_stays_and_a_disabled_one_never_fires():
    clock, api, put = _scheduler()
    _create(api, name="kept")
    _create(api, name="off", State="DISABLED")
    clock.run()
    assert [p[1] for p in put] == ["kept"]
    assert api.get_schedule(Name="kept")["State"] == "ENABLED"
    assert api.list_schedules()["Schedules"][0]["Name"] == "kept"


def test_a_schedule_in_the_past_fires_at_once():
    clock, api, put = _scheduler()
    clock.schedule(100.0, lambda: _create(api, seconds=10))
    clock.run()
    assert put[0][0] == 100.0


@pytest.mark.parametrize("change, message", [
    ({"ScheduleExpression": "at(2026-02-30T00:00:00)"}, "no such date"),
    ({"ScheduleExpression": "tomorrow"}, "Invalid Schedule Expression"),
    ({"Name": "a name with spaces"}, "parameter Name, value: 'a name with spaces', must match the pattern"),
    ({"Name": "n" * 65}, "Invalid length for parameter Name, value: 65, valid max length: 64"),
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE"}}, "MaximumWindowInMinutes"),
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": True}},
     "Invalid type for parameter FlexibleTimeWindow.MaximumWindowInMinutes, value: True, type: <class 'bool'>"),
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1441}}, "valid max value: 1440"),
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 0}}, "valid min value: 1"),
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 5.0}}, "valid types: <class 'int'>"),
    ({"FlexibleTimeWindow": {"Mode": "ALWAYS"}}, "FlexibleTimeWindow.Mode, value: 'ALWAYS', valid values: OFF, FLEXIBLE"),
    ({"Target": {"Arn": BUS}}, 'Missing required parameter in Target: "RoleArn"'),
    ({"Target": {**_target(), "EventBridgeParameters": {"DetailType": "Order_Timed_Out", "Source": "aws.order"}}},
     "Target.EventBridgeParameters.Source"),
    ({"ActionAfterCompletion": "KEEP"}, "ActionAfterCompletion, value: 'KEEP', valid values: NONE, DELETE"),
    ({"State": True}, "Invalid type for parameter State"),
    ({"Description": "d" * 513}, "valid max length: 512"),
    ({"Tags": [{"Key": "k", "Value": "v"}]}, 'Unknown parameter in input: "Tags"'),
    ({"StartDate": "not a date"}, "Invalid type for parameter StartDate"),
])
def test_what_create_schedule_refuses_is_a_validation_exception_naming_the_member(change, message):
    """What botocore's service model for scheduler and the API reference say CreateSchedule takes: member names,
    types (a bool is no Integer), required members, lengths, ranges, enums and patterns."""
    _, api, _ = _scheduler()
    request = {"Name": "n", "ScheduleExpression": at_expression(EPOCH + 60), "Target": _target(),
               "FlexibleTimeWindow": {"Mode": "OFF"}, **change}
    with pytest.raises(SchedulerApiError, match=re.escape(message)) as refused:
        api.create_schedule(**request)
    assert refused.value.code == "ValidationException" and "\n" not in str(refused.value)


@pytest.mark.parametrize("change, message", [
    ({"ScheduleExpression": "rate(5 minutes)"}, "the recurring schedule 'rate(5 minutes)'"),
    ({"ScheduleExpressionTimezone": "Europe/Dublin"}, "UTC only"),
    ({"KmsKeyArn": "arn:aws:kms:eu-west-1:000000000000:key/k-1"}, "KmsKeyArn"),
    ({"ClientToken": "token-1"}, "ClientToken"),
    ({"Target": {**_target(), "Arn": "arn:aws:events:eu-west-1:000000000000:event-bus/another-bus"}},
     "Target.Arn arn:aws:events:eu-west-1:000000000000:event-bus/another-bus (another event bus"),
    ({"Target": {**_target(), "Arn": "arn:aws:sqs:eu-west-1:000000000000:q"}}, "it runs only targets that put"),
    ({"Target": {**_target(), "Arn": "arn:aws:lambda:eu-west-1:000000000000:function:another"}}, "it runs only targets"),
    ({"Target": {**_target(), "RetryPolicy": {"MaximumRetryAttempts": 3}}}, "Target.RetryPolicy"),
    ({"Target": {**_target(), "DeadLetterConfig": {"Arn": "arn:aws:sqs:eu-west-1:000000000000:dlq"}}},
     "Target.DeadLetterConfig"),
    ({"Target": {**_target(), "SqsParameters": {"MessageGroupId": "g"}}}, "Target.SqsParameters"),
    ({"Target": {k: v for k, v in _target().items() if k != "Input"}}, "a Target without Input"),
    ({"Target": _not_on_the_bus(Arn=UNIVERSAL)}, "EventBusArn and Entries"),
    ({"Target": _not_on_the_bus(Arn=UNIVERSAL, Input=json.dumps(
        {"EventBusArn": "arn:aws:events:eu-west-1:000000000000:event-busv2/other/x", "Entries": [
            {"Source": "yafdp.order", "DetailType": "Order_Timed_Out", "Detail": "{}"}]}))},
     "EventBusArn arn:aws:events:eu-west-1:000000000000:event-busv2/other/x"),
    ({"Target": {**_target(), "Arn": ORDER_FUNCTION}}, "Target.EventBridgeParameters"),
    ({"Target": _not_on_the_bus(Arn=ORDER_FUNCTION, Input=json.dumps(
        {"schedule": "n", "Source": "yafdp.payment", "DetailType": "Order_Timed_Out", "Detail": {}}))},
     "Source 'yafdp.payment' for the function"),
    ({"Target": {**_target(), "Input": "[1]"}}, "JSON object"),
])
def test_what_create_schedule_accepts_but_the_emulator_cannot_run_is_refused_as_unsupported_locally(change, message):
    """A valid request the emulator would otherwise run some other way (another bus's events delivered to the
    saga's, a retry policy never applied) is refused, saying so."""
    _, api, _ = _scheduler()
    request = {"Name": "n", "ScheduleExpression": at_expression(EPOCH + 60), "Target": _target(),
               "FlexibleTimeWindow": {"Mode": "OFF"}, **change}
    assert _refusal(request) is None  # CreateSchedule takes it
    with pytest.raises(UnsupportedLocally, match=re.escape(message)) as refused:
        api.create_schedule(**request)
    assert refused.value.code == "UnsupportedLocally"
    assert str(refused.value).startswith("the local EventBridge Scheduler does not support ")


def _refusal(request):
    from yafdp.backends.local.scheduler_requests import request_refusal

    return request_refusal("CreateSchedule", request)


def test_a_valid_request_with_every_member_the_emulator_runs_is_accepted_described_and_fires():
    """Description (refused before: the emulator took a fixed list of members), StartDate and EndDate (AWS ignores
    them for a one-time schedule) and a FLEXIBLE window are CreateSchedule's, and run."""
    clock, api, put = _scheduler()
    api.create_schedule(Name="n", ScheduleExpression=at_expression(EPOCH + 60), Target=_target(),
                        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
                        Description="the order's deadline", StartDate="2030-01-01T00:00:00Z", EndDate=EPOCH,
                        GroupName="yafdp-deadlines", ActionAfterCompletion="NONE", State="ENABLED",
                        ScheduleExpressionTimezone="UTC")
    described = api.get_schedule(Name="n", GroupName="yafdp-deadlines")
    assert described["Description"] == "the order's deadline"
    assert described["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    clock.run()
    assert put == [(60.0, "n", "yafdp.order", "Order_Timed_Out", '{"order_id": "ord-1"}')]


def test_names_are_unique_in_a_group_and_deleting_twice_is_not_found():
    _, api, _ = _scheduler()
    _create(api)
    with pytest.raises(SchedulerApiError) as conflict:
        _create(api)
    assert conflict.value.code == "ConflictException"
    _create(api, GroupName="other")  # another group, another name space
    api.delete_schedule(Name="deadline-ord-1")
    with pytest.raises(SchedulerApiError) as gone:
        api.delete_schedule(Name="deadline-ord-1")
    assert gone.value.code == "ResourceNotFoundException"


def test_the_at_expression_is_the_whole_second_at_or_after_the_time():
    assert at_seconds(at_expression(EPOCH + 0.2)) == EPOCH + 1
    assert at_seconds(at_expression(EPOCH + 900)) == EPOCH + 900


@pytest.mark.parametrize("bus", ["classic", "custom"])
@pytest.mark.parametrize("schedule_target", ["function", "universal"])
def test_the_plans_target_on_either_bus_puts_the_deadline_on_the_bus(bus, schedule_target):
    """Whatever the schedule targets (the Classic bus; on a Custom Event Bus the Order function or the universal
    eventbridgev2:putEvents target, bus.json's custom_event_bus.schedule_target), the emulator fires it as the event
    the saga's deadline is, with the Order service's source. The request the saga makes passes every check of
    create_schedule (CreateSchedule's shape in botocore's model, what the emulator runs): the premise on which a
    run creates its own requests with add_schedule, unchecked."""
    from dataclasses import replace

    from yafdp.catalog import load_catalog
    from yafdp.plan import build_plan
    from yafdp.runtime.scheduling import schedule_calls

    catalog = load_catalog()
    catalog = replace(catalog, bus=replace(catalog.bus, custom=replace(catalog.bus.custom,
                                                                        schedule_target=schedule_target)))
    detail = {"order_id": "ord-1", "customer_id": "cus-1", "restaurant_id": "res-napoli", "deadline_seconds": 900}
    plan = build_plan(catalog, bus=bus)
    [(call, request)] = schedule_calls(catalog, plan, "order",
                                       [("create", "deadline-ord-1", 900, "Order_Timed_Out", detail)], EPOCH)
    clock, api, put = _scheduler(plan.bus_arn())
    getattr(api, call)(**request)
    clock.run()
    assert [(at, name, source, detail_type, json.loads(text)) for at, name, source, detail_type, text in put] == [
        (900.0, "deadline-ord-1", "yafdp.order", "Order_Timed_Out", detail)]
