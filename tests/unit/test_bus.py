"""The local bus behaves like EventBridge in front of the deployed topology (rule -> SQS queue -> function):
routing, per-entry PutEvents, EventBridge's retries and the rule's DLQ, SQS redelivery and the queue's DLQ,
replay, redrive."""

import dataclasses
import json
import sqlite3

import pytest

from yafdp.runtime import rundb
from yafdp.backends.local.bus import LocalBus
from yafdp.backends.local.timing import MeasuredTiming
from yafdp.catalog import load_catalog
from yafdp.runtime.faults import Faults
from yafdp.catalog.marketplace import load_marketplace
from yafdp.plan import build_plan
from yafdp.runtime.envelope import QUOTAS_FILE, PublishError, entry_size, iso_time, max_request_bytes
from yafdp.runtime.publishing import PreparedEntry


class VirtualTiming(MeasuredTiming):
    """Records virtual time instead of the wall clock, so tests can read the scheduler's decisions."""

    def now(self, virtual: float) -> float:
        return virtual


CATALOG = load_catalog()
WORLD = load_marketplace()
PLAN = build_plan(CATALOG)
PAID = {"order_id": "ord-t-1", "payment_id": "pay-t-1", "customer_id": "cus-1", "restaurant_id": "res-napoli",
        "items": [{"item_id": "margherita", "quantity": 1, "unit_price": 8.5}], "amount": 8.5, "currency": "EUR",
        "delivery_zone": "zone-centre"}


def make_bus(**kwargs) -> LocalBus:
    """A bus on which order ord-t-1 was placed earlier, so the Order service can track PAID's events."""
    kwargs.setdefault("timing", VirtualTiming())
    bus = LocalBus(CATALOG, PLAN, WORLD, rundb.connect(":memory:"), seed=kwargs.pop("seed", 1), **kwargs)
    bus.writer.put_state("order", {("order", "ord-t-1"): {
        "order_id": "ord-t-1", "status": "PLACED", "amount": 8.5, "currency": "EUR", "customer_id": "cus-1",
        "restaurant_id": "res-napoli", "placed_at": 0.0, "history": []}})
    return bus


def event_ids(response: dict) -> list:
    return [entry.get("EventId") for entry in response["Entries"]]


def rows(bus: LocalBus, sql: str, *args) -> list[tuple]:
    bus.commit()
    return bus.db.execute(sql, args).fetchall()


def test_event_is_routed_to_every_matching_rule():
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": lambda event, uow: None})
    [event_id] = event_ids(bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment"))
    bus.run()
    delivered = {r for (r,) in rows(bus, "SELECT rule FROM deliveries WHERE event_id = ? AND outcome = 'ok'", event_id)}
    assert delivered == {"yafdp-restaurant-reviews-paid-order", "yafdp-order-tracks-status", "yafdp-notification-tells-customer"}


def test_status_of_an_order_never_placed_is_dead_lettered_with_the_reason():
    bus = make_bus()
    bus.put_events([{"DetailType": "Payment_Success", "Detail": {**PAID, "order_id": "ord-ghost"}}], sender="payment")
    bus.run()
    reasons = rows(bus, "SELECT error_message FROM dead_letters WHERE rule = 'yafdp-order-tracks-status'")
    assert reasons and all("ord-ghost, which was never placed" in r for (r,) in reasons)


def test_put_events_refuses_more_than_ten_entries():
    bus = make_bus()
    with pytest.raises(PublishError, match="1 to 10 entries"):
        bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}] * 11, sender="payment")


def test_put_events_publishes_the_good_entry_and_answers_malformed_detail_for_the_other():
    # Tried: one good Payment_Success and one whose Detail is "[1, 2]" raised and stored nothing; AWS publishes
    # the good entry and answers MalformedDetail for the other (PutEventsResultEntry, EventBridge API reference).
    bus = make_bus()
    response = bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID},
                               {"DetailType": "Payment_Success", "Detail": "[1, 2]"}], sender="payment")
    assert response["FailedEntryCount"] == 1
    good, bad = response["Entries"]
    assert set(good) == {"EventId"} and set(bad) == {"ErrorCode", "ErrorMessage"}
    assert bad["ErrorCode"] == "MalformedDetail"
    assert rows(bus, "SELECT event_id, detail_type FROM events") == [(good["EventId"], "Payment_Success")]


