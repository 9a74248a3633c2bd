"""One contract for the Custom Event Bus's API, run on the engine in this process and on the engine served over
AWS's wire protocol through boto3's ``eventbridgev2`` client: the same calls give the same answers (the same
members and values, timestamps aside) and the same refusals (the same exception and message), so the served
endpoint cannot drift from the engine the local runs use."""

import datetime

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from yafdp.custom_event_bus import ApiError, Choices, CustomEventBusService, ManualClock
from yafdp.runs.bootstrap import serve_custom_event_bus

SEED = "contract"
ACCOUNT, REGION = "123456789012", "eu-west-1"  # moto's account, which the served bus takes as its own
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/delivery"


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(code, message)
        self.code, self.message = code, message


class InProcess:
    """The engine called directly, on a clock that moves when told."""

    def __init__(self):
        self.clock = ManualClock(1_767_225_600.0)
        self.service = CustomEventBusService(self.clock, account=ACCOUNT, region=REGION, choices=Choices(), seed=SEED)

    def call(self, operation: str, **request) -> dict:
        try:
            return getattr(self.service, _method(operation))(**request)
        except ApiError as exc:
            raise Refused(exc.code, exc.message) from None

    def settle(self) -> None:
        self.clock.advance(1.0)


class Served:
    """The engine behind ``yafdp serve``'s endpoint, called with boto3 (no retries, no client-side validation: the
    endpoint's own answers are compared)."""

    def __init__(self, served):
        self.served = served
        self.client = boto3.client("eventbridgev2", endpoint_url=served.url, region_name=REGION,
                                   aws_access_key_id="x", aws_secret_access_key="y",
                                   config=botocore.config.Config(retries={"total_max_attempts": 1},
                                                                 parameter_validation=False))

    def call(self, operation: str, **request) -> dict:
        try:
            answer = getattr(self.client, _method(operation))(**request)
        except ClientError as exc:
            raise Refused(exc.response["Error"]["Code"], exc.response["Error"]["Message"]) from None
        answer.pop("ResponseMetadata")
        return answer

    def settle(self) -> None:
        """Let the bus's clock run what is due now (its 0 s asynchronous steps): wait for a step scheduled now."""
        import threading

        done = threading.Event()
        clock = self.served.service.clock
        clock.call_at(clock.now(), done.set)
        assert done.wait(600)


