"""The local bus behaves like EventBridge: routing, all-or-nothing PutEvents, retries, DLQ, replay, redrive."""

import sqlite3

import pytest

from yafdp.runtime import rundb
from yafdp.backends.local.bus import LocalBus
from yafdp.backends.local.timing import MeasuredTiming
from yafdp.catalog import load_catalog
from yafdp.runtime.envelope import PublishError
from yafdp.runtime.faults import Faults
from yafdp.catalog.marketplace import load_marketplace
from yafdp.plan import build_plan


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


def rows(bus: LocalBus, sql: str, *args) -> list[tuple]:
    bus.commit()
    return bus.db.execute(sql, args).fetchall()


def test_event_is_routed_to_every_matching_rule():
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": lambda event, uow: None})
    [event_id] = bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
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


@pytest.mark.parametrize("entry, reason", [
    ({"DetailType": "Payment_Succeeded", "Detail": PAID}, "unknown detail-type"),
    ({"DetailType": "Payment_Success", "Detail": {**PAID, "amount": -1}}, "breaks its schema"),
    ({"DetailType": "Payment_Success", "Detail": PAID, "Source": "yafdp.delivery"}, "events:source"),
    ({"DetailType": "Delivery_Scheduled", "Detail": PAID}, "events:detail-type"),
    ({"DetailType": "Payment_Success", "Detail": "not an object"}, "must be a JSON object"),
])
def test_one_bad_entry_refuses_the_whole_request(entry, reason):
    bus = make_bus()
    good = {"DetailType": "Payment_Success", "Detail": PAID}
    with pytest.raises(PublishError, match=reason):
        bus.put_events([good, entry], sender="payment")
    assert rows(bus, "SELECT COUNT(*) FROM events") == [(0,)]


def test_entry_over_256_kb_is_refused(catalog_copy):
    # The shipped schemas are too tight for a 256 KB detail; widen one on a copy of the catalog.
    catalog_copy.edit("payment", lambda d: d["events"]["Payment_Success"]["schema"]["properties"].update(
        {"note": {"type": "string"}}))
    catalog = load_catalog(catalog_copy.root)
    bus = LocalBus(catalog, build_plan(catalog), WORLD, rundb.connect(":memory:"))
    with pytest.raises(PublishError, match="262144"):
        bus.put_events([{"DetailType": "Payment_Success", "Detail": {**PAID, "note": "x" * 262_144}}], sender="payment")


def failing(times: int, error=RuntimeError("restaurant system is down")):
    calls = []

    def handler(event, uow):
        calls.append(event["id"])
        if len(calls) <= times:
            raise error
    handler.calls = calls
    return handler


def test_failed_delivery_is_retried_with_exponential_backoff_and_jitter():
    handler = failing(times=3)
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": handler})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    attempts = rows(bus, "SELECT attempt, delivered_at, outcome FROM deliveries WHERE rule = ? ORDER BY attempt",
                    "yafdp-restaurant-reviews-paid-order")
    assert [(a, o) for a, _, o in attempts] == [(1, "failed"), (2, "failed"), (3, "failed"), (4, "ok")]
    gaps = [b[1] - a[1] for a, b in zip(attempts, attempts[1:])]
    for n, gap in enumerate(gaps, start=1):
        base = 2 ** (n - 1)  # seconds: 1, 2, 4 — with "equal jitter" each wait is in [base/2, base]
        assert base / 2 <= gap <= base


def test_exhausted_retries_land_in_the_dlq_with_eventbridge_attributes():
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": failing(times=99)})
    [event_id] = bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    policy = PLAN.rule("restaurant-reviews-paid-order").target.retry_policy
    outcomes = [o for (o,) in rows(bus, "SELECT outcome FROM deliveries WHERE rule = 'yafdp-restaurant-reviews-paid-order'"
                                        " ORDER BY attempt")]
    assert outcomes == ["failed"] * policy.maximum_retry_attempts + ["dead_lettered"]
    [dead] = rows(bus, "SELECT event_id, rule_arn, target_arn, error_code, error_message, exhausted_retry_condition,"
                       " retry_attempts FROM dead_letters")
    assert dead[0] == event_id
    assert dead[1].endswith("rule/yafdp-saga/yafdp-restaurant-reviews-paid-order")
    assert dead[2].endswith(":yafdp-restaurant")
    assert dead[3:] == ("ERROR_FROM_TARGET", "RuntimeError: restaurant system is down", "MaximumRetryAttempts",
                        policy.maximum_retry_attempts)


def test_old_events_are_dead_lettered_when_their_age_runs_out(catalog_copy):
    import json
    bus_file = catalog_copy.root / "bus.json"
    doc = json.loads(bus_file.read_text())
    doc["retry_policy"] = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 60}
    bus_file.write_text(json.dumps(doc))
    catalog = load_catalog(catalog_copy.root)
    bus = LocalBus(catalog, build_plan(catalog), WORLD, rundb.connect(":memory:"), timing=VirtualTiming(),
                   handlers={"yafdp-restaurant-reviews-paid-order": failing(times=999)})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    [(condition, attempts)] = rows(bus, "SELECT exhausted_retry_condition, retry_attempts FROM dead_letters"
                                        " WHERE rule = 'yafdp-restaurant-reviews-paid-order'")
    assert condition == "MaximumEventAgeInSeconds" and 3 <= attempts < 10


def test_handler_publishing_another_services_source_fails_with_that_reason():
    def impostor(event, uow):
        uow.publish("Delivery_Scheduled", {}, source="yafdp.delivery")
    bus = make_bus(handlers={"yafdp-restaurant-reviews-paid-order": impostor})
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    [(code, message)] = rows(bus, "SELECT error_code, error_message FROM dead_letters")
    assert code == "NO_PERMISSIONS" and "may only put events with source 'yafdp.restaurant'" in message
    assert rows(bus, "SELECT COUNT(*) FROM events WHERE source = 'yafdp.delivery'") == [(0,)]


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


def test_redrive_delivers_dead_letters_once_the_cause_is_fixed():
    bus = make_bus(faults=Faults(poison_rate=1.0))
    bus.put_events([{"DetailType": "Payment_Success", "Detail": PAID}], sender="payment")
    bus.run()
    dead = rows(bus, "SELECT COUNT(*) FROM dead_letters")[0][0]
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
    (lambda uow: uow.publish("Restaurant_Confirmed_Order", {"order_id": "ord-t-1"}), "INVALID_PARAMETER", "breaks its schema"),
    (lambda uow: uow.publish("Restaurant_Opened", {"order_id": "ord-t-1"}), "INVALID_PARAMETER", "unknown detail-type"),
    (lambda uow: uow.publish("Restaurant_Cancelled_Order", {}), "NO_PERMISSIONS", "events:detail-type"),
    (lambda uow: uow.publish("Restaurant_Confirmed_Order", {"when": object()}), "INVALID_PARAMETER", "breaks its schema"),
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