@pytest.mark.parametrize("entry, code, reason", [
    ({"DetailType": "Payment_Succeeded", "Detail": PAID}, "yafdp.UnknownDetailType", "unknown detail-type"),
    ({"DetailType": "Payment_Success", "Detail": {**PAID, "amount": -1}}, "yafdp.SchemaViolation", "breaks its schema"),
    ({"DetailType": "Payment_Success", "Detail": PAID, "Source": "yafdp.delivery"}, "NotAuthorizedForSourceException",
     "events:source"),
    ({"DetailType": "Delivery_Scheduled", "Detail": PAID}, "NotAuthorizedForDetailTypeException", "events:detail-type"),
    ({"DetailType": "Payment_Success", "Detail": "not an object"}, "MalformedDetail", "not valid JSON"),
    ({"DetailType": "Payment_Success", "Detail": [1, 2]}, "MalformedDetail", "must be a JSON object"),
    ({"DetailType": "Payment_Success"}, "InvalidArgument", "Parameter Detail is not valid. Reason: Detail is a required"),
    ({"DetailType": "Payment_Success", "Detail": ""}, "InvalidArgument", "Detail is a required argument"),
    ({"Detail": PAID}, "InvalidArgument", "Parameter DetailType is not valid. Reason: DetailType is a required"),
    ({"DetailType": "Payment_Success", "Detail": PAID, "Source": ""}, "InvalidArgument",
     "Parameter Source is not valid. Reason: Source is a required argument."),
    ({"DetailType": "Payment_Success", "Detail": PAID, "Resources": "arn:aws:x"}, "InvalidArgument",
     "Parameter Resources is not valid"),
    ({"DetailType": "Payment_Success", "Detail": PAID, "Time": "yesterday"}, "InvalidArgument",
     "Parameter Time is not valid"),
])
def test_each_bad_entry_is_answered_on_its_own_and_the_others_are_published(entry, code, reason):
    bus = make_bus()
    good = {"DetailType": "Payment_Success", "Detail": PAID}
    response = bus.put_events([good, entry, good], sender="payment")
    assert response["FailedEntryCount"] == 1
    first, refused, last = response["Entries"]
    assert refused["ErrorCode"] == code and reason in refused["ErrorMessage"]
    assert "EventId" in first and "EventId" in last and first["EventId"] != last["EventId"]
    assert rows(bus, "SELECT COUNT(*) FROM events") == [(2,)]


def widened(catalog_copy):
    """The shipped schemas are too tight for a big detail; widen one on a copy of the catalog."""
    catalog_copy.edit("payment", lambda d: d["events"]["Payment_Success"]["schema"]["properties"].update(
        {"note": {"type": "string"}}))
    catalog = load_catalog(catalog_copy.root)
    return LocalBus(catalog, build_plan(catalog), WORLD, rundb.connect(":memory:"))


def padded(total: int) -> dict:
    """A Payment_Success detail whose entry (no Time, no Resources) is ``total`` bytes by AWS's formula."""
    base = entry_size("yafdp.payment", "Payment_Success", json.dumps({**PAID, "note": ""}, separators=(",", ":")))
    return {**PAID, "note": "x" * (total - base)}


def test_an_entry_without_time_counts_no_time_bytes(catalog_copy):
    # Tried: an entry of 262,140 bytes without Time was refused as 262,154. Time counts 14 bytes only when the
    # entry sets it ("Calculating PutEvents event entry size"); and the limit is 1 MB since 29 January 2026.
    bus = widened(catalog_copy)
    response = bus.put_events([{"DetailType": "Payment_Success", "Detail": padded(262_140)}], sender="payment")
    assert response["FailedEntryCount"] == 0
    timed = bus.put_events([{"DetailType": "Payment_Success", "Detail": padded(1_048_576 - 14), "Time": 1_767_225_600}],
                           sender="payment")
    assert "EventId" in timed["Entries"][0]
    with pytest.raises(PublishError, match="1048577 bytes"):
        bus.put_events([{"DetailType": "Payment_Success", "Detail": padded(1_048_576 - 13), "Time": 1_767_225_600}],
                       sender="payment")


def test_a_request_whose_entries_add_up_past_the_limit_is_refused_whole(catalog_copy):
    # Tried: two entries of 600,000 bytes each were both published; EventBridge refuses the whole request when the
    # sum of its entry sizes is over the limit (ValidationException "Total size of the entries in the request is
    # over the limit."), and publishes none of them. The limit is the one in data/quotas.json.
    bus = widened(catalog_copy)
    with pytest.raises(PublishError, match="Total size of the entries in the request is over the limit: 1200000 bytes"):
        bus.put_events([{"DetailType": "Payment_Success", "Detail": padded(600_000)}] * 2, sender="payment")
    assert rows(bus, "SELECT COUNT(*) FROM events") == [(0,)]
    assert max_request_bytes() == json.loads(QUOTAS_FILE.read_text())["quotas"]["eventbridge_put_events_request_bytes"]["value"]
    at_limit = bus.put_events([{"DetailType": "Payment_Success", "Detail": padded(max_request_bytes() // 2)}] * 2,
                              sender="payment")
    assert at_limit["FailedEntryCount"] == 0 and rows(bus, "SELECT COUNT(*) FROM events") == [(2,)]


def test_an_entry_that_sets_time_is_delivered_with_that_time():
    seen = []
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": lambda event, uow: seen.append(event)})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID, "Time": 1_767_000_000,
                     "Resources": ["arn:aws:example:::order/ord-t-1"]}], sender="payment")
    bus.run()
    assert seen[0]["time"] == "2025-12-29T09:20:00Z" and seen[0]["resources"] == ["arn:aws:example:::order/ord-t-1"]


