"""Whole runs of the saga keep its promises: every order ends as its inputs say, under any faults."""

import json
import sqlite3
import subprocess
import sys

import pytest

from yafdp.analysis.check import check_run
from yafdp.cli import main
from yafdp.runtime.faults import Faults
from yafdp.runs import RunOptions, StuckSagasError, run_saga
from yafdp.catalog import load_catalog
from yafdp.runs.workload import planned_requests
from yafdp.catalog.marketplace import load_marketplace

HEAVY = Faults(duplicate_rate=0.2, handler_failure_rate=0.1, reorder_rate=0.3, delay_rate=0.1)


def statuses(out) -> dict[str, str]:
    with sqlite3.connect(out / "run.db") as db:
        return dict(db.execute("SELECT order_id, status FROM orders"))


def test_every_order_ends_as_its_inputs_say(tmp_path):
    rates = {"payment_failure": 0.2, "restaurant_reject": 0.2, "delivery_failure": 0.2}
    run_saga(RunOptions(orders=120, seed=11, out=tmp_path, rates=rates))
    expected = {o.request["order_id"]: o.expected.split(":")[0]
                for o in planned_requests(load_catalog(), 120, 11, rates)}
    assert statuses(tmp_path) == expected
    assert {"DELIVERY_SCHEDULED", "CANCELLED"} == set(expected.values())


def test_cancelled_orders_are_refunded_exactly_once_and_points_only_stand_for_delivered(tmp_path):
    rates = {"payment_failure": 0.1, "restaurant_reject": 0.3, "delivery_failure": 0.3}
    run_saga(RunOptions(orders=80, seed=3, out=tmp_path, rates=rates))
    with sqlite3.connect(tmp_path / "run.db") as db:
        refunds = db.execute("SELECT o.status, COUNT(p.order_id) FROM orders o JOIN payments p"
                             " ON p.order_id = o.order_id AND p.kind = 'refund' GROUP BY o.order_id").fetchall()
        points = dict(db.execute("SELECT o.status, SUM(l.points) FROM orders o JOIN loyalty l USING (order_id)"
                                 " GROUP BY o.status"))
    assert refunds and all(status == "CANCELLED" and n == 1 for status, n in refunds)
    assert points.get("CANCELLED", 0) == 0 and points["DELIVERY_SCHEDULED"] > 0


@pytest.mark.parametrize("seed", range(8))
def test_invariants_hold_under_heavy_faults(tmp_path, seed):
    rates = {"payment_failure": 0.1, "restaurant_reject": 0.15, "delivery_failure": 0.15}
    summary = run_saga(RunOptions(orders=150, seed=seed, out=tmp_path, rates=rates, faults=HEAVY))
    assert summary["deliveries"]["duplicate"] > 0 and summary["deliveries"]["failed"] > 0
    failed = [(i.name, i.offenders[:3]) for i in check_run(tmp_path) if not i.passed]
    assert failed == []


def test_memory_and_file_stores_give_the_same_run(tmp_path):
    a = run_saga(RunOptions(orders=60, seed=4, out=tmp_path / "a", store="memory", faults=HEAVY))
    b = run_saga(RunOptions(orders=60, seed=4, out=tmp_path / "b", store="file", faults=HEAVY))
    keys = ("orders", "events_published", "deliveries", "charged", "refunded", "loyalty_points")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_poison_events_end_in_the_dlq_and_the_run_and_the_check_say_which_orders_are_stuck(tmp_path):
    with pytest.raises(StuckSagasError, match="sagas did not end in a terminal outcome") as stuck:
        run_saga(RunOptions(orders=60, seed=2, out=tmp_path, faults=Faults(poison_rate=0.05)))
    assert stuck.value.summary["orders"]["not_terminal"] > 0 and (tmp_path / "summary.json").is_file()
    results = {i.name: i for i in check_run(tmp_path)}
    assert results["no event lost"].passed  # nothing vanished: what failed is in the DLQ with its reason
    assert not results["every saga is terminal"].passed
    assert all(o.startswith("ord-") for o in results["every saga is terminal"].offenders)


RUN_DB_COLUMNS = {
    "events": {"event_id", "order_id", "detail_type", "source", "published_at", "detail"},
    "deliveries": {"event_id", "rule", "target", "attempt", "delivered_at", "finished_at", "outcome"},
    "orders": {"order_id", "status", "amount"},
    "payments": {"order_id", "kind", "amount"},
    "loyalty": {"order_id", "points"},
    "dead_letters": {"event_id", "rule", "target", "error_code", "error_message", "exhausted_retry_condition",
                     "retry_attempts"},
}


