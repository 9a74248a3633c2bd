"""The Custom Event Bus engine (yafdp.custom_event_bus) against the behaviours ../shared/custom-event-bus/SPEC.md
cites: publishing and deduplication, FIFO per event group with head-of-line blocking, retries and on-failure
records, retention and starting positions, pause and resume, the API's validation and lifecycle."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from yafdp.custom_event_bus import ApiError, Choices, CustomEventBusService, ManualClock

T0 = 1_767_225_600.0
ACCOUNT = "000000000000"
QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:saga.fifo"
DLQ = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:saga-dlq.fifo"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/delivery"
P = '{"source": ["yafdp.payment"]}'


class RecordingTarget:
    """A target that records what it receives and fails the events ``fail(event_id, attempt)`` names."""

    def __init__(self, fail=lambda event_id, attempt: None):
        self.received: list[tuple[str, int, str]] = []  # (event id, attempt, delivery type), in order
        self.payloads: list = []
        self.parameters: list[dict] = []
        self.fail = fail

    def deliver(self, delivery, done):
        failures = {}
        for index, item in enumerate(delivery.items):
            problem = self.fail(item.event.event_id, item.attempt)
            if problem:
                failures[index] = problem
            else:
                self.received.append((item.event.event_id, item.attempt, item.delivery_type))
                self.payloads.append(item.payload)
                self.parameters.append(item.parameters)
        done(failures)

    @property
    def ids(self) -> list[str]:
        return [event_id for event_id, _, _ in self.received]


class Harness:
    def __init__(self, choices: Choices = Choices(), **service):
        self.clock = ManualClock(T0)
        self.targets: dict[str, RecordingTarget] = {QUEUE: RecordingTarget()}
        self.dead_letters: list = []
        self.dlq_works = True
        self.service = CustomEventBusService(self.clock, targets=self.targets.get, dead_letter_queues=self._dlq,
                                             choices=choices, **service)
        self.bus = self.service.create_event_bus(Name="saga", StorageConfiguration={"RetentionPeriodInDays": 7})["EventBusArn"]
        self.clock.advance()

    def _dlq(self, arn, record):
        if not self.dlq_works:
            return False
        self.dead_letters.append((arn, record))
        return True

    def subscribe(self, name="orders", **config):
        config.setdefault("InvokeConfiguration", {"TargetArn": QUEUE, "RoleArn": ROLE})
        return self.service.create_subscriber(Name=name, EventBusArn=self.bus, **config)["SubscriberArn"]

    def publish(self, *entries, **request):
        return self.service.put_events(EventBusArn=self.bus, Entries=list(entries), **request)

    @property
    def target(self) -> RecordingTarget:
        return self.targets[QUEUE]


def entry(detail_type="Payment_Success", order="ord-1", dedup=None, source="yafdp.payment", **detail):
    system = {"EventGroupId": order}
    if dedup is not None:
        system["DeduplicationId"] = dedup
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps({"order_id": order, **detail}),
            "SystemMetadata": system}


def ids(response) -> list[str]:
    return [e["EventId"] for e in response["Entries"]]


# ---------------------------------------------------------------- publishing

def test_an_accepted_event_reaches_every_matching_subscriber_as_the_eventbridge_envelope():
    h = Harness()
    h.subscribe(FilterConfiguration={"Filters": [{"Scope": "DATA", "Pattern": '{"detail-type": ["Payment_Success"]}'}]})
    answer = h.publish(entry(), entry("Payment_Failed"))
    h.clock.advance()
    assert answer["FailedEntryCount"] == 0 and [e["SuccessCode"] for e in answer["Entries"]] == ["PUBLISHED"] * 2
    assert h.target.ids == [answer["Entries"][0]["EventId"]]
    envelope = h.target.payloads[0]
    assert set(envelope) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert envelope["id"] == answer["Entries"][0]["EventId"] and envelope["detail"] == {"order_id": "ord-1"}


def test_sequence_numbers_grow_with_ingestion_order():
    h = Harness()
    numbers = [e["SequenceNumber"] for e in h.publish(entry(), entry(), entry("X"))["Entries"]]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


def test_a_bad_entry_fails_alone_with_validation_error_and_the_others_are_published():
    h = Harness()
    answer = h.publish(entry(), entry(source="aws.orders"), {"Source": "s", "DetailType": "t", "Detail": "{not json"})
    assert answer["FailedEntryCount"] == 2
    assert "SuccessCode" in answer["Entries"][0]
    assert [e.get("ErrorCode") for e in answer["Entries"][1:]] == ["VALIDATION_ERROR", "VALIDATION_ERROR"]
    assert "aws." in answer["Entries"][1]["ErrorMessage"]


@pytest.mark.parametrize("entries, says", [([], "1 to 100"), ([entry()] * 101, "1 to 100"),
                                            ([{**entry(), "Detail": json.dumps({"x": "a" * 600_000})}] * 2, "1 MB")])
def test_a_request_wrong_as_a_whole_is_refused_and_publishes_nothing(entries, says):
    h = Harness()
    with pytest.raises(ApiError) as raised:
        h.publish(*entries)
    assert raised.value.code == "InvalidInputException" and says in str(raised.value)
    assert len(h.service.buses[h.bus].store) == 0


def test_publishing_to_a_bus_not_yet_active_is_an_invalid_state():
    clock = ManualClock(T0)
    service = CustomEventBusService(clock, choices=Choices(bus_creating_seconds=5))
    arn = service.create_event_bus(Name="new")["EventBusArn"]
    with pytest.raises(ApiError) as raised:
        service.put_events(EventBusArn=arn, Entries=[entry()])
    assert (raised.value.code, raised.value.status) == ("InvalidStateException", 409)
    clock.advance(5)
    assert service.put_events(EventBusArn=arn, Entries=[entry()])["FailedEntryCount"] == 0


# ---------------------------------------------------------------- deduplication

def test_a_repeat_within_five_minutes_is_deduplicated_and_answers_the_original():
    h = Harness()
    h.subscribe()
    first = h.publish(entry(dedup="charge-1"))["Entries"][0]
    h.clock.advance(299)
    again = h.publish(entry(dedup="charge-1"))["Entries"][0]
    h.clock.advance()
    assert again["SuccessCode"] == "DEDUPLICATED"
    assert (again["EventId"], again["SequenceNumber"]) == (first["EventId"], first["SequenceNumber"])
    assert h.target.ids == [first["EventId"]]


def test_after_the_window_the_same_id_is_a_new_event():
    h = Harness()
    first = h.publish(entry(dedup="charge-1"))["Entries"][0]
    h.clock.advance(300)
    later = h.publish(entry(dedup="charge-1"))["Entries"][0]
    assert later["SuccessCode"] == "PUBLISHED" and later["EventId"] != first["EventId"]


def test_the_same_id_in_another_group_or_account_is_another_event():
    h = Harness()
    a = h.publish(entry(order="ord-1", dedup="k"))["Entries"][0]
    b = h.publish(entry(order="ord-2", dedup="k"))["Entries"][0]
    c = h.service.put_events(EventBusArn=h.bus, Entries=[entry(order="ord-1", dedup="k")],
                             PublisherAccount="111122223333")["Entries"][0]
    assert [x["SuccessCode"] for x in (a, b, c)] == ["PUBLISHED"] * 3


def test_content_based_deduplication_hashes_the_entry():
    h = Harness()
    config = {"DeduplicationConfiguration": {"DeduplicationType": "CONTENT_BASED"}}
    first = h.publish(entry(amount=10), **config)["Entries"][0]
    same = h.publish(entry(amount=10), **config)["Entries"][0]
    other = h.publish(entry(amount=11), **config)["Entries"][0]
    plain = h.publish(entry(amount=10))["Entries"][0]  # no deduplication asked for
    assert same["SuccessCode"] == "DEDUPLICATED" and same["EventId"] == first["EventId"]
    assert other["SuccessCode"] == plain["SuccessCode"] == "PUBLISHED"


def test_an_unknown_deduplication_type_is_refused():
    h = Harness()
    with pytest.raises(ApiError, match="CONTENT_BASED"):
        h.publish(entry(), DeduplicationConfiguration={"DeduplicationType": "ID"})


# ---------------------------------------------------------------- FIFO and head-of-line blocking

def test_a_fifo_subscriber_holds_back_only_the_failing_events_group_while_it_is_retried():
    h = Harness()
    h.subscribe(Type="FIFO")
    first = {}

    def fail(event_id, attempt):
        return ("THROTTLING", "slow down") if event_id == first.get("id") and attempt < 3 else None
    h.target.fail = fail
    group1 = ids(h.publish(entry(order="ord-1"), entry("Restaurant_Confirmed_Order", order="ord-1"),
                           entry("Delivery_Scheduled", order="ord-1")))
    first["id"] = group1[0]
    other = ids(h.publish(entry(order="ord-2")))
    h.clock.advance()
    assert h.target.ids == other  # ord-2 flowed; ord-1 waits behind its first event
    h.clock.settle()
    order1 = [i for i in h.target.ids if i in group1]
    assert order1 == group1  # publish order, the retried head first
    assert [a for i, a, _ in h.target.received if i == group1[0]] == [3]


def test_a_poison_event_blocks_its_group_until_it_is_dead_lettered_then_the_group_moves_on():
    h = Harness()
    h.subscribe(Type="FIFO", OnFailureConfiguration={"Arn": DLQ})
    events = ids(h.publish(entry(order="ord-1"), entry("Restaurant_Confirmed_Order", order="ord-1")))
    h.target.fail = lambda event_id, attempt: ("CUSTOMER_VALIDATION", "bad") if event_id == events[0] else None
    h.clock.settle()
    assert h.target.ids == [events[1]]  # after the gap
    (arn, record), = h.dead_letters
    body = record.body
    assert arn == DLQ and body["errorCode"] == "CUSTOMER_VALIDATION"
    assert body["exhaustedRetryCondition"] == "MaximumRetryAttempts" and body["retryAttempts"] == 5
    assert [m["eventId"] for m in body["failedMessages"]] == [events[0]]
    assert body["failedMessages"][0]["eventGroupId"] == "ord-1" and record.group_id == "ord-1"
    assert set(record.attributes) == {"ERROR_CODE", "ERROR_MESSAGE", "SUBSCRIBER_ARN", "TARGET_ARN", "BUS_ARN",
                                      "EXHAUSTED_RETRY_CONDITION", "RETRY_ATTEMPTS"}


def test_an_unordered_subscriber_delivers_past_a_failure():
    h = Harness()
    h.subscribe(Type="UNORDERED")
    events = ids(h.publish(entry(order="ord-1"), entry("Restaurant_Confirmed_Order", order="ord-1")))
    h.target.fail = lambda event_id, attempt: ("THROTTLING", "x") if event_id == events[0] and attempt == 1 else None
    h.clock.advance()
    assert h.target.ids == [events[1]]
    h.clock.settle()
    assert h.target.ids == [events[1], events[0]]


def test_retries_stop_at_the_event_age_when_it_comes_first():
    h = Harness()
    h.subscribe(RetryPolicy={"MaxRetryAttempts": 185, "MaxEventAgeInSeconds": 60},
                OnFailureConfiguration={"Arn": DLQ})
    h.target.fail = lambda event_id, attempt: ("INVOCATION_DEPENDENCY_INTERNAL", "5xx")
    h.publish(entry())
    h.clock.settle()
    body = h.dead_letters[0][1].body
    assert body["exhaustedRetryCondition"] == "MaximumEventAgeInSeconds" and 0 < body["retryAttempts"] < 185


def test_zero_retries_make_the_first_failure_terminal_and_without_a_queue_the_event_is_dropped():
    h = Harness()
    arn = h.subscribe(RetryPolicy={"MaxRetryAttempts": 0})
    h.target.fail = lambda event_id, attempt: ("ACCESS_DENIED", "no")
    h.publish(entry())
    h.clock.settle()
    subscriber = h.service.subscriber(arn)
    assert subscriber.metrics["EventsDropped"] == 1 and subscriber.metrics["EventDeliveryAttempts"] == 1
    assert h.dead_letters == []


def test_a_dead_letter_queue_that_cannot_take_the_record_loses_the_event():
    h = Harness()
    arn = h.subscribe(RetryPolicy={"MaxRetryAttempts": 0}, OnFailureConfiguration={"Arn": DLQ})
    h.dlq_works = False
    h.target.fail = lambda event_id, attempt: ("ACCESS_DENIED", "no")
    h.publish(entry())
    h.clock.settle()
    assert h.service.subscriber(arn).metrics["OnFailureDestinationFailed"] == 1


def test_a_target_that_does_not_exist_fails_at_delivery_not_at_create():
    h = Harness()
    missing = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:missing"
    h.subscribe(InvokeConfiguration={"TargetArn": missing, "RoleArn": ROLE}, RetryPolicy={"MaxRetryAttempts": 0},
                OnFailureConfiguration={"Arn": DLQ})
    h.publish(entry())
    h.clock.settle()
    assert h.dead_letters[0][1].body["errorCode"] == "RESOURCE_NOT_FOUND"


def test_the_default_retry_policy_is_five_retries_or_300_seconds():
    h = Harness()
    arn = h.subscribe()
    described = h.service.describe_subscriber(SubscriberArn=arn)
    assert described["RetryPolicy"] == {"MaxRetryAttempts": 5, "MaxEventAgeInSeconds": 300, "RetryStrategy": "ALL"}
    assert described["Transformer"] == {"Type": "RAW"}
    assert described["LogConfiguration"] == {"Level": "OFF", "IncludePayload": "ON_ERROR_ONLY"}


# ---------------------------------------------------------------- transformers and target parameters

def test_with_metadata_delivers_the_three_parts_and_sqs_parameters_read_the_original_event():
    h = Harness()
    h.subscribe(Transformer={"Type": "WITH_METADATA"},
                InvokeConfiguration={"TargetArn": QUEUE, "RoleArn": ROLE, "SqsParameters": {
                    "MessageGroupId": "{% $events.SystemMetadata.EventGroupId %}",
                    "MessageDeduplicationId": '{% $events.SystemMetadata."aws:EventId" %}'}})
    event_id = ids(h.publish(entry(order="ord-7")))[0]
    h.clock.advance()
    payload = h.target.payloads[0]
    assert set(payload) == {"Data", "Metadata", "SystemMetadata"}
    assert payload["SystemMetadata"]["EventGroupId"] == "ord-7" and payload["SystemMetadata"]["aws:DeliveryType"] == "LIVE"
    assert h.target.parameters[0] == {"MessageGroupId": "ord-7", "MessageDeduplicationId": event_id}


def test_a_jsonata_transformer_that_yields_nothing_is_a_transformation_failure():
    h = Harness()
    arn = h.subscribe(Transformer={"Type": "JSONATA", "JsonataConfiguration": {"Expression": "{% $events.Data.nothing %}"}},
                      RetryPolicy={"MaxRetryAttempts": 1}, OnFailureConfiguration={"Arn": DLQ})
    h.publish(entry())
    h.clock.settle()
    assert h.dead_letters[0][1].body["errorCode"] == "INPUT_TRANSFORMATION_FAILURE"
    assert h.service.subscriber(arn).metrics["EventTransformationFailures"] == 2


def test_a_jsonata_transformer_shapes_what_the_target_receives():
    h = Harness()
    h.subscribe(Transformer={"Type": "JSONATA", "JsonataConfiguration": {
        "Expression": '{% {"order": $events.Data.detail.order_id, "kind": $events.Data."detail-type"} %}'}})
    h.publish(entry(order="ord-9"))
    h.clock.advance()
    assert h.target.payloads == [{"order": "ord-9", "kind": "Payment_Success"}]


# ---------------------------------------------------------------- retention, starting positions, pause

def test_latest_sees_only_what_is_published_after_it_exists():
    h = Harness()
    h.publish(entry(order="ord-old"))
    h.subscribe()
    new = ids(h.publish(entry(order="ord-new")))
    h.clock.settle()
    assert h.target.ids == new


def test_a_late_subscriber_from_the_horizon_reads_history_as_replay_then_live():
    h = Harness()
    old = ids(h.publish(entry(order="ord-1"), entry(order="ord-2")))
    h.clock.advance(60)
    h.subscribe("loyalty", Type="FIFO", StartingPosition="POINT_IN_TIME", PointInTimeConfiguration={"PointType": "HORIZON"})
    new = ids(h.publish(entry(order="ord-3")))
    h.clock.settle()
    assert h.target.ids == old + new
    assert [t for _, _, t in h.target.received] == ["REPLAY", "REPLAY", "LIVE"]


def test_a_timestamp_start_is_inclusive_and_an_end_point_exclusive():
    h = Harness()
    before = ids(h.publish(entry(order="a")))
    h.clock.advance(10)
    at = ids(h.publish(entry(order="b")))
    h.clock.advance(10)
    after = ids(h.publish(entry(order="c")))
    h.clock.advance(5)
    start = datetime.fromtimestamp(T0 + 10, tz=timezone.utc)
    h.subscribe(StartingPosition="POINT_IN_TIME", PointInTimeConfiguration={
        "PointType": "TIMESTAMP", "StartingPoint": start, "EndPoint": T0 + 20})
    h.publish(entry(order="d"))
    h.clock.settle()
    assert h.target.ids == at and before[0] not in h.target.ids and after[0] not in h.target.ids


@pytest.mark.parametrize("point, says", [(T0 - 3600, "RetentionWindowStartTime"), (T0 + 86_400, "future")])
def test_a_timestamp_outside_the_retained_window_is_refused(point, says):
    h = Harness()
    with pytest.raises(ApiError, match=says):
        h.subscribe(StartingPosition="POINT_IN_TIME",
                    PointInTimeConfiguration={"PointType": "TIMESTAMP", "StartingPoint": point})


def test_a_stopped_subscriber_resumes_its_backlog_oldest_first():
    h = Harness()
    arn = h.subscribe(Type="FIFO")
    h.service.update_subscriber(SubscriberArn=arn, State="STOPPED")
    backlog = ids(h.publish(entry(order="ord-1"), entry(order="ord-2"), entry("X", order="ord-1")))
    h.clock.settle()
    assert h.target.ids == []
    h.service.update_subscriber(SubscriberArn=arn, State="RUNNING")
    h.clock.settle()
    assert h.target.ids == backlog


def test_a_stopped_subscribers_matching_backlog_counts_only_what_its_filter_will_deliver():
    h = Harness()
    arn = h.subscribe(FilterConfiguration={"Filters": [{"Scope": "DATA", "Pattern": '{"detail-type": ["Payment_Success"]}'}]})
    h.service.update_subscriber(SubscriberArn=arn, State="STOPPED")
    matched = ids(h.publish(entry(order="ord-1"), entry("Payment_Failed", order="ord-2"), entry(order="ord-3")))
    h.clock.settle()
    subscriber = h.service.subscriber(arn)
    assert (subscriber.backlog, subscriber.matching_backlog) == (3, 2)  # the bus holds all 3; it will deliver 2
    h.service.update_subscriber(SubscriberArn=arn, State="RUNNING")
    h.clock.settle()
    assert h.target.ids == [matched[0], matched[2]]
    assert (subscriber.backlog, subscriber.matching_backlog) == (0, 0)


def test_resuming_at_latest_skips_the_backlog():
    h = Harness()
    arn = h.subscribe()
    h.service.update_subscriber(SubscriberArn=arn, State="STOPPED")
    h.publish(entry(order="skipped"))
    h.service.update_subscriber(SubscriberArn=arn, State="RUNNING", ResumePosition="LATEST")
    new = ids(h.publish(entry(order="taken")))
    h.clock.settle()
    assert h.target.ids == new


def test_latest_is_refused_for_a_subscriber_that_is_replaying():
    h = Harness(choices=Choices(replay_start_delay_seconds=30))
    h.publish(entry())
    arn = h.subscribe(StartingPosition="POINT_IN_TIME", PointInTimeConfiguration={"PointType": "HORIZON"}, State="STOPPED")
    with pytest.raises(ApiError, match="replaying"):
        h.service.update_subscriber(SubscriberArn=arn, State="RUNNING", ResumePosition="LATEST")


def test_events_older_than_the_retention_period_are_no_longer_readable():
    h = Harness()
    bus = h.service.buses[h.bus]
    h.publish(entry(order="gone"))
    h.clock.advance(8 * 86_400)
    kept = ids(h.publish(entry(order="kept")))
    assert (bus.store.first_seq, len(bus.store)) == (1, 1)  # the bus forgot what was past retention on its own
    h.subscribe(StartingPosition="POINT_IN_TIME", PointInTimeConfiguration={"PointType": "HORIZON"})
    h.clock.settle()
    assert h.target.ids == kept
    assert bus.describe()["StorageConfiguration"]["RetentionWindowStartTime"].timestamp() > T0


def test_an_update_replaces_a_supplied_block_whole_and_keeps_the_rest():
    h = Harness()
    arn = h.subscribe(RetryPolicy={"MaxRetryAttempts": 9, "MaxEventAgeInSeconds": 900}, OnFailureConfiguration={"Arn": DLQ})
    h.service.update_subscriber(SubscriberArn=arn, RetryPolicy={"MaxRetryAttempts": 2}, OnFailureConfiguration={})
    described = h.service.describe_subscriber(SubscriberArn=arn)
    assert described["RetryPolicy"]["MaxEventAgeInSeconds"] == 300 and described["RetryPolicy"]["MaxRetryAttempts"] == 2
    assert "OnFailureConfiguration" not in described
    with pytest.raises(ApiError, match="cannot be changed"):
        h.service.update_subscriber(SubscriberArn=arn, Type="FIFO")


# ---------------------------------------------------------------- what create refuses

@pytest.mark.parametrize("config, member", [
    ({"FilterConfiguration": {"Filters": [{"Scope": "DATA", "Pattern": P}, {"Scope": "DATA", "Pattern": P}]}},
     "Filters[1].Scope"),
    ({"FilterConfiguration": {"Filters": [{"Scope": "DATA", "Pattern": '{"source": [{"wildcard": "yafdp.*"}]}'}]}},
     "wildcard"),
    ({"FilterConfiguration": {"Filters": [{"Scope": "METADATA", "Pattern": '{"tenant": [{"prefix": "a"}]}'}]}},
     "exact values"),
    ({"FilterConfiguration": {"Filters": [{"Scope": "DATA", "Pattern": json.dumps({"source": ["x" * 5000]})}]}},
     "4,096"),
    ({"RetryPolicy": {"MaxRetryAttempts": 186}}, "RetryPolicy.MaxRetryAttempts"),
    ({"RetryPolicy": {"MaxEventAgeInSeconds": 59}}, "RetryPolicy.MaxEventAgeInSeconds"),
    ({"OnFailureConfiguration": {"Arn": "arn:aws:sns:eu-west-1:000000000000:topic"}}, "SQS queue"),
    ({"InvokeConfiguration": {"TargetArn": "arn:aws:sqs:eu-west-1:111122223333:q", "RoleArn": ROLE}}, "account"),
    ({"InvokeConfiguration": {"TargetArn": QUEUE, "RoleArn": ROLE, "LambdaParameters": {}}}, "SqsParameters"),
    ({"InvokeConfiguration": {"TargetArn": QUEUE, "RoleArn": ROLE, "SqsParameters": {"MessageGroupId": "{% $events.( %}"}}},
     "does not parse"),
    ({"BatchConfiguration": {"MaxBatchSize": 11}}, "at most 10"),
    ({"Type": "ORDERED"}, "Type"),
    ({"Transformer": {"Type": "JSONATA", "JsonataConfiguration": {"Expression": "$events.Data"}}},  # not in {% %}
     "wrapped in {% %}"),
])
def test_create_refuses_what_the_bus_cannot_do_naming_the_member(config, member):
    h = Harness()
    with pytest.raises(ApiError) as raised:
        h.subscribe(**config)
    assert raised.value.code == "InvalidInputException" and member in str(raised.value)


def test_names_are_unique_on_a_bus_and_client_tokens_make_create_idempotent():
    h = Harness()
    first = h.service.create_subscriber(Name="a", EventBusArn=h.bus, ClientToken="t-1",
                                        InvokeConfiguration={"TargetArn": QUEUE, "RoleArn": ROLE})
    again = h.service.create_subscriber(Name="a", EventBusArn=h.bus, ClientToken="t-1",
                                        InvokeConfiguration={"TargetArn": QUEUE, "RoleArn": ROLE})
    assert again == first
    with pytest.raises(ApiError) as raised:
        h.service.create_subscriber(Name="b", EventBusArn=h.bus, ClientToken="t-1",
                                    InvokeConfiguration={"TargetArn": QUEUE, "RoleArn": ROLE})
    assert raised.value.code == "IdempotentParameterMismatchException"
    with pytest.raises(ApiError) as raised:
        h.subscribe("a")
    assert raised.value.code == "ResourceAlreadyExistsException"


def test_a_bus_with_subscribers_cannot_be_deleted_and_a_deleted_bus_is_gone():
    h = Harness()
    arn = h.subscribe()
    with pytest.raises(ApiError) as raised:
        h.service.delete_event_bus(EventBusArn=h.bus)
    assert raised.value.code == "ResourceInUseException"
    h.service.delete_subscriber(SubscriberArn=arn)
    assert h.service.delete_subscriber(SubscriberArn=arn) == {}  # idempotent
    h.service.delete_event_bus(EventBusArn=h.bus)
    assert h.service.describe_event_bus(EventBusArn=h.bus)["State"] == "DELETING"
    h.clock.advance()
    with pytest.raises(ApiError) as raised:
        h.service.describe_event_bus(EventBusArn=h.bus)
    assert (raised.value.code, raised.value.status) == ("ResourceNotFoundException", 404)


def test_lists_page_and_tags_round_trip():
    h = Harness()
    for name in ("a", "b", "c"):
        h.subscribe(name)
    page = h.service.list_subscribers(EventBusArn=h.bus, MaxResults=2)
    rest = h.service.list_subscribers(EventBusArn=h.bus, MaxResults=2, NextToken=page["NextToken"])
    assert [s["Name"] for s in page["Subscribers"] + rest["Subscribers"]] == ["a", "b", "c"]
    h.service.tag_resource(ResourceArn=h.bus, Tags={"team": "orders"})
    h.service.untag_resource(ResourceArn=h.bus, TagKeys=["absent"])
    assert h.service.list_tags_for_resource(ResourceArn=h.bus) == {"Tags": {"team": "orders"}}
    with pytest.raises(ApiError, match="reserved"):
        h.service.tag_resource(ResourceArn=h.bus, Tags={"aws:x": "y"})


def test_with_quotas_enforced_a_group_over_its_rate_is_throttled():
    h = Harness(enforce_quotas=True)
    for _ in range(14):
        h.publish(*[entry(order="hot")] * 100)
    with pytest.raises(ApiError) as raised:
        h.publish(*[entry(order="hot")] * 100)
    assert (raised.value.code, raised.value.status) == ("ThrottlingException", 429)
    assert h.publish(entry(order="cold"))["FailedEntryCount"] == 0
    h.clock.advance(1.0)
    assert h.publish(*[entry(order="hot")] * 100)["FailedEntryCount"] == 0


@pytest.mark.parametrize("kind", ["UNORDERED", "FIFO"])
def test_what_is_still_to_deliver_counts_an_event_waiting_out_its_backoff_until_it_is_delivered(kind):
    """What a run on a served bus waits for (CustomEventBusService.undelivered): an event is undelivered from its
    publish, through a failed try and its backoff, to its delivery; a stopped subscriber's backlog is not waited for."""
    h = Harness()
    h.subscribe(Type=kind)
    h.target.fail = lambda event_id, attempt: ("THROTTLING", "slow down") if attempt == 1 else None
    [event] = ids(h.publish(entry()))
    assert h.service.undelivered() == 1
    h.clock.advance()  # the first try fails; the retry waits its backoff
    assert h.target.ids == [] and h.service.undelivered() == 1
    h.clock.settle()
    assert h.target.ids == [event] and h.service.undelivered() == 0
    stopped = h.subscribe("paused", State="STOPPED")
    h.publish(entry(order="ord-2"))
    assert h.service.subscriber(stopped).backlog == 1 and h.service.undelivered() == 1  # the running one's only
    h.clock.settle()
    assert h.service.undelivered() == 0