def failing(times: int, error=RuntimeError("restaurant system is down")):
    calls = []

    def handler(event, uow):
        calls.append(event["id"])
        if len(calls) <= times:
            raise error
    handler.calls = calls
    return handler


RESTAURANT = "yafdp-restaurant-reviews-paid-order"


def test_a_failing_handler_is_received_again_after_the_visibility_timeout():
    # The deployed topology: a crashing handler does not fail EventBridge's delivery to SQS; the message
    # comes back when its visibility timeout runs out, and its receive count grows.
    handler = failing(times=3)
    bus = make_bus(handlers={RESTAURANT: handler})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    attempts = rows(bus, "SELECT attempt, delivered_at, outcome FROM deliveries WHERE rule = ? ORDER BY attempt",
                    RESTAURANT)
    assert [(a, o) for a, _, o in attempts] == [(1, "failed"), (2, "failed"), (3, "failed"), (4, "ok")]
    timeout = PLAN.service("restaurant").visibility_timeout_seconds
    assert [b[1] - a[1] for a, b in zip(attempts, attempts[1:])] == [timeout] * 3
    assert rows(bus, "SELECT COUNT(*) FROM dead_letters") == [(0,)]


class TenSecondHandlers(VirtualTiming):
    """Every handler call takes 10 virtual seconds."""

    def reserve(self, service: str, virtual: float) -> tuple[float, float]:
        return virtual, virtual + 10.0


def test_the_visibility_timeout_runs_from_the_receive_not_from_the_handlers_end():
    # Tried: with a 30 s visibility timeout and 10 s handlers the receives came 40 s apart. SQS hides a received
    # message for the visibility timeout counted from the receive; a handler that fails after 10 s does not
    # restart that clock.
    bus = make_bus(handlers={RESTAURANT: failing(times=2)}, timing=TenSecondHandlers())
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    attempts = rows(bus, "SELECT delivered_at, finished_at, outcome FROM deliveries WHERE rule = ? ORDER BY attempt",
                    RESTAURANT)
    timeout = PLAN.service("restaurant").visibility_timeout_seconds
    assert timeout == 30 and [o for _, _, o in attempts] == ["failed", "failed", "ok"]
    assert all(finished - delivered == 10.0 for delivered, finished, _ in attempts)
    assert [b[0] - a[0] for a, b in zip(attempts, attempts[1:])] == [timeout, timeout]


