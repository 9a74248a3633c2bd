"""An orders file: one bad order is refused on its own with its field and never ends the run for the others;
identical duplicates are merged and said so; a conflicting duplicate order id is refused; every request is
accounted for."""

import json
import sqlite3

import pytest

from yafdp.analysis.check import check_run
from yafdp.catalog.marketplace import load_marketplace
from yafdp.cli import main
from yafdp.catalog import load_catalog
from yafdp.runs.workload import planned_requests


def requests(n: int = 40) -> list[dict]:
    return [p.request for p in planned_requests(load_catalog(), n, seed=6, rates={"payment_failure": 0.1, "restaurant_reject": 0.1, "delivery_failure": 0.1})]


def run_file(tmp_path, text: str, *options) -> tuple[int, str, dict]:
    (tmp_path / "orders.json").write_text(text)
    out = tmp_path / "run"
    code = main(["run", "--orders-file", str(tmp_path / "orders.json"), "--out", str(out), *options])
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    return code, str(out), summary


def refusals(out) -> list[tuple]:
    with sqlite3.connect(f"{out}/run.db") as db:
        return db.execute("SELECT order_id, field, request FROM refusals ORDER BY request").fetchall()


@pytest.mark.parametrize("number", ["1" + "0" * 400, "1" * 5000, "1e400", "NaN", "-Infinity"],
                         ids=["400-zeros", "5000-digits", "1e400", "NaN", "-Infinity"])
@pytest.mark.parametrize("store", ["file", "memory"])
def test_an_order_with_a_number_no_field_can_hold_is_refused_on_its_own(tmp_path, capsys, number, store):
    orders = requests()
    text = json.dumps(orders)
    bad = json.dumps(orders[25])  # the 26th order: the run ended there
    text = text.replace(bad, bad.replace(f'"amount": {orders[25]["amount"]}', f'"amount": {number}'))
    code, out, summary = run_file(tmp_path, text, "--store", store)
    assert code == 0, capsys.readouterr().err
    assert refusals(out) == [(orders[25]["order_id"], "amount", 26)]
    assert summary["orders"]["placed"] == 39 and summary["orders"]["requested"] == 40
    assert all(i.passed for i in check_run(out))


def test_identical_duplicates_are_merged_and_said_so(tmp_path, capsys):
    orders = requests(5)
    code, out, summary = run_file(tmp_path, json.dumps(orders + [orders[1], dict(reversed(orders[1].items()))]))
    assert code == 0
    assert f"merged 3 identical requests for {orders[1]['order_id']} into one" in capsys.readouterr().out
    assert summary["orders"]["placed"] == 5 and summary["orders"]["requested"] == 7 and refusals(out) == []
    assert summary["orders_requested"] is None  # --orders (default 20) does not apply to an orders file
    assert all(i.passed for i in check_run(out))


def test_a_conflicting_duplicate_order_id_is_refused_not_lost(tmp_path, capsys):
    """The issue's case: same id, another customer and amount, made two requests vanish without a refusal."""
    orders = requests(5)
    other = {**orders[3], "order_id": orders[1]["order_id"]}
    code, out, summary = run_file(tmp_path, json.dumps(orders + [other]))
    assert code == 0
    assert refusals(out) == [(orders[1]["order_id"], "order_id", 6)]
    assert "was requested before (request #2) with other content" in capsys.readouterr().out
    assert summary["orders"]["placed"] == 5 and summary["orders"]["refused"] == 1
    assert all(i.passed for i in check_run(out))


def test_a_resume_sends_exactly_the_requests_not_sent_yet():
    """`unsent`: not merged, not refused, its saga not started (no event names it); a conflicting duplicate is
    sent to be refused."""
    from yafdp.runtime import rundb

    db = rundb.connect(":memory:")
    db.executemany(rundb.INSERT_REQUEST, [(1, "ord-a", 0.1, "{}", None), (2, "ord-a", 0.2, '{"x": 1}', None),
                                          (3, "ord-a", 0.3, "{}", 1), (4, "ord-c", 0.4, "{}", None),
                                          (5, None, 0.5, "[]", None)])
    db.execute(rundb.INSERT_EVENT, ("e-1", "ord-a", "Order_Initiated", "yafdp.order", 0.1, "{}", "t", None, None))
    assert [(s, f) for s, _, _, f in db.execute("SELECT * FROM unsent ORDER BY seq")] == [(2, 1), (4, 4), (5, None)]
    db.execute(rundb.INSERT_REFUSAL, ("ord-a", "order_id", "conflict", 1.0, 2))
    db.execute(rundb.INSERT_REFUSAL, (None, "(order)", "not an object", 1.0, 5))
    assert [s for (s, *_) in db.execute("SELECT * FROM unsent")] == [4]