def test_run_leaves_run_db_with_the_documented_schema_and_a_summary(tmp_path):
    run_saga(RunOptions(orders=5, seed=1, out=tmp_path))
    with sqlite3.connect(tmp_path / "run.db") as db:
        for table, columns in RUN_DB_COLUMNS.items():
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            assert columns <= have, table
        assert {k for (k,) in db.execute("SELECT DISTINCT kind FROM payments")} <= {"charge", "refund"}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["orders"]["placed"] == 5 and summary["latency_model"] == "none"


def test_cli_run_prints_the_summary_as_json(tmp_path, capsys):
    assert main(["run", "--orders", "10", "--seed", "2", "--out", str(tmp_path), "--duplicate-rate", "0.3",
                 "--handler-failure-rate", "0.2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["orders"]["placed"] == 10 and summary["faults"]["duplicate_rate"] == 0.3


def test_cli_check_exits_1_and_names_the_orders_on_a_broken_run(tmp_path, capsys):
    run_saga(RunOptions(orders=20, seed=1, out=tmp_path))
    with sqlite3.connect(tmp_path / "run.db") as db:  # a double charge, as a buggy payment service would make
        db.execute("INSERT INTO state SELECT service, kind, key || '-again', item FROM state"
                   " WHERE service = 'payment' AND kind = 'ledger' AND key LIKE '%#charge#%' LIMIT 1")
    assert main(["check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  no double charge" in out and "(2 charges in the ledger)" in out


def test_cli_rejects_a_rate_outside_0_to_1(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--duplicate-rate", "1.5"])
    assert "probability from 0 to 1" in capsys.readouterr().err


def test_bad_orders_in_a_file_are_refused_one_by_one_and_the_run_goes_on(tmp_path, capsys):
    good = {"order_id": "ord-f-1", "customer_id": "cus-1", "restaurant_id": "res-taqueria",
            "items": [{"item_id": "burrito", "quantity": 2, "unit_price": 11.0}], "amount": 22.0,
            "payment_token": "tok_visa_1111", "delivery_zone": "zone-university"}
    orders = [good,
              {**good, "order_id": "ord-f-2", "amount": -22.0},
              {**good, "order_id": "ord-f-3", "restaurant_id": "res-nowhere"},
              "not an order",
              {**good, "order_id": "ord-f-5", "items": [{"item_id": "burrito", "quantity": "two", "unit_price": 11.0}]},
              {**good, "order_id": "ord-f-6"}]
    (tmp_path / "orders.json").write_text(json.dumps(orders))
    assert main(["run", "--orders-file", str(tmp_path / "orders.json"), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "2 of 6 requested orders placed (4 refused)" in out
    for field in ("amount", "restaurant_id", "(order)", "items[0].quantity"):
        assert f"order refused: {field}:" in out
    assert statuses(tmp_path / "run") == {"ord-f-1": "DELIVERY_SCHEDULED", "ord-f-6": "DELIVERY_SCHEDULED"}
    with sqlite3.connect(tmp_path / "run" / "run.db") as db:
        assert db.execute("SELECT COUNT(*) FROM payments WHERE order_id IN ('ord-f-2', 'ord-f-3', 'ord-f-5')").fetchone() == (0,)


def test_unreadable_orders_file_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "orders.json").write_text("[{")
    assert main(["run", "--orders-file", str(tmp_path / "orders.json"), "--out", str(tmp_path / "run")]) == 2
    assert "orders.json: line 1" in capsys.readouterr().err


def test_the_arrival_rate_paces_nothing_on_measured_time_and_the_help_says_so(tmp_path, paused_yafdp):
    """1,000 orders at one a second arrive over ~1,000 s (requests.due), yet the local bus without a latency
    model places them as fast as it goes: the whole command never sleeps (no ``time.sleep`` audit event, which
    Python raises for every sleep); `yafdp run --help` and the README say so."""
    yafdp = [sys.executable, "-m", "yafdp"]
    out = tmp_path / "run"
    assert paused_yafdp.survey(["run", "--orders", "1000", "--arrival-rate", "1", "--out", out],
                               event="time.sleep") == []
    with sqlite3.connect(out / "run.db") as db:
        last_due, placed = db.execute("SELECT (SELECT MAX(due) FROM requests), (SELECT COUNT(*) FROM orders)").fetchone()
    assert last_due > 800 and placed == 1000
    help_text = " ".join(subprocess.run([*yafdp, "run", "--help"], capture_output=True, text=True).stdout.split())
    assert "it paces nothing in wall-clock time" in help_text and "as fast as this machine goes" in help_text