def _method(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")


def _transcript(api, steps) -> list:
    """Run ``steps`` (``(operation, request)``; a request may be a function of the answers so far) and return what
    each answered, timestamps replaced by their type, refusals as ``(code, message)``."""
    answers = []
    for operation, request in steps:
        if operation == "settle":
            api.settle()
            continue
        request = request(answers) if callable(request) else request
        try:
            answers.append(_plain(api.call(operation, **request)))
        except Refused as exc:
            answers.append(("refused", exc.code, exc.message))
    return answers


def _plain(value):
    if isinstance(value, datetime.datetime):
        return "<timestamp>"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _bus(answers, index=0) -> str:
    return answers[index]["EventBusArn"]


# A bus's asynchronous steps take 0 s on both (Choices()), but run on each one's clock: every create and delete is
# followed by a settle, so neither answer depends on when the served bus's clock got to it.
LIFECYCLE = [
    ("CreateEventBus", {"Name": "orders", "Description": "saga", "Tags": {"Project": "yafdp"}}),
    ("settle", None),
    ("DescribeEventBus", lambda a: {"EventBusArn": _bus(a)}),
    ("CreateEventBus", {"Name": "orders"}),
    ("ListEventBuses", {"NamePrefix": "ord"}),
    ("ListEventBuses", {"MaxResults": 101}),
    ("UpdateEventBus", lambda a: {"EventBusArn": _bus(a), "StorageConfiguration": {"RetentionPeriodInDays": 30}}),
    ("UpdateEventBus", lambda a: {"EventBusArn": _bus(a), "StorageConfiguration": {"RetentionPeriodInDays": 366}}),
    ("TagResource", lambda a: {"ResourceArn": _bus(a), "Tags": {"team": "platform"}}),
    ("UntagResource", lambda a: {"ResourceArn": _bus(a), "TagKeys": ["Project"]}),
    ("ListTagsForResource", lambda a: {"ResourceArn": _bus(a)}),
    ("TagResource", lambda a: {"ResourceArn": _bus(a), "Tags": {"aws:mine": "no"}}),
    ("DescribeEventBus", lambda a: {"EventBusArn": _bus(a)[:-5] + "zzzzz"}),
    ("DescribeEventBus", {"EventBusArn": "not-an-arn"}),
    ("CreateEventBus", {"Name": "-bad-name"}),
    ("CreateEventBus", {"Name": "tokened", "ClientToken": "t-1"}),
    ("CreateEventBus", {"Name": "tokened", "ClientToken": "t-1"}),
    ("CreateEventBus", {"Name": "tokened", "ClientToken": "t-1", "Description": "other"}),
    ("settle", None),
    ("DeleteEventBus", lambda a: {"EventBusArn": _bus(a)}),
    ("settle", None),
    ("DescribeEventBus", lambda a: {"EventBusArn": _bus(a)}),
    ("DeleteEventBus", lambda a: {"EventBusArn": _bus(a)}),
]

SUBSCRIBERS = [
    ("CreateEventBus", {"Name": "saga", "StorageConfiguration": {"RetentionPeriodInDays": 7}}),
    ("settle", None),
    ("CreateSubscriber", lambda a: {"Name": "orders", "EventBusArn": _bus(a), "Type": "FIFO",
                                    "InvokeConfiguration": {"TargetArn": QUEUE, "RoleArn": ROLE, "SqsParameters": {
                                        "MessageGroupId": "{% $events.SystemMetadata.EventGroupId %}"}},
                                    "FilterConfiguration": {"Filters": [{"Scope": "DATA", "Pattern": '{"source": ["a"]}'}]},
                                    "Tags": {"team": "orders"}}),
    ("DescribeSubscriber", lambda a: {"SubscriberArn": a[1]["SubscriberArn"]}),
    ("ListSubscribers", lambda a: {"EventBusArn": _bus(a)}),
    ("UpdateSubscriber", lambda a: {"SubscriberArn": a[1]["SubscriberArn"], "State": "STOPPED",
                                    "RetryPolicy": {"MaxRetryAttempts": 2}}),
    ("UpdateSubscriber", lambda a: {"SubscriberArn": a[1]["SubscriberArn"], "State": "RUNNING",
                                    "ResumePosition": "LATEST"}),
    ("DeleteEventBus", lambda a: {"EventBusArn": _bus(a)}),
    ("CreateSubscriber", lambda a: {"Name": "orders", "EventBusArn": _bus(a),
                                    "InvokeConfiguration": {"TargetArn": QUEUE, "RoleArn": ROLE}}),
    ("CreateSubscriber", lambda a: {"Name": "other-account", "EventBusArn": _bus(a), "InvokeConfiguration": {
        "TargetArn": QUEUE.replace(ACCOUNT, "111122223333"), "RoleArn": ROLE}}),
    ("CreateSubscriber", lambda a: {"Name": "two-data", "EventBusArn": _bus(a), "InvokeConfiguration": {
        "TargetArn": QUEUE, "RoleArn": ROLE}, "FilterConfiguration": {"Filters": [
            {"Scope": "DATA", "Pattern": "{}"}, {"Scope": "DATA", "Pattern": "{}"}]}}),
    ("CreateSubscriber", lambda a: {"Name": "wildcard", "EventBusArn": _bus(a), "InvokeConfiguration": {
        "TargetArn": QUEUE, "RoleArn": ROLE}, "FilterConfiguration": {"Filters": [
            {"Scope": "DATA", "Pattern": '{"source": [{"wildcard": "a*"}]}'}]}}),
    ("CreateSubscriber", lambda a: {"Name": "bad-jsonata", "EventBusArn": _bus(a), "InvokeConfiguration": {
        "TargetArn": QUEUE, "RoleArn": ROLE, "SqsParameters": {"MessageGroupId": "{% $events.( %}"}}}),
    ("CreateSubscriber", lambda a: {"Name": "lambda-block", "EventBusArn": _bus(a), "InvokeConfiguration": {
        "TargetArn": QUEUE, "RoleArn": ROLE, "LambdaParameters": {"InvocationType": "EVENT"}}}),
    ("UpdateSubscriber", lambda a: {"SubscriberArn": a[1]["SubscriberArn"], "RetryPolicy": {"MaxEventAgeInSeconds": 59}}),
    ("DeleteSubscriber", lambda a: {"SubscriberArn": a[1]["SubscriberArn"]}),
    ("DeleteSubscriber", lambda a: {"SubscriberArn": a[1]["SubscriberArn"]}),
    ("DescribeSubscriber", lambda a: {"SubscriberArn": a[1]["SubscriberArn"]}),
]

PUBLISHING = [
    ("CreateEventBus", {"Name": "saga"}),
    ("settle", None),
    ("PutEvents", lambda a: {"EventBusArn": _bus(a), "Entries": [
        {"Source": "yafdp.order", "DetailType": "Order_Initiated", "Detail": '{"order_id": "o-1"}',
         "SystemMetadata": {"EventGroupId": "o-1", "DeduplicationId": "k-1"}},
        {"Source": "aws.s3", "DetailType": "x", "Detail": "{}"},
        {"Source": "yafdp.order", "DetailType": "x", "Detail": "{not json"},
        {"Source": "yafdp.order", "DetailType": "Order_Initiated", "Detail": '{"order_id": "o-1"}',
         "SystemMetadata": {"EventGroupId": "o-1", "DeduplicationId": "k-1"}}]}),
    ("PutEvents", lambda a: {"EventBusArn": _bus(a), "DeduplicationConfiguration": {"DeduplicationType": "CONTENT_BASED"},
                             "Entries": [{"Source": "s", "DetailType": "d", "Detail": '{"a": 1}'}] * 2}),
    ("PutEvents", lambda a: {"EventBusArn": _bus(a), "Entries": [{"Source": "s", "DetailType": "d"}] * 101}),
    ("PutEvents", lambda a: {"EventBusArn": _bus(a), "Entries": [{"Source": "s", "DetailType": "d",
                                                                   "Detail": '"' + "x" * 600_000 + '"'}] * 2}),
]


@pytest.fixture
def served(moto_url):
    """A bus served afresh for each scenario (an account without buses, the same seed as the in-process one)."""
    with serve_custom_event_bus(endpoint_url=moto_url, choices=Choices(), seed=SEED) as bus:
        yield bus


@pytest.mark.parametrize("steps", [LIFECYCLE, SUBSCRIBERS, PUBLISHING], ids=["buses", "subscribers", "publishing"])
def test_the_engine_answers_the_same_in_process_and_served(served, steps):
    local, remote = _transcript(InProcess(), steps), _transcript(Served(served), steps)
    assert any(isinstance(a, tuple) for a in local) and any(isinstance(a, dict) for a in local)
    calls = [operation for operation, _ in steps if operation != "settle"]
    for step, (here, there) in enumerate(zip(local, remote, strict=True)):
        if isinstance(there, tuple) and there[2].startswith(MODEL_VALIDATION):
            # The endpoint checks a request against the model before the engine sees it (yafdp.custom_event_bus.wire);
            # the engine refuses the same request with the same exception, in its own words.
            assert isinstance(here, tuple) and here[1] == there[1], f"answer {step} ({calls[step]}) differs"
            continue
        assert here == there, f"answer {step} ({calls[step]}) differs"


# How botocore's ParamValidator words a refusal (what the endpoint answers for a request that breaks the model).
MODEL_VALIDATION = ("Missing required parameter", "Unknown parameter", "Invalid type for parameter",
                    "Invalid value for parameter", "Invalid length for parameter")
