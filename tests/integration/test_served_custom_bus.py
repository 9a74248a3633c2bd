"""The Custom Event Bus served on AWS's wire protocol (``yafdp serve``), used as AWS is used: boto3's own
``eventbridgev2`` client (its serializer, parser, waiters and exceptions), a raw signed request as the AWS CLI
sends it, and the subscribers delivering into moto's SQS queues by ARN. Bad input gets AWS's error shape and
status and the server keeps serving; it listens on loopback only unless told twice, and stops cleanly on SIGINT
and SIGTERM (the tests wait for the line it prints when ready, never for a time)."""

import datetime
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.config
import cbor2
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from yafdp.runs.bootstrap import serve_custom_event_bus

YAFDP = Path(sys.executable).with_name("yafdp")
KEYS = {"region_name": "eu-west-1", "aws_access_key_id": "any", "aws_secret_access_key": "thing"}
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
                                                 "Action": "sts:AssumeRole"}]}
FIFO_PARAMETERS = {"MessageGroupId": "{% $events.SystemMetadata.EventGroupId %}",
                   "MessageDeduplicationId": '{% $events.SystemMetadata."aws:EventId" %}'}
SAGA = ["Order_Initiated", "Payment_Success", "Restaurant_Confirmed_Order", "Delivery_Scheduled"]


@pytest.fixture(scope="module")
def served(moto_url):
    with serve_custom_event_bus(endpoint_url=moto_url, seed=11) as bus:
        yield bus


def _client(url, **config):
    return boto3.client("eventbridgev2", endpoint_url=url, config=botocore.config.Config(**config), **KEYS)


@pytest.fixture(scope="module")
def eb(served):
    return _client(served.url, retries={"total_max_attempts": 1})


@pytest.fixture(scope="module")
def aws(served):
    """sqs and iam clients of the account the served bus delivers to."""
    return {name: boto3.client(name, endpoint_url=served.targets_url, **KEYS) for name in ("sqs", "iam")}


def _name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def _active_bus(eb, **request) -> str:
    arn = eb.create_event_bus(Name=_name("orders"), **request)["EventBusArn"]
    eb.get_waiter("event_bus_active").wait(EventBusArn=arn, WaiterConfig={"Delay": 1})
    return arn


def _queue(aws, name: str) -> tuple[str, str]:
    attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
    url = aws["sqs"].create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return url, aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _role(aws, *allowed: str, trust=TRUST) -> str:
    name = _name("delivery")
    arn = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if allowed:
        aws["iam"].put_role_policy(RoleName=name, PolicyName="send", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage",
                                                    "Resource": list(allowed)}]}))
    return arn


def _receive(sqs, url: str, count: int, seconds: int = 30) -> list[dict]:
    """``count`` messages of the queue, deleted as read, in the order SQS hands them out; fewer when no more came
    within ``seconds`` (long polls of a second: the bus delivers in the background)."""
    got = []
    for _ in range(seconds):
        if len(got) >= count:
            break
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", []):
            got.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return got


def _code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


# ---------------------------------------------------------------- through `yafdp serve`, the command

