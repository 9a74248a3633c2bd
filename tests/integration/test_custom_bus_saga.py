"""The saga on a Custom Event Bus (`--bus custom`), end to end through the local backend: every invariant holds
under every fault, FIFO subscribers keep each order's events in publish order where the Classic bus does not, a
producer's retry is DEDUPLICATED, a poison event holds back its own order and no other, a subscriber can pause and
resume without loss, and a service that joins late catches up from the bus's retention."""

from __future__ import annotations

import json
import sqlite3

import pytest

from yafdp.analysis.check import check_run
from yafdp.catalog import load_catalog
from yafdp.runs import RunOptions, run_saga
from yafdp.runs.lifecycle import finish, start_saga
from yafdp.runtime.faults import Faults

FAULTS = Faults(duplicate_rate=0.2, handler_failure_rate=0.1, reorder_rate=0.3, delay_rate=0.1, publish_retry_rate=0.3)


def failing(path) -> dict:
    return {i.name: i.offenders[:3] for i in check_run(path) if not i.passed}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_invariant_holds_on_a_custom_event_bus_under_every_fault_but_poison(tmp_path, seed):
    summary = run_saga(RunOptions(orders=120, seed=seed, out=tmp_path, bus="custom", faults=FAULTS))
    assert summary["bus"] == "custom" and summary["orders"]["not_terminal"] == 0
    assert not failing(tmp_path)
    checked = {i.name: i for i in check_run(tmp_path)}
    assert checked["FIFO order per event group"].checked > 0 and not checked["FIFO order per event group"].skipped


def test_poisoned_deliveries_pass_every_invariant_once_redriven_after_the_fix(tmp_path):
    options = RunOptions(orders=60, seed=2, out=tmp_path, bus="custom", faults=Faults(poison_rate=0.03, **{
        k: v for k, v in FAULTS.to_dict().items() if k.endswith("_rate") and k != "poison_rate"}))
    bus = start_saga(options)
    bus.run()
    bus.commit()
    assert bus.db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0] > 0
    bus.faults = Faults()
    assert bus.redrive() > 0
    bus.run()
    finish(bus, options, tmp_path, 1.0)
    assert not failing(tmp_path)


def _out_of_order(db, subscriber_suffix: str) -> int:
    """How often a subscriber handled an order's event before an event of the same order published earlier."""
    rows = db.execute("SELECT e.order_id, e.seq FROM deliveries d JOIN events e USING (event_id)"
                      " WHERE d.outcome = 'ok' AND d.rule LIKE ? ORDER BY d.delivered_at, d.rowid",
                      (f"%{subscriber_suffix}",)).fetchall()
    latest: dict[str, int] = {}
    swapped = 0
    for order, seq in rows:
        swapped += latest.get(order, -1) > seq
        latest[order] = max(latest.get(order, -1), seq)
    return swapped


def test_the_order_service_sees_reordered_events_on_the_classic_bus_and_none_on_fifo(tmp_path):
    faults = Faults(reorder_rate=0.5, max_delay_seconds=5.0)
    seen = {}
    for bus in ("classic", "custom"):
        run_saga(RunOptions(orders=100, seed=4, out=tmp_path / bus, bus=bus, faults=faults, latency_model="aws-eu-west-1"))
        with sqlite3.connect(tmp_path / bus / "run.db") as db:
            seen[bus] = _out_of_order(db, "order-tracks-status")
        assert not failing(tmp_path / bus)
    assert seen["classic"] > 0 and seen["custom"] == 0, seen


def test_a_producer_retry_is_deduplicated_on_the_custom_bus_and_published_twice_on_the_classic(tmp_path):
    counts = {}
    for bus in ("classic", "custom"):
        for rate in (0.0, 1.0):
            out = tmp_path / f"{bus}-{rate}"
            summary = run_saga(RunOptions(orders=30, seed=6, out=out, bus=bus, faults=Faults(publish_retry_rate=rate)))
            counts[(bus, rate)] = (summary["events_published"], summary.get("deduplicated_publishes", 0))
            assert not failing(out)
    assert counts[("custom", 1.0)][0] == counts[("custom", 0.0)][0]  # nothing stored twice
    assert counts[("custom", 1.0)][1] > 0 and counts[("custom", 0.0)][1] == 0
    assert counts[("classic", 1.0)][0] > counts[("classic", 0.0)][0]  # every retried event published again


def test_a_poison_event_holds_back_its_own_order_at_its_subscriber_and_no_other(tmp_path):
    # Orders arrive over ~200 s, so others are on their way while a poisoned one is retried (5 receives, 30 s apart).
    options = RunOptions(orders=40, seed=3, out=tmp_path, bus="custom", faults=Faults(poison_rate=0.05),
                         arrival_rate=0.2)
    bus = start_saga(options)
    bus.run()
    bus.commit()
    db = bus.db
    dead = db.execute("SELECT d.event_id, d.rule, e.order_id, e.seq FROM dead_letters d JOIN events e USING (event_id)"
                      " WHERE d.kind = 'queue'").fetchall()
    assert dead
    for event_id, rule, order, seq in dead:
        rows = db.execute("SELECT d.rowid, e.order_id, e.seq, d.outcome FROM deliveries d JOIN events e USING (event_id)"
                          " WHERE d.rule = ? ORDER BY d.rowid", (rule,)).fetchall()
        given_up = max(r[0] for r in rows if r[1] == order and r[2] == seq)
        later_same_order = [r for r in rows if r[1] == order and r[2] > seq and r[3] == "ok"]
        assert all(r[0] > given_up for r in later_same_order), (rule, order)  # waited for the dead letter
        first_try = min(r[0] for r in rows if r[1] == order and r[2] == seq)
        others = [r for r in rows if first_try < r[0] < given_up and r[1] != order and r[3] == "ok"]
        assert others, (rule, order)  # other orders flowed meanwhile
    finish(bus, options, tmp_path, 1.0)