def test_after_max_receive_count_the_message_is_in_the_queues_dlq_without_eventbridge_attributes():
    bus = make_bus(handlers={RESTAURANT: failing(times=99)})
    [event_id] = event_ids(bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment"))
    bus.run()
    service = PLAN.service("restaurant")
    outcomes = rows(bus, "SELECT outcome, finished_at FROM deliveries WHERE rule = ? ORDER BY attempt", RESTAURANT)
    assert [o for o, _ in outcomes] == ["failed"] * (service.max_receive_count - 1) + ["dead_lettered"]
    [dead] = rows(bus, "SELECT event_id, kind, target_arn, error_code, error_message, exhausted_retry_condition,"
                       " retry_attempts, dead_lettered_at, attributes FROM dead_letters")
    assert dead[:7] == (event_id, "queue", PLAN.queue_arn(service.queue), "Unhandled",
                        "RuntimeError: restaurant system is down", "maxReceiveCount", service.max_receive_count - 1)
    received = rows(bus, "SELECT MAX(delivered_at) FROM deliveries WHERE rule = ?", RESTAURANT)[0][0]
    assert dead[7] == received + service.visibility_timeout_seconds  # moved when it would come back
    attributes = json.loads(dead[8])
    assert attributes["ApproximateReceiveCount"] == str(service.max_receive_count)
    assert attributes["DeadLetterQueueSourceArn"] == PLAN.queue_arn(service.queue)
    assert not {"ERROR_CODE", "RETRY_ATTEMPTS", "RULE_ARN"} & set(attributes)


def throttled(times: int, code: str = "THROTTLING"):
    def fault(rule, attempt):
        return (code, "injected") if rule == RESTAURANT and attempt <= times else None
    return fault


def test_eventbridge_retries_a_retryable_delivery_failure_with_exponential_backoff_and_jitter():
    bus = make_bus(target_faults=throttled(3))
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    attempts = rows(bus, "SELECT attempt, delivered_at, outcome FROM deliveries WHERE rule = ? ORDER BY rowid",
                    RESTAURANT)
    assert [(a, o) for a, _, o in attempts] == [(1, "failed"), (2, "failed"), (3, "failed"), (1, "ok")]
    gaps = [b[1] - a[1] for a, b in zip(attempts, attempts[1:])]
    for n, gap in enumerate(gaps, start=1):
        base = 2 ** (n - 1)  # seconds: 1, 2, 4 — with "equal jitter" each wait is in [base/2, base]
        assert base / 2 <= gap <= base


def test_exhausted_eventbridge_retries_land_in_the_rules_dlq_with_eventbridge_attributes():
    bus = make_bus(target_faults=throttled(999))
    [event_id] = event_ids(bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment"))
    bus.run()
    policy = PLAN.rule("restaurant-reviews-paid-order").target.retry_policy
    outcomes = [o for (o,) in rows(bus, "SELECT outcome FROM deliveries WHERE rule = ? ORDER BY rowid", RESTAURANT)]
    assert outcomes == ["failed"] * policy.maximum_retry_attempts + ["dead_lettered"]
    [dead] = rows(bus, "SELECT event_id, kind, rule_arn, target_arn, error_code, exhausted_retry_condition,"
                       " retry_attempts, attributes FROM dead_letters")
    assert dead[:2] == (event_id, "rule")
    assert dead[2].endswith("rule/yafdp-saga/yafdp-restaurant-reviews-paid-order")
    assert dead[3].endswith(":yafdp-restaurant")
    assert dead[4:7] == ("THROTTLING", "MaximumRetryAttempts", policy.maximum_retry_attempts)
    assert json.loads(dead[7]) == {"RULE_ARN": dead[2], "TARGET_ARN": dead[3], "ERROR_CODE": "THROTTLING",
                                   "ERROR_MESSAGE": "injected", "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
                                   "RETRY_ATTEMPTS": str(policy.maximum_retry_attempts)}


def test_old_events_are_dead_lettered_when_their_age_runs_out(catalog_copy):
    bus_file = catalog_copy.root / "bus.json"
    doc = json.loads(bus_file.read_text())
    doc["retry_policy"] = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 60}
    bus_file.write_text(json.dumps(doc))
    catalog = load_catalog(catalog_copy.root)
    bus = LocalBus(catalog, build_plan(catalog), WORLD, rundb.connect(":memory:"), timing=VirtualTiming(),
                   target_faults=throttled(999))
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    [(condition, attempts)] = rows(bus, "SELECT exhausted_retry_condition, retry_attempts FROM dead_letters"
                                        " WHERE rule = ?", RESTAURANT)
    assert condition == "MaximumEventAgeInSeconds" and 3 <= attempts < 10


def without_permission(plan, rule_name: str, **target_changes):
    """The plan with ``rule_name``'s queue policy no longer letting that rule send (and other target changes)."""
    rule = plan.rule(rule_name)
    service = plan.service(rule.service)
    statement = service.queue_policy["Statement"][0]
    arns = [a for a in statement["Condition"]["ArnEquals"]["aws:SourceArn"] if a != plan.rule_arn(rule.name)]
    policy = {**service.queue_policy, "Statement": [
        {**statement, "Condition": {"ArnEquals": {"aws:SourceArn": arns}}}]}
    services = tuple(dataclasses.replace(s, queue_policy=policy) if s is service else s for s in plan.services)
    rules = tuple(dataclasses.replace(r, target=dataclasses.replace(r.target, **target_changes)) if r is rule else r
                  for r in plan.rules)
    return dataclasses.replace(plan, services=services, rules=rules)


def test_a_failure_that_is_not_retryable_goes_straight_to_the_rules_dlq():
    # Tried: a NO_PERMISSIONS failure was retried 4 times first. EventBridge does not retry missing
    # permissions or a target that no longer exists: it sends the event to the DLQ at once (eb-rule-dlq).
    plan = without_permission(PLAN, "restaurant-reviews-paid-order")
    bus = LocalBus(CATALOG, plan, WORLD, rundb.connect(":memory:"), timing=VirtualTiming())
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    assert rows(bus, "SELECT attempt, outcome FROM deliveries WHERE rule = ?", RESTAURANT) == [(1, "dead_lettered")]
    [(kind, code, attempts, attributes)] = rows(bus, "SELECT kind, error_code, retry_attempts, attributes FROM dead_letters"
                                                     " WHERE rule = ?", RESTAURANT)
    assert (kind, code, attempts) == ("rule", "NO_PERMISSIONS", 0)
    assert json.loads(attributes)["RETRY_ATTEMPTS"] == "0"


def test_with_no_dlq_an_undeliverable_event_is_dropped_and_the_drop_recorded():
    plan = without_permission(PLAN, "restaurant-reviews-paid-order", dead_letter_queue="")
    bus = LocalBus(CATALOG, plan, WORLD, rundb.connect(":memory:"), timing=VirtualTiming())
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    stats = bus.run()
    [(kind, rule, message)] = rows(bus, "SELECT kind, rule, error_message FROM dead_letters WHERE kind = 'dropped'")
    assert (kind, rule) == ("dropped", RESTAURANT) and "no dead-letter queue" in message
    assert stats.dropped == 1
    assert rows(bus, "SELECT COUNT(*) FROM dead_letters WHERE rule = ? AND kind != 'dropped'", RESTAURANT) == [(0,)]


def test_eventbridges_defaults_apply_where_the_catalog_says_nothing(catalog_copy):
    bus_file = catalog_copy.root / "bus.json"
    doc = json.loads(bus_file.read_text())
    del doc["retry_policy"]
    bus_file.write_text(json.dumps(doc))
    policy = build_plan(load_catalog(catalog_copy.root)).rule("payment-charges-order").target.retry_policy
    assert (policy.maximum_retry_attempts, policy.maximum_event_age_seconds) == (185, 86_400)


def test_handler_publishing_another_services_source_fails_its_receives_with_that_reason():
    def impostor(event, uow):
        uow.publish("Delivery_Scheduled", {}, source="yafdp.delivery")
    bus = make_bus(handlers={RESTAURANT: impostor})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    [(kind, code, message)] = rows(bus, "SELECT kind, error_code, error_message FROM dead_letters")
    assert kind == "queue" and code == "NotAuthorizedForSourceException"
    assert "may only put events with source 'yafdp.restaurant'" in message
    assert rows(bus, "SELECT COUNT(*) FROM events WHERE source = 'yafdp.delivery'") == [(0,)]


def test_a_throttled_entry_of_a_handlers_publish_is_retried_and_delivered():
    tries = []

    def throttle_first_try(entry: PreparedEntry, attempt: int):
        tries.append((entry.detail_type, attempt))
        return "ThrottlingException" if entry.detail_type == "Restaurant_Confirmed_Order" and attempt == 1 else None
    bus = make_bus(entry_faults=throttle_first_try)
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    assert ("Restaurant_Confirmed_Order", 2) in tries
    assert rows(bus, "SELECT COUNT(*) FROM events WHERE detail_type = 'Restaurant_Confirmed_Order'") == [(1,)]
    assert rows(bus, "SELECT outcome FROM deliveries WHERE rule = ?", RESTAURANT) == [("ok",)]


def test_a_publish_still_refused_after_the_retries_fails_the_delivery_and_nothing_is_lost():
    def throttle_first_receive(entry: PreparedEntry, attempt: int):  # all 3 tries of the first receive's publish
        if entry.detail_type != "Restaurant_Confirmed_Order":
            return None
        throttle_first_receive.calls += 1
        return "ThrottlingException" if throttle_first_receive.calls <= 3 else None
    throttle_first_receive.calls = 0
    bus = make_bus(entry_faults=throttle_first_receive)
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    attempts = rows(bus, "SELECT attempt, outcome, error FROM deliveries WHERE rule = ? ORDER BY attempt", RESTAURANT)
    assert [a[:2] for a in attempts] == [(1, "failed"), (2, "ok")]
    assert attempts[0][2].startswith("ThrottlingException: PutEvents refused 1 of 1 entries after 3 tries")
    assert rows(bus, "SELECT COUNT(*) FROM events WHERE detail_type = 'Restaurant_Confirmed_Order'") == [(1,)]


class QuotaTiming(VirtualTiming):
    """A simulated account as the bus sees it: the next PutEvents call refused (the producer gave up, throttled)
    once :meth:`refuse_next` is called, and every invocation of a rule in ``expire`` held past its target's
    maximum event age."""

    def __init__(self, expire=()):
        super().__init__()
        self.expire, self.refusing, self.refused = set(expire), False, []

    def refuse_next(self) -> None:
        self.refusing = True

    def admit(self, at, entries):
        if self.refusing:
            self.refusing = False
            self.refused.append(at)
            return None
        return at

    def invoke(self, rule, at):
        return None if rule.name in self.expire else at


def test_a_handlers_publish_the_account_throttles_past_the_retries_fails_its_delivery_which_comes_back():
    timing = QuotaTiming()
    bus = make_bus(timing=timing)
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    timing.refuse_next()  # the restaurant's publish of Restaurant_Confirmed_Order
    bus.run()
    attempts = rows(bus, "SELECT attempt, delivered_at, outcome, error FROM deliveries WHERE rule = ? ORDER BY attempt",
                    RESTAURANT)
    assert [(a, o) for a, _, o, _ in attempts] == [(1, "failed"), (2, "ok")] and len(timing.refused) == 1
    assert attempts[0][3].startswith("ThrottlingException: PutEvents throttled")
    assert attempts[1][1] - attempts[0][1] == PLAN.service("restaurant").visibility_timeout_seconds
    assert rows(bus, "SELECT COUNT(*) FROM events WHERE detail_type = 'Restaurant_Confirmed_Order'") == [(1,)]


def test_an_order_whose_publish_the_account_throttles_past_the_clients_retries_is_refused_and_nothing_stored():
    timing = QuotaTiming()
    bus = make_bus(timing=timing)
    timing.refuse_next()
    order = {**PAID, "order_id": "ord-t-2", "payment_token": "tok_visa_4242"}
    del order["payment_id"]
    with pytest.raises(PublishError, match="ThrottlingException: PutEvents throttled"):
        bus.call("order", "place_order", order)
    assert rows(bus, "SELECT COUNT(*) FROM events") == [(0,)]
    assert rows(bus, "SELECT COUNT(*) FROM orders WHERE order_id = 'ord-t-2'") == [(0,)]
    assert bus.stats.refused == 1


def test_a_client_put_events_the_account_throttles_past_its_retries_is_answered_throttled_per_entry():
    timing = QuotaTiming()
    bus = make_bus(timing=timing)
    timing.refuse_next()
    response = bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    assert response["FailedEntryCount"] == 1 and response["Entries"][0]["ErrorCode"] == "ThrottlingException"
    assert rows(bus, "SELECT COUNT(*) FROM events") == [(0,)]


def test_an_invocation_the_account_holds_past_the_targets_maximum_event_age_goes_to_the_rules_dlq():
    bus = make_bus(timing=QuotaTiming(expire={RESTAURANT}))
    [event_id] = event_ids(bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment"))
    stats = bus.run()
    assert rows(bus, "SELECT attempt, outcome FROM deliveries WHERE rule = ?", RESTAURANT) == [(1, "dead_lettered")]
    [dead] = rows(bus, "SELECT event_id, kind, error_code, exhausted_retry_condition, retry_attempts, attributes"
                       " FROM dead_letters WHERE rule = ?", RESTAURANT)
    assert dead[:5] == (event_id, "rule", "THROTTLING", "MaximumEventAgeInSeconds", 0)
    assert json.loads(dead[5])["EXHAUSTED_RETRY_CONDITION"] == "MaximumEventAgeInSeconds"
    assert stats.dead_lettered == 1 and rows(bus, "SELECT COUNT(*) FROM deliveries WHERE outcome = 'ok'")[0][0] > 0


def test_the_client_sees_an_injected_throttle_per_entry():
    bus = make_bus(entry_faults=lambda entry, attempt: "ThrottlingException" if entry.detail["payment_id"] == "pay-t-2" else None)
    response = bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID},
                               {"DetailType": "Payment_Success", "Detail": {**PAID, "payment_id": "pay-t-2"}}],
                              sender="payment")
    assert [e.get("ErrorCode") for e in response["Entries"]] == [None, "ThrottlingException"]
    assert rows(bus, "SELECT COUNT(*) FROM events") == [(1,)]


