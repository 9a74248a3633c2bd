"""The Custom Event Bus's wire protocol and HTTP endpoint, without moto: what botocore's own serializer sends is
read back as the engine's members, what the engine answers is what botocore's own parser reads, errors come back
as the modelled exceptions, and the endpoint's limits (requests at once, body size) answer in AWS's shape."""

import datetime
import threading
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.session
import cbor2
import pytest
from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer

from yafdp.custom_event_bus import CustomEventBusService, ManualClock
from yafdp.custom_event_bus import wire
from yafdp.custom_event_bus.endpoint import CustomEventBusEndpoint
from yafdp.custom_event_bus.errors import ApiError

MODEL = botocore.session.get_session().get_service_model("eventbridgev2")
KEYS = {"region_name": "eu-west-1", "aws_access_key_id": "any", "aws_secret_access_key": "thing"}


def _sent(operation: str, params: dict) -> bytes:
    """The body botocore's own serializer puts on the wire for ``params``."""
    return RpcV2CBORSerializer().serialize_to_request(params, MODEL.operation_model(operation))["body"]


def _parsed(operation: str, body: bytes, status: int = 200) -> dict:
    """What botocore's own parser makes of an answer."""
    return RpcV2CBORParser().parse({"status_code": status, "headers": {}, "body": body},
                                   MODEL.operation_model(operation).output_shape)


def test_what_botocore_serializes_is_read_back_member_for_member_timestamps_as_datetimes():
    start = datetime.datetime(2026, 12, 1, 12, 0, 30, 500000, tzinfo=datetime.timezone.utc)
    params = {"Name": "late", "EventBusArn": "arn:aws:events:eu-west-1:123456789012:event-busv2/b/" + "a" * 25,
              "StartingPosition": "POINT_IN_TIME",
              "PointInTimeConfiguration": {"PointType": "TIMESTAMP", "StartingPoint": start},
              "InvokeConfiguration": {"TargetArn": "arn:aws:sqs:eu-west-1:123456789012:q",
                                      "RoleArn": "arn:aws:iam::123456789012:role/r"}, "ClientToken": "t-1"}
    assert wire.read_request("CreateSubscriber", _sent("CreateSubscriber", params)) == params


def test_what_the_engine_answers_is_what_botocore_parses():
    service = CustomEventBusService(ManualClock(1_767_225_600.25))
    answer = service.create_event_bus(Name="orders", Tags={"k": "v"})
    parsed = _parsed("CreateEventBus", wire.encode(answer))
    parsed.pop("ResponseMetadata")
    assert parsed == answer and parsed["CreationTime"].timestamp() == 1_767_225_600.25


@pytest.mark.parametrize("code", ["ResourceNotFoundException", "InvalidStateException", "ThrottlingException",
                                  "IdempotentParameterMismatchException", "ConcurrentModificationException"])
def test_an_error_body_is_the_modelled_exception_to_botocore(code):
    error = RpcV2CBORParser().parse({"status_code": ApiError(code, "why").status, "headers": {},
                                     "body": wire.error_body(code, "why")}, None)
    assert error["Error"] == {"Code": code, "Message": "why"}


@pytest.mark.parametrize("body, says", [
    (b"\xff", "not valid CBOR"),
    (b"\x01", "must be a CBOR map"),
    (cbor2.dumps({}) * 2, "more than one CBOR data item"),
], ids=["break-alone", "integer", "two-items"])
def test_a_body_that_is_not_one_cbor_map_is_a_serialization_exception(body, says):
    with pytest.raises(wire.WireError, match=says) as refused:
        wire.read_request("ListEventBuses", body)
    assert (refused.value.code, refused.value.status) == ("SerializationException", 400)


def test_nulls_are_absent_members_and_an_empty_body_is_an_empty_input():
    assert wire.read_request("ListEventBuses", cbor2.dumps({"NamePrefix": None, "MaxResults": 3})) == {"MaxResults": 3}
    assert wire.read_request("ListEventBuses", b"") == {}