class Served:
    """``yafdp serve`` in a child process, with SIGINT's default action as a terminal gives it; ready once it has
    printed the line with its URL (and the one with its moto server's)."""

    def __init__(self, *args):
        self.process = subprocess.Popen([YAFDP, "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        first, second = self.process.stdout.readline(), self.process.stdout.readline()
        assert "is served at http://127.0.0.1:" in first, first + self.process.stderr.read()
        self.url = first.rsplit(" ", 1)[1].strip()
        self.moto = second.split(" at ", 1)[1].split(",", 1)[0]

    def stop(self, how=signal.SIGTERM) -> tuple[int, str]:
        self.process.send_signal(how)
        _, stderr = self.process.communicate(timeout=600)
        return self.process.returncode, stderr


@pytest.fixture
def command():
    started = []

    def start(*args) -> Served:
        started.append(Served(*args))
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            served.stop()


def test_a_fifo_subscriber_of_yafdp_serve_hands_one_orders_shuffled_events_to_a_moto_fifo_queue_in_publish_order(command):
    """The issue's "done when": boto3's eventbridgev2 client against `yafdp serve`, a FIFO subscriber whose target
    is a moto SQS FIFO queue, a shuffled batch of one order's events plus a duplicate: the queue hands them out in
    publish order, and the duplicate (DEDUPLICATED at publish) never reaches it."""
    served = command()
    eb, sqs, iam = (_client(served.url), boto3.client("sqs", endpoint_url=served.moto, **KEYS),
                    boto3.client("iam", endpoint_url=served.moto, **KEYS))
    url, queue = _queue({"sqs": sqs}, "order-status.fifo")
    role = _role({"iam": iam}, queue)
    bus = eb.create_event_bus(Name="orders")
    assert bus["State"] == "CREATING"
    eb.get_waiter("event_bus_active").wait(EventBusArn=bus["EventBusArn"])
    subscriber = eb.create_subscriber(Name="order-status", EventBusArn=bus["EventBusArn"], Type="FIFO",
                                      InvokeConfiguration={"TargetArn": queue, "RoleArn": role,
                                                           "SqsParameters": FIFO_PARAMETERS})
    assert (subscriber["Type"], subscriber["State"], subscriber["StartingPosition"]) == ("FIFO", "RUNNING", "LATEST")
    published = random.Random(4).sample(SAGA, len(SAGA))
    entries = [{"Source": "yafdp.order", "DetailType": step, "Detail": json.dumps({"order_id": "ord-1", "step": step}),
                "SystemMetadata": {"EventGroupId": "ord-1", "DeduplicationId": f"ord-1#{step}"}} for step in published]
    entries.insert(2, dict(entries[1]))  # a producer's retry of the second event
    answer = eb.put_events(EventBusArn=bus["EventBusArn"], Entries=entries)
    codes = [e["SuccessCode"] for e in answer["Entries"]]
    assert answer["FailedEntryCount"] == 0 and codes == ["PUBLISHED", "PUBLISHED", "DEDUPLICATED", "PUBLISHED", "PUBLISHED"]
    assert answer["Entries"][2]["EventId"] == answer["Entries"][1]["EventId"]
    messages = _receive(sqs, url, len(SAGA))
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == published
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"ord-1"}
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == \
        [e["EventId"] for e in answer["Entries"] if e["SuccessCode"] == "PUBLISHED"]
    assert _receive(sqs, url, 1, seconds=2) == []  # and nothing else: the duplicate was never delivered
    code, stderr = served.stop(signal.SIGINT)
    assert code == 130 and re.fullmatch(r"yafdp: serve stopped \(SIGINT\) after \d+ requests\n", stderr), stderr


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_yafdp_serve_stops_cleanly_on_a_signal_in_one_line(command, how):
    served = command()
    assert _client(served.url).list_event_buses()["EventBuses"] == []
    code, stderr = served.stop(how)
    assert code == 130 and stderr == f"yafdp: serve stopped ({how.name}) after 1 request\n"
    with pytest.raises(OSError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1])), timeout=5).close()


