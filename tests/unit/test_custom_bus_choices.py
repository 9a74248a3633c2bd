"""One test per behaviour AWS's documentation of the Custom Event Bus leaves open (SPEC.md Appendix A): each
says what this emulator chose (yafdp.custom_event_bus.choices.Choices) and, where it matters, that the other
setting does the other thing."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from test_custom_bus import DLQ, QUEUE, ROLE, T0, Harness, entry, ids
from yafdp.custom_event_bus import ApiError, Choices


def test_a1_left_out_type_state_and_starting_position_are_unordered_running_latest():
    h = Harness()
    described = h.service.describe_subscriber(SubscriberArn=h.subscribe())
    assert (described["Type"], described["State"], described["StartingPosition"]) == ("UNORDERED", "RUNNING", "LATEST")


def test_a2_a_fifo_subscribers_event_without_a_group_is_a_group_of_its_own():
    h = Harness()
    h.subscribe(Type="FIFO")
    loose = [{k: v for k, v in entry(order=o).items() if k != "SystemMetadata"} for o in ("a", "b")]
    first, second = ids(h.publish(*loose))
    h.target.fail = lambda event_id, attempt: ("THROTTLING", "x") if event_id == first and attempt == 1 else None
    h.clock.advance()
    assert h.target.ids == [second]  # not held back behind the first


@pytest.mark.parametrize("advance", [True, False])
def test_a3_after_a_terminal_failure_the_group_moves_on_unless_told_otherwise(advance):
    h = Harness(Choices(advance_group_after_terminal_failure=advance))
    h.subscribe(Type="FIFO", RetryPolicy={"MaxRetryAttempts": 0}, OnFailureConfiguration={"Arn": DLQ})
    poisoned, after = ids(h.publish(entry(), entry("X")))
    h.target.fail = lambda event_id, attempt: ("CUSTOMER_VALIDATION", "no") if event_id == poisoned else None
    h.clock.settle()
    assert h.target.ids == ([after] if advance else [])


def test_a4_a_fifo_batch_holds_at_most_one_event_of_a_group():
    h = Harness()
    batches = []
    original = h.target.deliver
    h.target.deliver = lambda delivery, done: (batches.append([i.event.group_id for i in delivery.items]),
                                               original(delivery, done))
    h.subscribe(Type="FIFO", BatchConfiguration={"MaxBatchSize": 10})
    h.publish(entry(order="a"), entry("X", order="a"), entry(order="b"))
    h.clock.settle()
    assert all(len(batch) == len(set(batch)) for batch in batches) and len(batches) == 2


def test_a5_a_deduplicated_entry_answers_the_originals_event_id_and_sequence_number():
    h = Harness()
    first = h.publish(entry(dedup="k"))["Entries"][0]
    again = h.publish(entry(dedup="k"))["Entries"][0]
    assert (again["EventId"], again["SequenceNumber"]) == (first["EventId"], first["SequenceNumber"])


@pytest.mark.parametrize("sliding", [False, True])
def test_a6_the_window_counts_from_the_original_not_from_each_copy(sliding):
    h = Harness(Choices(sliding_deduplication_window=sliding))
    h.publish(entry(dedup="k"))
    h.clock.advance(200)
    assert h.publish(entry(dedup="k"))["Entries"][0]["SuccessCode"] == "DEDUPLICATED"
    h.clock.advance(150)  # 350 s after the original, 150 s after the copy
    expected = "DEDUPLICATED" if sliding else "PUBLISHED"
    assert h.publish(entry(dedup="k"))["Entries"][0]["SuccessCode"] == expected


def test_a6_with_content_based_and_an_explicit_id_the_id_is_the_key():
    h = Harness()
    config = {"DeduplicationConfiguration": {"DeduplicationType": "CONTENT_BASED"}}
    h.publish(entry(dedup="k", amount=1), **config)
    assert h.publish(entry(dedup="k", amount=2), **config)["Entries"][0]["SuccessCode"] == "DEDUPLICATED"


def test_a7_the_content_hash_covers_an_explicit_time():
    h = Harness()
    config = {"DeduplicationConfiguration": {"DeduplicationType": "CONTENT_BASED"}}
    h.publish({**entry(), "Time": T0 - 60}, **config)
    assert h.publish({**entry(), "Time": T0 - 30}, **config)["Entries"][0]["SuccessCode"] == "PUBLISHED"


def test_a8_entry_errors_are_validation_error_and_a_rate_limit_refuses_the_request():
    h = Harness(enforce_quotas=True)
    assert h.publish({"Source": "s", "DetailType": ""})["Entries"][0]["ErrorCode"] == "VALIDATION_ERROR"
    with pytest.raises(ApiError, match="ThrottlingException"):
        for _ in range(20):
            h.publish(*[entry(order="hot")] * 100)


def test_a9_one_event_may_take_the_whole_request_limit():
    h = Harness()
    big = {**entry(), "Detail": json.dumps({"order_id": "ord-1", "blob": "x" * 1_000_000})}
    assert h.publish(big)["Entries"][0]["SuccessCode"] == "PUBLISHED"


def test_a10_event_age_counts_from_the_first_attempt_so_an_old_event_replayed_is_still_retried():
    h = Harness()
    h.publish(entry())
    h.clock.advance(3600)  # the event is an hour old when a late subscriber reads it
    arn = h.subscribe(StartingPosition="POINT_IN_TIME", PointInTimeConfiguration={"PointType": "HORIZON"},
                      RetryPolicy={"MaxRetryAttempts": 3, "MaxEventAgeInSeconds": 60})
    h.target.fail = lambda event_id, attempt: ("THROTTLING", "x") if attempt < 3 else None
    h.clock.settle()
    assert [a for _, a, _ in h.target.received] == [3]
    assert h.service.subscriber(arn).metrics["RetryInvocationAttempts"] == 2


def test_a10_retries_back_off_exponentially_with_jitter_between_half_and_all_of_the_step():
    h = Harness()
    times = []
    h.target.fail = lambda event_id, attempt: (times.append(h.clock.now()), ("THROTTLING", "x"))[1]
    h.subscribe(RetryPolicy={"MaxRetryAttempts": 4, "MaxEventAgeInSeconds": 600})
    h.publish(entry())
    h.clock.settle()
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(gaps) == 4 and all(2 ** n / 2 <= gap <= 2 ** n for n, gap in enumerate(gaps))


def test_a11_at_its_end_point_a_subscriber_stays_running_and_idle():
    h = Harness()
    h.publish(entry(order="in"))
    h.clock.advance(10)
    arn = h.subscribe(StartingPosition="POINT_IN_TIME",
                      PointInTimeConfiguration={"PointType": "HORIZON", "EndPoint": T0 + 5})
    h.publish(entry(order="after"))
    h.clock.settle()
    assert len(h.target.ids) == 1 and h.service.describe_subscriber(SubscriberArn=arn)["State"] == "RUNNING"


def test_a12_events_that_expire_while_a_subscriber_is_stopped_are_skipped_without_a_record():
    h = Harness()
    arn = h.subscribe(OnFailureConfiguration={"Arn": DLQ})
    h.service.update_subscriber(SubscriberArn=arn, State="STOPPED")
    h.publish(entry(order="expires"))
    h.clock.advance(8 * 86_400)
    h.service.buses[h.bus].store.expire(h.clock.now())
    h.service.update_subscriber(SubscriberArn=arn, State="RUNNING")
    h.clock.settle()
    assert h.target.ids == [] and h.dead_letters == []


def test_a13_a_dead_letter_records_timestamp_is_the_events_ingestion_time():
    h = Harness()
    h.subscribe(RetryPolicy={"MaxRetryAttempts": 0}, OnFailureConfiguration={"Arn": DLQ})
    h.target.fail = lambda event_id, attempt: ("ACCESS_DENIED", "no")
    h.publish(entry())
    h.clock.advance(30)
    h.clock.settle()
    stamp = h.dead_letters[0][1].body["failedMessages"][0]["timestamp"]
    assert stamp == datetime.fromtimestamp(T0, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a14_the_envelope_has_version_0_the_publishers_account_and_the_buss_region():
    h = Harness()
    h.subscribe()
    h.service.put_events(EventBusArn=h.bus, Entries=[entry()], PublisherAccount="111122223333")
    h.clock.advance()
    envelope = h.target.payloads[0]
    assert (envelope["version"], envelope["account"], envelope["region"]) == ("0", "111122223333", "eu-west-1")


def test_a15_a_new_bus_is_creating_for_the_chosen_time_zero_by_default():
    h = Harness(Choices(bus_creating_seconds=2))
    arn = h.service.create_event_bus(Name="later")["EventBusArn"]
    h.clock.advance(1)
    assert h.service.describe_event_bus(EventBusArn=arn)["State"] == "CREATING"
    h.clock.advance(1)
    assert h.service.describe_event_bus(EventBusArn=arn)["State"] == "ACTIVE"


def test_a_lambda_targets_left_out_invocation_type_is_request_response_as_lambdas_invoke_api():
    h = Harness()
    function = "arn:aws:lambda:eu-west-1:000000000000:function:f"
    arn = h.subscribe(InvokeConfiguration={"TargetArn": function, "RoleArn": ROLE})
    described = h.service.describe_subscriber(SubscriberArn=arn)
    assert described["InvokeConfiguration"]["LambdaParameters"]["InvocationType"] == "REQUEST_RESPONSE"


def test_a_stopped_subscribers_backlog_is_delivered_live_not_as_replay():
    h = Harness()
    arn = h.subscribe()
    h.service.update_subscriber(SubscriberArn=arn, State="STOPPED")
    h.publish(entry())
    h.service.update_subscriber(SubscriberArn=arn, State="RUNNING")
    h.clock.settle()
    assert [t for _, _, t in h.target.received] == ["LIVE"]


def test_sequence_numbers_are_twenty_digit_decimal_strings_that_sort_as_they_count():
    h = Harness()
    numbers = [e["SequenceNumber"] for e in h.publish(*[entry()] * 12)["Entries"]]
    assert all(len(n) == 20 and n.isdigit() for n in numbers) and numbers == sorted(numbers)


@pytest.mark.parametrize("seconds", [0.0, 5.0])
def test_a_subscriber_create_or_delete_holds_its_bus_for_the_chosen_time_zero_by_default(seconds):
    """"Only one subscriber create or delete runs at a time per bus ... a concurrent one fails with
    ConcurrentModificationException" (UG subscribers): how long one runs is not documented."""
    h = Harness(Choices(subscriber_change_seconds=seconds))
    first = h.subscribe("first")
    if not seconds:
        h.service.delete_subscriber(SubscriberArn=h.subscribe("second"))
        return
    with pytest.raises(ApiError) as refused:
        h.subscribe("second")
    assert refused.value.code == "ConcurrentModificationException" and refused.value.status == 409
    h.clock.advance(seconds)
    h.service.delete_subscriber(SubscriberArn=first)
    with pytest.raises(ApiError, match="one at a time per bus"):
        h.subscribe("second")