def test_a_stopped_subscriber_resumes_without_loss(tmp_path):
    options = RunOptions(orders=30, seed=5, out=tmp_path, bus="custom")
    bus = start_saga(options)
    arn = bus.subscriber_arn("notification-tells-customer")
    bus.api.update_subscriber(SubscriberArn=arn, State="STOPPED")
    bus.run()
    bus.commit()
    assert bus.db.execute("SELECT COUNT(*) FROM notifications").fetchone()[0] == 0
    assert bus.api.subscriber(arn).backlog > 0
    bus.api.update_subscriber(SubscriberArn=arn, State="RUNNING")  # ResumePosition LAST_PROCESSED by default
    bus.run()
    finish(bus, options, tmp_path, 1.0)
    assert not failing(tmp_path)


def test_a_service_that_joins_late_catches_up_from_retention(tmp_path):
    options = RunOptions(orders=30, seed=7, out=tmp_path, bus="custom", exclude_services=("loyalty",))
    bus = start_saga(options)
    bus.run()
    bus.commit()
    delivered = bus.db.execute("SELECT COUNT(*) FROM orders WHERE status = 'DELIVERY_SCHEDULED'").fetchone()[0]
    assert delivered and bus.db.execute("SELECT COUNT(*) FROM loyalty").fetchone()[0] == 0
    bus.add_service(load_catalog(), "loyalty", StartingPosition="POINT_IN_TIME",
                    PointInTimeConfiguration={"PointType": "HORIZON"})
    bus.run()
    bus.commit()
    awarded = bus.db.execute("SELECT COUNT(DISTINCT order_id) FROM loyalty WHERE points > 0").fetchone()[0]
    types = {t for (t,) in bus.db.execute("SELECT DISTINCT delivery_type FROM deliveries WHERE rule LIKE '%loyalty%'")}
    assert awarded == delivered and types == {"REPLAY"}


def test_a_late_subscriber_at_latest_sees_nothing_of_the_past(tmp_path):
    options = RunOptions(orders=10, seed=7, out=tmp_path, bus="custom", exclude_services=("loyalty",))
    bus = start_saga(options)
    bus.run()
    bus.add_service(load_catalog(), "loyalty")
    bus.run()
    bus.commit()
    assert bus.db.execute("SELECT COUNT(*) FROM loyalty").fetchone()[0] == 0


def test_a_subscriber_whose_delivery_role_may_not_send_dead_letters_nothing_it_cannot_and_says_why(tmp_path):
    options = RunOptions(orders=3, seed=1, out=tmp_path, bus="custom")
    bus = start_saga(options)
    policy = bus.plan.service("notification").delivery_policy
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "DeliverToOwnQueue"]  # a broken role
    bus.run()
    bus.commit()
    rows = bus.db.execute("SELECT DISTINCT kind, error_code, error_message, body FROM dead_letters").fetchall()
    assert rows and {(kind, code) for kind, code, _, _ in rows} == {("subscriber", "ACCESS_DENIED")}
    record = json.loads(rows[0][3])
    assert record["exhaustedRetryCondition"] in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
    assert "sqs:SendMessage" in rows[0][2]


def test_a_custom_event_bus_run_meets_the_limits_per_event_group_when_they_are_small_and_none_at_awss(tmp_path):
    """At AWS's limits (1,500 events + KB a second per group, 500,000 events a second per bus) an order's handful
    of events never binds; at a thousandth of them (1.5 per group, 500 per bus) an order's own events throttle
    each other: the producers' retries refuse some, the subscribers' retries deliver them again, and every
    invariant still holds."""
    options = dict(orders=200, seed=3, arrival_rate=50.0, bus="custom", latency_model="aws-eu-west-1")
    real = run_saga(RunOptions(out=tmp_path / "real", **options))["simulation"]
    assert real["bus"] == "EventBridge Custom Event Bus"
    assert real["put_events_throttled"] == real["put_events_refused"] == 0
    small = run_saga(RunOptions(out=tmp_path / "small", quota_scale=0.001, **options))
    simulation = small["simulation"]
    assert simulation["put_events_throttled"] > 0 and simulation["put_events_refused"] > 0
    assert small["deliveries"]["failed"] >= simulation["put_events_refused"] - small["orders"]["refused"]
    assert simulation["saga_ms"]["p50"] > real["saga_ms"]["p50"]
    assert small["orders"]["not_terminal"] == 0 and not failing(tmp_path / "small")