@pytest.mark.parametrize("args, says", [
    (["--host", "0.0.0.0"], "argument --host: 0.0.0.0 is not a loopback address"),
    (["--host", "192.0.2.7"], "argument --host: 192.0.2.7 is not a loopback address"),
    (["--i-know"], "argument --i-know: does nothing with --host 127.0.0.1"),
    (["--port", "70000"], "argument --port: must be a whole number from 0 to 65,535"),
    (["--endpoint-url", "ftp://x"], "argument --endpoint-url: must be an http:// or https:// URL"),
    (["--endpoint-url", "http://127.0.0.1:9"], "argument --endpoint-url: the moto server at http://127.0.0.1:9 does "
                                               "not answer as one"),
], ids=["any-address", "a-lan-address", "i-know-alone", "port", "endpoint", "no-moto-there"])
def test_yafdp_serve_refuses_what_it_should_not_do_in_one_line(args, says):
    done = subprocess.run([YAFDP, "serve", *args], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and says in done.stderr, done.stderr


def test_yafdp_serve_on_a_port_in_use_says_so_in_one_line(command):
    first = command()
    port = first.url.rsplit(":", 1)[1]
    done = subprocess.run([YAFDP, "serve", "--port", port, "--endpoint-url", first.moto], capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"yafdp: cannot listen on 127.0.0.1:{port}: ") and len(done.stderr.splitlines()) == 1


# ---------------------------------------------------------------- the API, through boto3

def test_a_bus_is_creating_then_active_for_botocores_waiter_then_deleting_then_gone(eb):
    name = _name("orders")
    created = eb.create_event_bus(Name=name, Description="the saga", StorageConfiguration={"RetentionPeriodInDays": 7},
                                  Tags={"Project": "yafdp"})
    arn = created["EventBusArn"]
    assert created["State"] == "CREATING" and arn.startswith("arn:aws:events:eu-west-1:123456789012:event-busv2/")
    assert isinstance(created["CreationTime"], datetime.datetime)  # a CBOR tag 1 timestamp, as botocore reads it
    with pytest.raises(eb.exceptions.InvalidStateException):
        eb.put_events(EventBusArn=arn, Entries=[{"Source": "yafdp.order", "DetailType": "x", "Detail": "{}"}])
    eb.get_waiter("event_bus_active").wait(EventBusArn=arn, WaiterConfig={"Delay": 1})
    described = eb.describe_event_bus(EventBusArn=arn)
    assert (described["State"], described["Description"], described["StorageConfiguration"]["RetentionPeriodInDays"]) == \
        ("ACTIVE", "the saga", 7)
    assert described["StorageConfiguration"]["RetentionWindowStartTime"] == created["CreationTime"]
    assert eb.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"Project": "yafdp"}
    assert [b["Name"] for b in eb.list_event_buses(NamePrefix=name)["EventBuses"]] == [name]
    eb.delete_event_bus(EventBusArn=arn)
    assert eb.describe_event_bus(EventBusArn=arn)["State"] == "DELETING"
    eb.get_waiter("event_bus_deleted").wait(EventBusArn=arn, WaiterConfig={"Delay": 1})
    with pytest.raises(eb.exceptions.ResourceNotFoundException):
        eb.describe_event_bus(EventBusArn=arn)


def test_client_token_makes_create_idempotent(eb):
    name, token = _name("orders"), str(uuid.uuid4())
    first = eb.create_event_bus(Name=name, ClientToken=token)
    again = eb.create_event_bus(Name=name, ClientToken=token)
    assert again["EventBusArn"] == first["EventBusArn"]
    with pytest.raises(eb.exceptions.IdempotentParameterMismatchException):
        eb.create_event_bus(Name=name, ClientToken=token, Description="another request")
    with pytest.raises(eb.exceptions.ResourceAlreadyExistsException):  # botocore fills a fresh token itself
        eb.create_event_bus(Name=name)


def test_subscribers_are_created_described_listed_updated_tagged_and_deleted(eb, aws):
    bus = _active_bus(eb)
    _, queue = _queue(aws, _name("loyalty"))
    role = _role(aws, queue)
    arn = eb.create_subscriber(Name="loyalty", EventBusArn=bus, InvokeConfiguration={"TargetArn": queue, "RoleArn": role},
                               FilterConfiguration={"Filters": [{"Scope": "DATA", "Pattern": '{"source":["yafdp.order"]}'}]},
                               Tags={"team": "loyalty"})["SubscriberArn"]
    described = eb.describe_subscriber(SubscriberArn=arn)
    assert described["Type"] == "UNORDERED" and described["RetryPolicy"] == {
        "MaxRetryAttempts": 5, "MaxEventAgeInSeconds": 300, "RetryStrategy": "ALL"}  # AWS's defaults
    with pytest.raises(eb.exceptions.ResourceInUseException):
        eb.delete_event_bus(EventBusArn=bus)
    updated = eb.update_subscriber(SubscriberArn=arn, State="STOPPED", RetryPolicy={"MaxRetryAttempts": 2})
    assert updated["State"] == "STOPPED"
    assert eb.describe_subscriber(SubscriberArn=arn)["RetryPolicy"]["MaxEventAgeInSeconds"] == 300
    assert eb.update_subscriber(SubscriberArn=arn, State="RUNNING", ResumePosition="LATEST")["State"] == "RUNNING"
    [listed] = eb.list_subscribers(EventBusArn=bus)["Subscribers"]
    assert (listed["SubscriberArn"], listed["TargetArn"], listed["State"]) == (arn, queue, "RUNNING")
    eb.tag_resource(ResourceArn=arn, Tags={"cost": "1"})
    eb.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert eb.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"cost": "1"}
    with pytest.raises(eb.exceptions.InvalidInputException, match="RetryPolicy.MaxRetryAttempts"):
        eb.update_subscriber(SubscriberArn=arn, RetryPolicy={"MaxRetryAttempts": 186})  # botocore checks no maximum
    eb.delete_subscriber(SubscriberArn=arn)
    eb.delete_subscriber(SubscriberArn=arn)  # idempotent
    with pytest.raises(eb.exceptions.ResourceNotFoundException):
        eb.describe_subscriber(SubscriberArn=arn)
    eb.delete_event_bus(EventBusArn=bus)