def test_a_failed_handler_changes_no_state():
    def half_done(event, uow):
        uow.put("order", "ord-t-1", {"status": "confirmed"})
        raise RuntimeError("crashed after writing")
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": half_done})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    assert rows(bus, "SELECT COUNT(*) FROM state WHERE service = 'restaurant'") == [(0,)]


def test_duplicate_delivery_changes_nothing_and_is_recorded():
    bus = make_bus(faults=Faults(duplicate_rate=1.0))
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    confirmed = rows(bus, "SELECT COUNT(*) FROM events WHERE detail_type = 'Restaurant_Confirmed_Order'")
    assert confirmed == [(1,)]
    outcomes = dict(rows(bus, "SELECT outcome, COUNT(*) FROM deliveries WHERE rule = 'yafdp-restaurant-reviews-paid-order'"
                              " GROUP BY outcome"))
    assert outcomes == {"ok": 1, "duplicate": 1}


def test_same_seed_gives_the_same_run():
    def run(seed):
        bus = make_bus(seed=seed, faults=Faults(duplicate_rate=0.3, reorder_rate=0.5, handler_failure_rate=0.2))
        bus.call("order", "place_order", {"order_id": "ord-t-9", "customer_id": "cus-9", "restaurant_id": "res-sakura",
                                          "items": [{"item_id": "maki-set", "quantity": 2, "unit_price": 14.0}],
                                          "amount": 28.0, "payment_token": "tok_visa_1234", "delivery_zone": "zone-harbour"})
        bus.run()
        return rows(bus, "SELECT d.rule, e.detail_type, d.attempt, d.outcome, d.delivered_at FROM deliveries d"
                         " JOIN events e USING (event_id) ORDER BY d.rowid")
    assert run(5) == run(5)
    assert run(5) != run(6)


