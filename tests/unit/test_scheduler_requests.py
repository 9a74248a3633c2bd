"""The EventBridge Scheduler request shapes, from botocore's service model for scheduler: botocore's ParamValidator, with
the documented maximums, enums and patterns it leaves to the service, and no bool for a number."""

import re

import pytest

from yafdp.backends.local.scheduler_requests import input_shape, request_refusal

ROLE = "arn:aws:iam::123456789012:role/yafdp/scheduler"


def _request(**change):
    return {"Name": "d-1", "ScheduleExpression": "at(2030-01-01T00:00:00)",
            "Target": {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q", "RoleArn": ROLE}, "FlexibleTimeWindow": {"Mode": "OFF"},
            **change}


def _shapes(shape, seen):
    if shape.name in seen:
        return
    seen[shape.name] = shape
    for member in getattr(shape, "members", {}).values():
        _shapes(member, seen)
    if shape.type_name == "list":
        _shapes(shape.member, seen)
    if shape.type_name == "map":
        _shapes(shape.key, seen)
        _shapes(shape.value, seen)


def test_every_pattern_of_createschedules_shape_is_a_python_regular_expression():
    """A pattern the model gains that Python cannot read would fail every request: caught here, not in a run."""
    seen = {}
    _shapes(input_shape("CreateSchedule"), seen)
    patterns = [shape.metadata["pattern"] for shape in seen.values() if "pattern" in shape.metadata]
    assert len(patterns) >= 4  # Name, GroupName, RoleArn, Source... as of botocore 1.44
    for pattern in patterns:
        re.compile(pattern)


def test_a_request_of_createschedules_shape_with_every_kind_of_member_passes():
    ecs = {"TaskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/t:1", "TaskCount": 2,
           "LaunchType": "FARGATE", "EnableExecuteCommand": True, "Tags": [{"team": "saga"}],
           "NetworkConfiguration": {"awsvpcConfiguration": {"Subnets": ["subnet-1"], "AssignPublicIp": "DISABLED"}}}
    assert request_refusal("CreateSchedule", _request(
        Description="", StartDate="2030-01-01T00:00:00Z", EndDate=1_900_000_000, State="DISABLED",
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1440},
        Target={"Arn": "arn:aws:ecs:eu-west-1:123456789012:cluster/c", "RoleArn": ROLE, "EcsParameters": ecs,
                "RetryPolicy": {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 0}})) is None


@pytest.mark.parametrize("change, said", [
    ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": False}},
     "Invalid type for parameter FlexibleTimeWindow.MaximumWindowInMinutes, value: False, type: <class 'bool'>"),
    ({"Target": {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q", "RoleArn": ROLE,
                 "RetryPolicy": {"MaximumEventAgeInSeconds": 86401}}},
     "Target.RetryPolicy.MaximumEventAgeInSeconds, value: 86401, valid max value: 86400"),
    ({"Target": {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q", "RoleArn": ROLE, "EcsParameters": {
        "TaskDefinitionArn": "t", "NetworkConfiguration": {"awsvpcConfiguration": {"Subnets": ["s"] * 17}}}}},
     "Invalid length for parameter Target.EcsParameters.NetworkConfiguration.awsvpcConfiguration.Subnets, value: 17, "
     "valid max length: 16"),
    ({"Target": {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q", "RoleArn": "role-1"}},
     "Invalid value for parameter Target.RoleArn, value: 'role-1', must match the pattern"),
    ({"Target": {"Arn": "arn:aws:sqs:eu-west-1:123456789012:q", "RoleArn": ROLE, "EcsParameters": {
        "TaskDefinitionArn": "t", "LaunchType": "LAMBDA"}}},
     "Target.EcsParameters.LaunchType, value: 'LAMBDA', valid values: EC2, FARGATE, EXTERNAL"),
    ({"Name": "", "Description": 7},
     "Invalid length for parameter Name, value: 0, valid min length: 1; Invalid type for parameter Description"),
])
def test_what_the_model_refuses_is_said_in_one_line_naming_each_member(change, said):
    refusal = request_refusal("CreateSchedule", _request(**change))
    assert said in refusal and "\n" not in refusal


def test_the_schedule_names_the_saga_takes_are_createschedules_names():
    """A handler chooses its schedule's name; the saga refuses, as the handler asks, a name CreateSchedule would
    refuse (:data:`yafdp.runtime.scheduling.SCHEDULE_NAME`, the model's length and pattern, written out so that a
    run does not load botocore for it)."""
    from yafdp.catalog import load_catalog
    from yafdp.plan import build_plan
    from yafdp.runtime.publishing import DeliveryError
    from yafdp.runtime.scheduling import SCHEDULE_NAME, ScheduleCalls

    name = input_shape("CreateSchedule").members["Name"]
    assert (name.metadata["min"], name.metadata["max"]) == (1, 64)
    assert name.metadata["pattern"] == "[0-9a-zA-Z-_.]+"  # SCHEDULE_NAME's characters, a 1-to-64 run of them
    catalog = load_catalog()
    calls = ScheduleCalls(catalog, build_plan(catalog), "order")
    detail = {"order_id": "ord-1", "customer_id": "cus-1", "restaurant_id": "res-napoli", "deadline_seconds": 900}
    for refused in ("", "x" * 65, "deadline ord-1", "deadline/ord-1", "délai", "a+b", 7):
        assert not isinstance(refused, str) or SCHEDULE_NAME.fullmatch(refused) is None
        assert request_refusal("CreateSchedule", {**_request(), "Name": refused}) is not None, refused
        with pytest.raises(DeliveryError, match="is not one CreateSchedule takes"):
            calls.calls([("create", refused, 900, "Order_Timed_Out", detail)], 0.0)
    for taken in ("d", "x" * 64, "deadline-ord_1.2"):
        assert request_refusal("CreateSchedule", {**_request(), "Name": taken}) is None
        assert calls.calls([("create", taken, 900, "Order_Timed_Out", detail)], 0.0)[0][1]["Name"] == taken