def test_list_event_buses_pages_with_botocores_paginator(eb):
    stem = _name("paged")
    for i in range(3):
        eb.create_event_bus(Name=f"{stem}-{i}")
    pages = list(eb.get_paginator("list_event_buses").paginate(NamePrefix=stem, PaginationConfig={"PageSize": 2}))
    assert [[b["Name"] for b in p["EventBuses"]] for p in pages] == [[f"{stem}-0", f"{stem}-1"], [f"{stem}-2"]]
    for i in range(3):
        arn = eb.list_event_buses(NamePrefix=f"{stem}-{i}")["EventBuses"][0]["EventBusArn"]
        eb.get_waiter("event_bus_active").wait(EventBusArn=arn, WaiterConfig={"Delay": 1})
        eb.delete_event_bus(EventBusArn=arn)


@pytest.mark.parametrize("operation, request_, member", [
    ("CreateSubscriber", {"Name": "x", "EventBusArn": "arn:aws:events:eu-west-1:123456789012:event-busv2/x/" + "a" * 25},
     'Missing required parameter in input: "InvokeConfiguration"'),
    ("ListEventBuses", {"MaxResults": 1000}, "MaxResults, value: 1000, valid max value: 100"),
    ("ListEventBuses", {"MaxResults": 0}, "MaxResults, value: 0, valid min value: 1"),
    ("ListEventBuses", {"NamePrefix": 7}, "Invalid type for parameter NamePrefix"),
    ("ListEventBuses", {"MaxResults": True}, "Invalid type for parameter MaxResults"),
    ("ListEventBuses", {"Bogus": "1"}, 'Unknown parameter in input: "Bogus"'),
    ("PutEvents", {"EventBusArn": "arn:aws:events:eu-west-1:123456789012:event-busv2/x/" + "a" * 25,
                   "Entries": [{"Source": "s", "DetailType": "d"}] * 101}, "Entries, value: 101, valid max length: 100"),
], ids=["missing-member", "over-the-maximum", "under-the-minimum", "wrong-type", "boolean-for-integer",
        "unknown-member", "too-many-entries"])
def test_what_breaks_the_model_is_invalid_input_naming_the_member(served, eb, operation, request_, member):
    status, error = _post(f"{served.url}/service/AWSEventsV2/operation/{operation}", cbor2.dumps(request_))
    assert (status, error["__type"]) == (400, "InvalidInputException") and member in error["message"], error


def test_botocore_hears_invalid_input_as_the_modelled_exception(served):
    unchecked = _client(served.url, parameter_validation=False, retries={"total_max_attempts": 1})  # as a careless client
    with pytest.raises(unchecked.exceptions.InvalidInputException, match="InvokeConfiguration") as refused:
        unchecked.create_subscriber(Name="x", EventBusArn="arn:aws:events:eu-west-1:123456789012:event-busv2/x/" + "a" * 25)
    assert _code(refused) == ("InvalidInputException", 400)


def test_an_operation_it_does_not_serve_is_an_unknown_operation_as_aws_answers_it(eb):
    with pytest.raises(ClientError) as refused:
        eb.list_event_sources()
    assert _code(refused) == ("UnknownOperationException", 404) and "ListEventSources" in str(refused.value)


