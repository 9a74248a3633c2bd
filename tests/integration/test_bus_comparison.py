"""Chapter 08's comparison of the two buses (yafdp.analysis.bus_comparison) on real runs of the same seeded
workload: what each count means is checked against what the runs' tables say, and against runs where the answer
is known (a FIFO subscriber never out of order; Loyalty's out-of-order handlings are its tombstones)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from yafdp.analysis import bus_comparison, exercises, tables, trace
from yafdp.analysis.costs import load_prices
from yafdp.catalog import load_catalog
from yafdp.catalog.inline import add_service, copy_of
from yafdp.plan import build_plan
from yafdp.runs import RunOptions, StuckSagasError, run_saga
from yafdp.runtime.faults import Faults
from yafdp.services.loyalty import award_points, revert_points


@pytest.fixture(scope="module")
def reordered(tmp_path_factory):
    """The same 100 orders on each bus, deliveries reordered, on simulated AWS time."""
    base = tmp_path_factory.mktemp("reordered")
    runs = {}
    for bus in ("classic", "custom"):
        run_saga(RunOptions(orders=100, seed=21, out=base / bus, bus=bus, latency_model="aws-eu-west-1",
                            faults=Faults(reorder_rate=0.5), rates={"delivery_failure": 0.25}))
        runs[bus] = trace.load_run(base / bus)
    return runs


def test_a_fifo_subscriber_never_handles_an_order_out_of_publish_order_where_a_classic_rule_does(reordered):
    table = bus_comparison.compare_out_of_order(reordered)
    assert {"order-tracks-status", "notification-tells-customer"} <= set(table.index)
    assert (table["custom"] == 0).all()
    assert table.loc["order-tracks-status", "classic"] > 0


def test_the_count_is_what_the_deliveries_say(reordered):
    """Recounted from run.db by hand: each handling of an order's event after one published later."""
    run = reordered["classic"]
    with sqlite3.connect(run.path / "run.db") as db:
        rows = db.execute("SELECT e.order_id, e.seq FROM deliveries d JOIN events e USING (event_id)"
                          " WHERE d.outcome = 'ok' AND d.rule = 'yafdp-order-tracks-status'"
                          " ORDER BY d.delivered_at, d.rowid").fetchall()
    late, highest = 0, {}
    for order, seq in rows:
        late += seq < highest.get(order, -1)
        highest[order] = max(seq, highest.get(order, -1))
    counted = bus_comparison.out_of_order(run)
    assert counted.loc["order-tracks-status", "out_of_order"] == late > 0
    assert counted.loc["order-tracks-status", "handled"] == len(rows)


def test_loyalty_still_races_on_the_custom_bus_and_each_race_is_a_tombstone(reordered):
    per_service = bus_comparison.compare_out_of_order(reordered, by="service")
    for bus, run in reordered.items():
        assert per_service.loc["loyalty", bus] == bus_comparison.tombstones(run)
    assert per_service.loc["loyalty", "custom"] > 0  # FIFO is per subscriber: Loyalty's two still race
    assert per_service.loc["order", "custom"] == 0


def test_one_subscriber_for_both_of_loyaltys_events_closes_the_race(tmp_path):
    document, handlers = exercises.solution("08.one-subscriber")  # Loyalty as one subscriber
    catalog = add_service(load_catalog().without("loyalty"), document, handlers)
    assert bus_comparison.races(catalog).empty  # no service of this catalog can race
    run_saga(RunOptions(orders=100, seed=21, out=tmp_path, bus="custom", catalog=catalog, latency_model="aws-eu-west-1",
                        faults=Faults(reorder_rate=0.5), rates={"delivery_failure": 0.25}))
    run = trace.load_run(tmp_path)
    assert bus_comparison.out_of_order(run, by="service").loc["rewards", "out_of_order"] == 0
    assert bus_comparison.tombstones(run, "rewards") == 0


def test_races_are_read_from_the_catalog():
    races = bus_comparison.races(load_catalog())
    assert races.to_dict("records") == [{
        "service": "loyalty", "earlier": "loyalty-awards-confirmed-order: Restaurant_Confirmed_Order",
        "later": "loyalty-reverts-undeliverable-order: Delivery_Failed"}]
    two = add_service(load_catalog().without("loyalty"), copy_of(load_catalog(), "loyalty", "rewards"),
                      {"award_points": award_points, "revert_points": revert_points})
    assert set(bus_comparison.races(two)["service"]) == {"rewards"}


def test_a_producers_retry_is_stored_again_on_classic_and_deduplicated_on_custom(tmp_path):
    copies = {}
    for bus in ("classic", "custom"):
        run_saga(RunOptions(orders=20, seed=6, out=tmp_path / bus, bus=bus, faults=Faults(publish_retry_rate=0.5)))
        copies[bus] = bus_comparison.publish_copies(trace.load_run(tmp_path / bus))
    assert copies["classic"]["stored again"] > 0 and copies["classic"]["answered DEDUPLICATED"] == 0
    assert copies["custom"]["stored again"] == 0 and copies["custom"]["answered DEDUPLICATED"] > 0
    table = bus_comparison.deduplicated(trace.load_run(tmp_path / "custom"))
    assert len(table) == copies["custom"]["answered DEDUPLICATED"]
    stored = set(trace.load_run(tmp_path / "custom").events["event_id"])
    assert set(table["event_id"]) <= stored  # each repeats an event that was stored


