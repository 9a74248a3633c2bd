"""The local EventBridge Scheduler: one-time schedules on the run's virtual clock, with AWS's member names, its refusals,
and a deleted schedule that neither fires nor moves the clock."""

import json
import random

import pytest

from yafdp.backends.local.eventbridge_scheduler import LocalScheduler, SchedulerApiError, at_seconds
from yafdp.backends.local.scheduler import Scheduler
from yafdp.runtime.scheduling import at_expression

EPOCH = 1_767_225_600.0
BUS = "arn:aws:events:eu-west-1:000000000000:event-bus/yafdp-saga"


def _target(detail=None):
    return {"Arn": BUS, "RoleArn": "arn:aws:iam::000000000000:role/yafdp/yafdp-scheduler",
            "EventBridgeParameters": {"DetailType": "Order_Timed_Out", "Source": "yafdp.order"},
            "Input": json.dumps(detail or {"order_id": "ord-1"})}


def _scheduler():
    clock, put = Scheduler(random.Random(0)), []
    return clock, LocalScheduler(clock, EPOCH, lambda *args: put.append((clock.vt, *args))), put


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
    ({"ScheduleExpression": "rate(5 minutes)"}, "one-time schedules"),
    ({"ScheduleExpression": "at(2026-02-30T00:00:00)"}, "no such date"),
    ({"Name": "a name with spaces"}, "Name"),
    ({"ScheduleExpressionTimezone": "Europe/Dublin"}, "UTC only"),
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE"}}, "MaximumWindowInMinutes"),
    ({"Target": {**_target(), "Arn": "arn:aws:sqs:eu-west-1:000000000000:q"}}, "puts no event on the saga's bus"),
    ({"Target": {**_target(), "Arn": "arn:aws:scheduler:::aws-sdk:eventbridgev2:putEvents"}}, "EventBusArn and Entries"),
    ({"Target": {**_target(), "Arn": "arn:aws:lambda:eu-west-1:000000000000:function:yafdp-order"}}, "a schedule"),
    ({"Target": {**_target(), "Input": "[1]"}}, "JSON object"),
    ({"ActionAfterCompletion": "KEEP"}, "ActionAfterCompletion"),
])
def test_what_create_schedule_refuses_is_a_validation_exception_naming_the_member(change, message):
    _, api, _ = _scheduler()
    request = {"Name": "n", "ScheduleExpression": at_expression(EPOCH + 60), "Target": _target(),
               "FlexibleTimeWindow": {"Mode": "OFF"}, **change}
    with pytest.raises(SchedulerApiError, match=message) as refused:
        api.create_schedule(**request)
    assert refused.value.code == "ValidationException"


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
    the saga's deadline is, with the Order service's source."""
    from dataclasses import replace

    from yafdp.catalog import load_catalog
    from yafdp.plan import build_plan
    from yafdp.runtime.scheduling import schedule_calls

    catalog = load_catalog()
    catalog = replace(catalog, bus=replace(catalog.bus, custom=replace(catalog.bus.custom,
                                                                        schedule_target=schedule_target)))
    detail = {"order_id": "ord-1", "customer_id": "cus-1", "restaurant_id": "res-napoli", "deadline_seconds": 900}
    [(call, request)] = schedule_calls(catalog, build_plan(catalog, bus=bus), "order",
                                       [("create", "deadline-ord-1", 900, "Order_Timed_Out", detail)], EPOCH)
    clock, api, put = _scheduler()
    getattr(api, call)(**request)
    clock.run()
    assert [(at, name, source, detail_type, json.loads(text)) for at, name, source, detail_type, text in put] == [
        (900.0, "deadline-ord-1", "yafdp.order", "Order_Timed_Out", detail)]