def test_archive_replay_redelivers_without_applying_twice():
    bus = make_bus()
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    before = rows(bus, "SELECT service, kind, key, item FROM state ORDER BY 1, 2, 3")
    replayed = bus.replay(0, 10_000, name="after-the-outage")
    bus.run()
    assert replayed == rows(bus, "SELECT COUNT(*) FROM events")[0][0]
    assert rows(bus, "SELECT service, kind, key, item FROM state ORDER BY 1, 2, 3") == before
    assert rows(bus, "SELECT COUNT(*) FROM deliveries WHERE outcome = 'duplicate'")[0][0] > 0


def test_replay_takes_only_the_time_window():
    bus = make_bus()
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    assert bus.replay(10_000, 20_000) == 0


def test_replay_selects_by_the_events_own_time_and_keeps_it():
    # Tried: replay selected by when the bus received an event and gave the replayed copy that receipt time. StartReplay
    # replays "only events that occurred between the EventStartTime and EventEndTime", and a replayed event is the
    # archived one: its time is kept. An entry's own Time is its event's time.
    seen = []

    def only_replayed(event, uow):  # the original fails (to the DLQ), so the replayed copy is not a duplicate
        seen.append(event)
        if "replay-name" not in event:
            raise RuntimeError("not yet")

    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": only_replayed})
    epoch = bus.services.epoch
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID, "Time": epoch + 3_600}], sender="payment")
    bus.run()
    received = rows(bus, "SELECT published_at FROM events")[0][0]
    assert received < 60 and seen[0]["time"] == iso_time(epoch + 3_600)
    assert bus.replay(0, 600) == 0  # the window of its receipt does not hold its time
    assert bus.replay(3_599.5, 3_600) == 1 and bus.replay(3_600.2, 3_700) == 0  # time has whole seconds
    bus.run()
    replayed = [e for e in seen if "replay-name" in e]
    assert len(replayed) == 1 and replayed[0]["time"] == iso_time(epoch + 3_600) and replayed[0]["id"] == seen[0]["id"]