def test_a_poisoned_event_holds_back_its_order_on_custom_and_is_overtaken_on_classic(tmp_path):
    blocked = {}
    for bus in ("classic", "custom"):
        with pytest.raises(StuckSagasError):  # poisoned orders end in a dead-letter queue; the run is written
            run_saga(RunOptions(orders=40, seed=2, out=tmp_path / bus, bus=bus, arrival_rate=0.2,
                                latency_model="aws-eu-west-1", faults=Faults(poison_rate=0.03)))
        blocked[bus] = bus_comparison.blocked_groups(trace.load_run(tmp_path / bus))
    custom, classic = blocked["custom"], blocked["classic"]
    assert custom["waited"].sum() > 0 and custom["overtook"].sum() == 0
    assert classic["overtook"].sum() > 0 and classic["waited"].sum() == 0
    # held for the queue's retries: 5 receives, 30 s apart (virtual time, not this machine's)
    assert (custom.loc[custom["waited"] > 0, "waited_s"] > 4 * 30).all()
    assert (custom.loc[custom["waited"] > 0, "others_handled"] > 0).all()  # the other orders flowed
    worst = custom.sort_values("waited").iloc[-1]
    run = trace.load_run(tmp_path / "custom")
    around = bus_comparison.orders_around(run, worst["order_id"], before=2, after=3)
    assert worst["order_id"] in around and len(around) == 6
    timeline = bus_comparison.group_timeline(run, worst["subscription"], around)
    assert set(timeline["order_id"]) <= set(around) and (timeline["waited_s"] >= 0).all()
    mine = timeline[timeline["order_id"] == worst["order_id"]]
    assert {"failed", "dead_lettered", "ok"} <= set(mine["outcome"])


def test_a_late_subscriber_from_the_horizon_is_delivered_replays(tmp_path):
    from yafdp.runs.lifecycle import finish, start_saga

    options = RunOptions(orders=10, seed=7, out=tmp_path, bus="custom", exclude_services=("loyalty",))
    bus = start_saga(options)
    bus.run()
    bus.add_service(load_catalog(), "loyalty", StartingPosition="POINT_IN_TIME",
                    PointInTimeConfiguration={"PointType": "HORIZON"})
    bus.run()
    finish(bus, options, tmp_path, 1.0)
    run = trace.load_run(tmp_path)
    types = bus_comparison.delivery_types(run, "loyalty")
    assert set(types.index) == {"REPLAY"} and types["REPLAY"] > 0
    assert set(bus_comparison.delivery_types(run, "order").index) == {"LIVE"}


def test_retry_policies_quotas_and_costs_cite_their_sources_and_invent_no_price():
    retries = bus_comparison.retry_policies(load_catalog())
    assert retries.loc["Custom Event Bus", "AWS default"] == "5 retries or 300 s"
    assert retries.loc["Custom Event Bus - Classic", "AWS default"].startswith("185 retries")
    bus_json = json.loads((load_catalog().path / "bus.json").read_text())
    assert retries.loc["Custom Event Bus - Classic", "this project"] == (
        f"{bus_json['retry_policy']['MaximumRetryAttempts']} retries or "
        f"{bus_json['retry_policy']['MaximumEventAgeInSeconds']:,} s")
    for table in (retries, bus_comparison.quotas(), bus_comparison.costs()):
        assert all(s.startswith("https://") for cell in table["source"] for s in cell.split("; "))
    costs = bus_comparison.costs()
    known = {f"${p['usd']:.2f}" for p in load_prices().values()}
    for column in ("Custom Event Bus - Classic", "Custom Event Bus"):
        for cell in costs[column]:
            assert set(re.findall(r"\$\d+\.\d\d", cell)) <= known  # every price shown is one of data/prices.json
    custom = costs["Custom Event Bus"]
    assert all("$" not in cell and "not published" in cell for row, cell in custom.items()
               if row != "the saga's service queues")


def test_the_plan_of_subscribers_says_each_ones_type_target_and_retries():
    subscribers = tables.plan_subscribers(build_plan(load_catalog(), bus="custom"))
    assert len(subscribers) == len(load_catalog().subscriptions)
    row = subscribers.loc["yafdp-order-tracks-status"]
    assert (row["type"], row["target"], row["retry policy"]) == ("FIFO", "yafdp-order.fifo", "5 retries or 300 s")
    assert json.loads(row["DATA filter"])["source"]


def test_a_subscribers_dead_letter_reads_beside_the_classic_paths(tmp_path):
    from yafdp.runs.lifecycle import finish, start_saga

    options = RunOptions(orders=2, seed=1, out=tmp_path / "denied", bus="custom")
    bus = start_saga(options)
    policy = bus.plan.service("notification").delivery_policy
    policy["Statement"] = [s for s in policy["Statement"] if s["Sid"] != "DeliverToOwnQueue"]  # may not send
    bus.run()
    finish(bus, options, options.out, 1.0)
    row = bus_comparison.subscriber_dead_letter_path(trace.load_run(options.out)).iloc[0]
    assert row["handler or delivery attempts"] == 6  # the first try and AWS's default 5 retries
    assert row["error recorded"].startswith("ACCESS_DENIED: ") and "failedMessages" in row["ends in"]
    assert "ERROR_CODE" in row["attributes of that dead-letter queue"]
    run_saga(RunOptions(orders=2, seed=1, out=tmp_path / "fine", bus="custom"))
    with pytest.raises(LookupError, match="no Custom Event Bus subscriber dead-lettered anything"):
        bus_comparison.subscriber_dead_letter_path(trace.load_run(tmp_path / "fine"))