def test_a_refused_value_is_quoted_short():
    with pytest.raises(ApiError) as refused:
        wire.read_request("ListEventBuses", cbor2.dumps({"MaxResults": "9" * 100_000}))
    assert refused.value.code == "InvalidInputException" and len(refused.value.message) < 400
    assert "Invalid type for parameter MaxResults" in refused.value.message and "100,002 characters" in refused.value.message


class _Blocking:
    """A stand-in for the engine whose ListEventBuses waits until told to answer (and says it has started)."""

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def list_event_buses(self, **request):
        self.started.set()
        assert self.release.wait(600)
        return {"EventBuses": []}


def test_more_requests_at_once_than_the_endpoint_takes_are_throttled_and_the_first_still_answers():
    blocking = _Blocking()
    with CustomEventBusEndpoint(blocking, threading.Lock(), max_concurrent_requests=1) as endpoint:
        client = boto3.client("eventbridgev2", endpoint_url=endpoint.url,
                              config=botocore.config.Config(retries={"total_max_attempts": 1}), **KEYS)
        first: list = []
        holder = threading.Thread(target=lambda: first.append(client.list_event_buses()))
        holder.start()
        assert blocking.started.wait(600)  # the first request holds the endpoint's only slot now
        with pytest.raises(client.exceptions.ThrottlingException):
            client.list_event_buses()
        blocking.release.set()
        holder.join(60)
        assert first[0]["EventBuses"] == [] and endpoint.requests == {429: 1, 200: 1}


def test_a_body_over_the_limit_is_read_and_refused_and_the_connection_serves_on():
    service = CustomEventBusService(ManualClock(0.0))
    with CustomEventBusEndpoint(service, threading.Lock(), max_body_bytes=1_000) as endpoint:
        request = urllib.request.Request(f"{endpoint.url}/service/AWSEventsV2/operation/ListEventBuses",
                                         data=cbor2.dumps({"NamePrefix": "x" * 2_000}), method="POST",
                                         headers={"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        error = cbor2.loads(refused.value.read())
        assert refused.value.code == 400 and error["__type"] == "InvalidInputException" and "at most 1,000" in error["message"]
        client = boto3.client("eventbridgev2", endpoint_url=endpoint.url, **KEYS)
        assert client.list_event_buses()["EventBuses"] == []


def test_an_engine_failure_is_an_internal_exception_and_the_endpoint_goes_on():
    class Broken:
        def list_event_buses(self, **request):
            raise ZeroDivisionError("a bug")

        def describe_event_bus(self, **request):
            raise ApiError("ResourceNotFoundException", "no such bus")

    with CustomEventBusEndpoint(Broken(), threading.Lock()) as endpoint:
        client = boto3.client("eventbridgev2", endpoint_url=endpoint.url,
                              config=botocore.config.Config(retries={"total_max_attempts": 1}), **KEYS)
        with pytest.raises(client.exceptions.InternalException, match="ZeroDivisionError: a bug"):
            client.list_event_buses()
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.describe_event_bus(EventBusArn="arn:aws:events:eu-west-1:123456789012:event-busv2/b/" + "a" * 25)


def test_the_endpoint_says_how_many_events_its_subscribers_have_still_to_deliver_at_a_path_of_its_own():
    """Not an AWS API (``GET /_yafdp/undelivered``): what a run in another process asks before it calls the saga
    settled; the engine's own count."""
    import json

    service = CustomEventBusService(ManualClock(1_767_225_600.0))
    arn = service.create_event_bus(Name="b")["EventBusArn"]
    service.clock.advance()
    service.create_subscriber(Name="s", EventBusArn=arn, InvokeConfiguration={
        "TargetArn": "arn:aws:sqs:eu-west-1:000000000000:q", "RoleArn": "arn:aws:iam::000000000000:role/r"})
    service.put_events(EventBusArn=arn, Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}] * 3)
    with CustomEventBusEndpoint(service, threading.Lock()) as endpoint:
        with urllib.request.urlopen(f"{endpoint.url}/_yafdp/undelivered", timeout=30) as answer:
            assert json.loads(answer.read()) == {"undelivered": 3} == {"undelivered": service.undelivered()}