def test_redrive_delivers_dead_letters_once_the_cause_is_fixed():
    bus = make_bus(faults=Faults(poison_rate=1.0))
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    dead = rows(bus, "SELECT COUNT(*) FROM dead_letters WHERE kind = 'queue'")[0][0]
    assert dead == 3  # restaurant, order, notification: every target of the event
    bus.faults = Faults()
    assert bus.redrive() == dead
    bus.run()
    assert rows(bus, "SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NULL") == [(0,)]
    assert rows(bus, "SELECT COUNT(*) FROM events WHERE detail_type = 'Restaurant_Confirmed_Order'") == [(1,)]


def test_file_store_commits_each_client_call(tmp_path):
    db = rundb.connect(tmp_path / "run.db")
    bus = LocalBus(CATALOG, PLAN, WORLD, db, durable=True)
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    reader = sqlite3.connect(tmp_path / "run.db")
    assert reader.execute("SELECT COUNT(*) FROM events").fetchone() == (1,)
    assert reader.execute("SELECT COUNT(*) FROM pending").fetchone() == (3,)


@pytest.mark.parametrize("publish, code, reason", [
    (lambda uow: uow.publish("Restaurant_Confirmed_Order", {"order_id": "ord-t-1"}), "yafdp.SchemaViolation",
     "breaks its schema"),
    (lambda uow: uow.publish("Restaurant_Opened", {"order_id": "ord-t-1"}), "yafdp.UnknownDetailType",
     "unknown detail-type"),
    (lambda uow: uow.publish("Restaurant_Cancelled_Order", {}), "NotAuthorizedForDetailTypeException",
     "events:detail-type"),
    (lambda uow: uow.publish("Restaurant_Confirmed_Order", {"when": object()}), "yafdp.SchemaViolation",
     "breaks its schema"),
])
def test_handler_publishing_a_bad_event_dead_letters_the_delivery_with_the_reason(publish, code, reason):
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": lambda event, uow: publish(uow)})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    [(got_code, message)] = rows(bus, "SELECT error_code, error_message FROM dead_letters")
    assert got_code == code and reason in message
    assert rows(bus, "SELECT COUNT(*) FROM events WHERE source = 'yafdp.restaurant'") == [(0,)]