def test_the_delivery_role_is_honoured_as_far_as_iam_is_emulated(served, eb, aws):
    """A role that is not granted the target's action: the delivery fails with ACCESS_DENIED and, once retries
    are over (none here), the on-failure queue gets a record pointing to the event. A role that does not trust
    EventBridge cannot be assumed at all, not even to write that record: the event is lost
    (OnFailureDestinationFailed). A role allowed to send delivers."""
    bus = _active_bus(eb)
    url, queue = _queue(aws, _name("payment"))
    dlq_url, dlq = _queue(aws, _name("payment-dlq"))
    cases = {"not-allowed": _role(aws, dlq),
             "not-trusted": _role(aws, queue, dlq, trust={"Version": "2012-10-17", "Statement": [{
                 "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
             "allowed": _role(aws, queue, dlq)}
    subscribers = {}
    for label, role in cases.items():
        subscribers[label] = eb.create_subscriber(
            Name=label, EventBusArn=bus, RetryPolicy={"MaxRetryAttempts": 0}, OnFailureConfiguration={"Arn": dlq},
            InvokeConfiguration={"TargetArn": queue, "RoleArn": role, "SqsParameters": {"MessageAttributes": {
                "delivery": {"DataType": "String", "StringValue": '{% $events.SystemMetadata."aws:DeliveryType" %}'}}}},
        )["SubscriberArn"]
    [published] = eb.put_events(EventBusArn=bus, Entries=[{"Source": "yafdp.payment", "DetailType": "Payment_Success",
                                                           "Detail": '{"order_id": "ord-9"}'}])["Entries"]
    [delivered] = _receive(aws["sqs"], url, 1)
    assert json.loads(delivered["Body"])["id"] == published["EventId"]
    assert delivered["MessageAttributes"]["delivery"]["StringValue"] == "LIVE"  # the expression, resolved per event
    [record] = [json.loads(m["Body"]) for m in _receive(aws["sqs"], dlq_url, 1)]
    assert (record["subscriberArn"], record["errorCode"]) == (subscribers["not-allowed"], "ACCESS_DENIED")
    assert "is not allowed sqs:SendMessage" in record["errorMessage"]
    assert record["failedMessages"][0]["eventId"] == published["EventId"]
    untrusted = served.service.subscriber(subscribers["not-trusted"])
    for _ in range(300):  # until it has given up (its one attempt), a tenth of a second at a time
        if untrusted.metrics["OnFailureDestinationFailed"]:
            break
        threading.Event().wait(0.1)
    assert untrusted.metrics["OnFailureDestinationFailed"] == 1 and untrusted.metrics["EventsDelivered"] == 0
    assert _receive(aws["sqs"], dlq_url, 1, seconds=1) == []


def test_a_raw_signed_request_as_the_aws_cli_sends_it_is_answered_in_cbor(served, eb):
    """Any client: the bytes the AWS CLI puts on the wire (a CBOR body made by cbor2, not botocore; the smithy
    headers; a SigV4 signature the server does not check), sent with the standard library, answered in CBOR."""
    arn = _active_bus(eb)
    body = cbor2.dumps({"EventBusArn": arn, "Entries": [{"Source": "cli.example", "DetailType": "Hello",
                                                         "Detail": '{"from": "the AWS CLI"}'}]})
    request = AWSRequest("POST", f"{served.url}/service/AWSEventsV2/operation/PutEvents", data=body, headers={
        "smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor",
        "User-Agent": "aws-cli/2.34.0 md/awscrt#0.27.2 ua/2.1 os/linux command/eventsv2.put-events"})
    SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG"), "events", "eu-west-1").add_auth(request)
    prepared = request.prepare()
    with urllib.request.urlopen(urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers),
                                                       method="POST"), timeout=30) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"] == "application/cbor"
        decoded = cbor2.loads(answer.read())
    assert decoded["FailedEntryCount"] == 0 and decoded["Entries"][0]["SuccessCode"] == "PUBLISHED"


def _post(url: str, body: bytes, headers=None, method="POST") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method=method, headers={
        "smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, cbor2.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, cbor2.loads(error.read())


@pytest.mark.parametrize("body, headers, status, code", [
    (b"\xa1\x61", {}, 400, "SerializationException"),  # a map cut short
    (b"\x83\x01\x02\x03", {}, 400, "SerializationException"),  # an array, not a map
    (cbor2.dumps({}) + b"\x00", {}, 400, "SerializationException"),  # a second data item
    (b"\x9f" * 1000, {}, 400, "SerializationException"),  # nested deeper than the decoder goes
    (cbor2.dumps({"NamePrefix": "x"}), {"smithy-protocol": "rpc-v2-json"}, 404, "UnknownOperationException"),
    (b"\x00" * (3 * 1_048_576), {}, 400, "InvalidInputException"),  # over the body limit
], ids=["truncated", "not-a-map", "trailing-bytes", "too-deep", "wrong-protocol", "too-large"])
def test_a_body_it_cannot_take_gets_awss_error_shape_and_the_server_keeps_serving(served, eb, body, headers, status, code):
    answered, error = _post(f"{served.url}/service/AWSEventsV2/operation/ListEventBuses", body, headers)
    assert (answered, error["__type"]) == (status, code) and error["message"]
    assert "EventBuses" in eb.list_event_buses(MaxResults=1)


def test_a_path_or_a_method_it_does_not_serve_is_refused_in_cbor(served, eb):
    assert _post(f"{served.url}/service/Other/operation/ListEventBuses", b"")[1]["__type"] == "UnknownOperationException"
    assert _post(f"{served.url}/", b"")[0] == 404
    status, error = _post(f"{served.url}/service/AWSEventsV2/operation/ListEventBuses", None, method="GET")
    assert status == 405 and "POST" in error["message"]
    assert "EventBuses" in eb.list_event_buses(MaxResults=1)


def test_a_flood_of_publishes_is_answered_published_or_throttled_and_every_published_event_is_delivered(served, aws):
    """Bounded (8 threads, 5 requests of 10 entries each, over loopback): every answer is AWS's (200, or 429
    ThrottlingException when a group or the endpoint is over its rate), the server keeps serving, and every
    event answered PUBLISHED is handed to the subscriber's queue exactly once (the queue holds as many
    messages as were published)."""
    eb = _client(served.url, retries={"total_max_attempts": 1}, max_pool_connections=8)
    bus = _active_bus(eb)
    url, queue = _queue(aws, _name("flood"))
    arn = eb.create_subscriber(Name="all", EventBusArn=bus, InvokeConfiguration={"TargetArn": queue,
                                                                                 "RoleArn": _role(aws, queue)})["SubscriberArn"]
    published, throttled, other = [], [], []

    def flood(worker: int) -> None:
        for request in range(5):
            entries = [{"Source": "flood.test", "DetailType": "Tick", "Detail": json.dumps({"w": worker, "r": request, "i": i}),
                        "SystemMetadata": {"EventGroupId": f"group-{worker % 2}"}} for i in range(10)]
            try:
                answer = eb.put_events(EventBusArn=bus, Entries=entries)
                published.extend(e["EventId"] for e in answer["Entries"] if e.get("SuccessCode") == "PUBLISHED")
            except ClientError as exc:
                status = (exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"])
                (throttled if status == ("ThrottlingException", 429) else other).append(exc)

    threads = [threading.Thread(target=flood, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert other == [] and len(published) + 10 * len(throttled) == 8 * 5 * 10 and len(set(published)) == len(published)
    subscriber = served.service.subscriber(arn)
    for _ in range(3000):  # until the subscriber has handed everything over, a tenth of a second at a time
        if subscriber.metrics["EventsDelivered"] >= len(published) or subscriber.metrics["EventsDropped"]:
            break
        threading.Event().wait(0.1)
    assert subscriber.metrics["EventsDelivered"] == len(published) and subscriber.metrics["EventsDropped"] == 0
    depth = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(depth["Attributes"]["ApproximateNumberOfMessages"]) == len(published)  # moto counts exactly
    assert served.endpoint.requests.get(500, 0) == 0 and "EventBuses" in eb.list_event_buses(MaxResults=1)