def test_replay_can_be_limited_to_some_rules():
    bus = make_bus()
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    before = rows(bus, "SELECT COUNT(*) FROM deliveries")[0][0]
    bus.replay(0, 10_000, rules=["yafdp-notification-tells-customer"])
    bus.run()
    replayed = rows(bus, "SELECT DISTINCT rule FROM deliveries WHERE rowid > ?", before)
    assert replayed == [("yafdp-notification-tells-customer",)]


def test_replayed_events_carry_the_replay_name_and_arrive_in_no_guaranteed_order():
    seen = []

    def only_replayed(event, uow):  # the originals fail (to the DLQ), so the replayed copies are not duplicates
        if "replay-name" not in event:
            raise RuntimeError("not yet")
        seen.append(event)
    bus = make_bus(handlers={"yafdp-notification-tells-customer": only_replayed})
    published = event_ids(bus.put_events([{"DetailType": "Payment_Success",
                                           "Detail": {**PAID, "payment_id": f"pay-t-{i}"}} for i in range(10)],
                                         sender="payment"))
    bus.run()
    bus.replay(0, 10_000, name="after-the-outage", rules=["yafdp-notification-tells-customer"])
    bus.run()
    assert {e["replay-name"] for e in seen} == {"after-the-outage"}
    replayed = [e["id"] for e in seen if e["detail-type"] == "Payment_Success"]
    assert sorted(replayed) == sorted(published) and replayed != published


def test_a_lambda_target_is_retried_by_lambda_twice_then_the_event_is_dropped(catalog_copy):
    # EventBridge invokes a function asynchronously: its retry policy and the rule's DLQ cover the invocation;
    # a function error is Lambda's to retry (twice, 1 then 2 minutes apart), then discarded without an
    # on-failure destination ("How Lambda handles errors and retries with asynchronous invocation").
    bus_file = catalog_copy.root / "bus.json"
    doc = json.loads(bus_file.read_text())
    doc["target"] = "lambda"
    bus_file.write_text(json.dumps(doc))
    catalog = load_catalog(catalog_copy.root)
    bus = LocalBus(catalog, build_plan(catalog), WORLD, rundb.connect(":memory:"), timing=VirtualTiming(),
                   handlers={RESTAURANT: failing(times=99)})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    attempts = rows(bus, "SELECT attempt, delivered_at, outcome FROM deliveries WHERE rule = ? ORDER BY attempt",
                    RESTAURANT)
    assert [(a, o) for a, _, o in attempts] == [(1, "failed"), (2, "failed"), (3, "dead_lettered")]
    assert [b[1] - a[1] for a, b in zip(attempts, attempts[1:])] == [60.0, 120.0]
    [(kind, target_arn)] = rows(bus, "SELECT kind, target_arn FROM dead_letters WHERE rule = ?", RESTAURANT)
    assert kind == "dropped" and target_arn.endswith(":function:yafdp-restaurant")


def test_a_run_collects_the_reference_cycles_its_handlers_make():
    """The run loop leaves Python's collector off and collects the young generations at a commit once the run
    holds more than ``young_objects_bound`` new objects: garbage cycles a handler makes are collected as it runs."""
    import gc
    import weakref

    class Node:
        pass

    made = []

    def cyclic(event, uow):  # garbage held by a reference cycle, made at every delivery: 52 objects or more
        node = Node()
        node.itself, node.payload = node, [[] for _ in range(50)]
        made.append(weakref.ref(node))

    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": cyclic}, commit_every=2)
    bus.young_objects_bound = 10
    for n in range(40):
        bus.put_events([{"DetailType": "Payment_Success", "Detail": {**PAID, "payment_id": f"pay-t-{n}"}}],
                       sender="payment")
    enabled = gc.isenabled()
    alive = []  # at each commit: the cycles not collected yet (the collector is off while the run goes)
    bus.run(progress=lambda stats: alive.append(sum(ref() is not None for ref in made)))
    assert len(made) == 40 and gc.isenabled() == enabled
    assert len(alive) > 10 and max(alive) < 5  # collected as the run went (never collected: up to 40)


def test_the_run_database_stores_none_as_null():
    """rundb.connect registers an adapter for None (it saves the sqlite3 module two failed attribute lookups per
    NULL): what it binds is still SQL NULL, not a text or a number."""
    db = rundb.connect(":memory:")
    db.executemany(rundb.INSERT_REFUSAL, [(None, "items", "is missing", 0.5, None)])
    db.execute(rundb.INSERT_REFUSAL, ("ord-1", "amount", "is missing", 1.0, None))
    assert db.execute("SELECT typeof(order_id), typeof(request), request IS NULL FROM refusals").fetchall() == [
        ("null", "null", 1), ("text", "null", 1)]
