"""`yafdp check` is a proof: every tampered copy of a finished run.db fails it naming the order, each invariant
is the only one that catches a run.db broken in exactly its way (switched off, nothing else would), and a
run.db it cannot read is one line, exit 2."""

import json
import shutil
import sqlite3
import subprocess
import sys

import pytest

from yafdp.analysis import check
from yafdp.analysis.check import INVARIANTS, Invariant, MalformedRunError, check_run
from yafdp.runs import RunOptions, run_saga
from yafdp.runs.workload import OutcomeRates
from yafdp.runtime import rundb
from yafdp.runtime.faults import Faults


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A clean run with every outcome: delivered, declined, rejected and refunded, no courier and refunded."""
    out = tmp_path_factory.mktemp("finished")
    run_saga(RunOptions(orders=80, seed=5, out=out, rates=OutcomeRates(0.15, 0.15, 0.15)))
    assert all(i.passed for i in check_run(out))
    return out


@pytest.fixture(scope="module")
def finished_custom(tmp_path_factory):
    """The same on a Custom Event Bus, every producer publishing twice half the time (DEDUPLICATED copies)."""
    out = tmp_path_factory.mktemp("finished-custom")
    run_saga(RunOptions(orders=80, seed=5, out=out, rates=OutcomeRates(0.15, 0.15, 0.15), bus="custom",
                        faults=Faults(publish_retry_rate=0.5)))
    assert all(i.passed and not i.skipped for i in check_run(out))
    return out


def _copy(run, tmp_path):
    shutil.copy(run / "run.db", tmp_path / "run.db")
    return tmp_path, sqlite3.connect(tmp_path / "run.db", isolation_level=None)


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished run to tamper with, and a connection to it."""
    path, db = _copy(finished, tmp_path)
    yield path, db
    db.close()


@pytest.fixture
def custom_copy(finished_custom, tmp_path):
    path, db = _copy(finished_custom, tmp_path)
    yield path, db
    db.close()


def one(db, sql: str, *args) -> str:
    row = db.execute(sql + " LIMIT 1", args).fetchone()
    assert row, sql
    return row[0]


def delivered(db) -> str:
    return one(db, "SELECT order_id FROM orders WHERE status = 'DELIVERY_SCHEDULED' ORDER BY order_id")


def refunded(db) -> str:
    return one(db, "SELECT order_id FROM payments WHERE kind = 'refund' ORDER BY order_id")


def declined(db) -> str:
    return one(db, "SELECT o.order_id FROM orders o WHERE o.status = 'CANCELLED' AND o.order_id NOT IN"
                   " (SELECT order_id FROM payments) ORDER BY o.order_id")


def times_ten(db, order_id: str, kinds: tuple[str, ...]) -> None:
    marks = ", ".join("?" * len(kinds))
    db.execute(f"UPDATE state SET item = json_set(item, '$.amount', json_extract(item, '$.amount') * 10)"
               f" WHERE service = 'payment' AND key LIKE ? AND (kind IN ({marks})"
               f" OR (kind = 'ledger' AND json_extract(item, '$.kind') IN ({marks})))",
               (f"{order_id}%", *kinds, *kinds))


def failing(path) -> dict[str, Invariant]:
    return {i.name: i for i in check_run(path) if not i.passed}


# ---------------------------------------------------------------- the tampered copies

def tamper_delivered_charge_times_ten(db):
    order = delivered(db)
    times_ten(db, order, ("charge",))
    return order


def tamper_cancelled_charge_and_refund_times_ten(db):
    order = refunded(db)
    times_ten(db, order, ("charge", "refund"))
    return order


def tamper_declined_order_marked_delivered_with_loyalty(db):
    order = declined(db)
    db.execute("UPDATE state SET item = json_set(item, '$.status', 'DELIVERY_SCHEDULED')"
               " WHERE service = 'order' AND kind = 'order' AND key = ?", (order,))
    amount = one(db, "SELECT amount FROM orders WHERE order_id = ?", order)
    db.execute("INSERT INTO state VALUES ('loyalty', 'entry', ?, json_object('order_id', ?, 'customer_id', 'cus-1',"
               " 'points', ?))", (f"{order}#award#forged", order, int(amount)))
    return order


def tamper_every_state_row_of_an_order_deleted(db):
    order = refunded(db)
    db.execute("DELETE FROM state WHERE key = ? OR key LIKE ? OR json_extract(item, '$.order_id') = ?",
               (order, f"{order}#%", order))
    return order


def tamper_events_of_an_order_deleted(db):
    order = delivered(db)
    db.execute("DELETE FROM events WHERE order_id = ?", (order,))
    return order


def tamper_second_payment_success_inserted(db):
    order = delivered(db)
    db.execute("INSERT INTO events (event_id, order_id, detail_type, source, published_at, detail, time)"
               " SELECT event_id || '-again', order_id, detail_type, source, published_at, detail, time FROM events"
               " WHERE order_id = ? AND detail_type = 'Payment_Success'", (order,))
    db.execute("INSERT INTO deliveries SELECT event_id || '-again', rule, target, attempt, delivered_at, finished_at,"
               " outcome, error, delivery_type FROM deliveries WHERE event_id IN (SELECT event_id FROM events WHERE order_id = ?"
               " AND detail_type = 'Payment_Success' AND event_id NOT LIKE '%-again')", (order,))
    return order


def tamper_rules_replaced_and_500_deliveries_deleted(db):
    nothing = {"forged-rule": {"source": ["nobody"], "detail-type": ["Nothing"]}}
    db.execute("UPDATE run_info SET value = ? WHERE key = 'rules'", (json.dumps(nothing),))
    db.execute("UPDATE run_info SET value = ? WHERE key = 'rules_sha256'", (json.dumps(rundb.rules_hash(nothing)),))
    victim = one(db, "SELECT e.order_id FROM deliveries d JOIN events e USING (event_id) WHERE d.outcome = 'ok'"
                     " ORDER BY d.rowid")
    db.execute("DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries WHERE outcome = 'ok'"
               " ORDER BY rowid LIMIT 500)")
    return victim


def tamper_cancelling_charged_and_not_refunded(db):
    """Chapter 06's stuck order: CANCELLING, charged, its refund never made."""
    order = refunded(db)
    db.execute("DELETE FROM state WHERE service = 'payment' AND (kind = 'refund' AND key = ?"
               " OR kind = 'ledger' AND key LIKE ?)", (order, f"{order}#refund#%"))
    db.execute("UPDATE state SET item = json_set(item, '$.status', 'CANCELLING')"
               " WHERE service = 'order' AND kind = 'order' AND key = ?", (order,))
    refunds = [e for (e,) in db.execute("SELECT event_id FROM events WHERE order_id = ? AND detail_type = 'Payment_Refunded'", (order,))]
    db.executemany("DELETE FROM deliveries WHERE event_id = ?", [(e,) for e in refunds])
    db.executemany("DELETE FROM events WHERE event_id = ?", [(e,) for e in refunds])
    return order


def tamper_second_charge_in_the_ledger(db):
    order = delivered(db)
    db.execute("INSERT INTO state SELECT service, kind, key || '-again', item FROM state"
               " WHERE service = 'payment' AND kind = 'ledger' AND key LIKE ?", (f"{order}#charge#%",))
    return order


TAMPERED = [tamper_delivered_charge_times_ten, tamper_cancelled_charge_and_refund_times_ten,
            tamper_declined_order_marked_delivered_with_loyalty, tamper_every_state_row_of_an_order_deleted,
            tamper_events_of_an_order_deleted, tamper_second_payment_success_inserted,
            tamper_rules_replaced_and_500_deliveries_deleted, tamper_cancelling_charged_and_not_refunded,
            tamper_second_charge_in_the_ledger]


@pytest.mark.parametrize("tamper", TAMPERED, ids=[t.__name__.removeprefix("tamper_") for t in TAMPERED])
def test_a_tampered_copy_fails_check_naming_the_order(copy, tamper):
    path, db = copy
    order = tamper(db)
    db.close()
    result = subprocess.run([sys.executable, "-m", "yafdp", "check", str(path)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failed, result.stdout
    assert order in result.stdout, result.stdout


def test_cancelling_order_charged_and_not_refunded_fails_refunds_match_charges(copy):
    path, db = copy
    order = tamper_cancelling_charged_and_not_refunded(db)
    offenders = failing(path)["refunds match charges"].offenders
    assert any(o.startswith(order) and "CANCELLING" in o and "0 refund(s)" in o for o in offenders)


# ---------------------------------------------------------------- one invariant, broken in exactly its way

def break_every_order_terminal(db):
    order = declined(db)
    db.execute("UPDATE state SET item = json_set(item, '$.status', 'PLACED') WHERE service = 'order' AND key = ?", (order,))
    return order


def break_no_double_charge(db):
    return tamper_second_charge_in_the_ledger(db)


def break_charges_are_the_orders_amount(db):
    return tamper_delivered_charge_times_ten(db)


def break_refunds_match_charges(db):
    order = refunded(db)
    db.execute("UPDATE state SET item = json_set(item, '$.amount', json_extract(item, '$.amount') / 2)"
               " WHERE service = 'payment' AND kind = 'ledger' AND key LIKE ?", (f"{order}#refund#%",))
    return order


def break_loyalty_nets_out(db):
    order = delivered(db)
    db.execute("INSERT INTO state VALUES ('loyalty', 'entry', ?, json_object('order_id', ?, 'customer_id', 'cus-1',"
               " 'points', 5))", (f"{order}#award#forged", order))
    return order


def break_every_request_accounted_for(db):
    order = delivered(db)
    db.execute("UPDATE requests SET request = json_set(request, '$.customer_id', 'cus-someone-else')"
               " WHERE order_id = ?", (order,))
    return order


def break_state_matches_events(db):
    order = delivered(db)
    initiated = one(db, "SELECT event_id FROM events WHERE order_id = ? AND detail_type = 'Order_Initiated'", order)
    db.execute("DELETE FROM deliveries WHERE event_id = ?", (initiated,))
    db.execute("DELETE FROM events WHERE event_id = ?", (initiated,))
    return order


def break_every_event_reached_its_targets(db):
    order = delivered(db)
    db.execute("DELETE FROM deliveries WHERE rowid = (SELECT d.rowid FROM deliveries d JOIN events e USING (event_id)"
               " WHERE e.order_id = ? AND d.rule LIKE '%notification%' AND d.outcome = 'ok' LIMIT 1)", (order,))
    return order


def break_fifo_subscribers_keep_publish_order(db):
    """The Order service's FIFO subscriber handled an order's second event before its first."""
    order = delivered(db)
    (first, _), (second, later) = db.execute(
        "SELECT d.rowid, d.delivered_at FROM deliveries d JOIN events e USING (event_id) WHERE e.order_id = ?"
        " AND d.rule LIKE '%order-tracks-status' AND d.outcome = 'ok' ORDER BY d.delivered_at, d.rowid LIMIT 2",
        (order,)).fetchall()
    db.execute("UPDATE deliveries SET delivered_at = ? WHERE rowid = ?", (later + 1e-6, first))
    return order


def break_deduplicated_publishes_stored_nothing(db):
    """A producer's retry that the bus should have answered DEDUPLICATED was stored (and delivered) again."""
    order = delivered(db)
    event = one(db, "SELECT event_id FROM events WHERE order_id = ? AND detail_type = 'Delivery_Scheduled'", order)
    db.execute("INSERT INTO events (event_id, order_id, detail_type, source, published_at, detail, time, published_by,"
               " event_group_id, deduplication_id, sequence_number, ingested_at) SELECT event_id || '-copy', order_id,"
               " detail_type, source, published_at + 1, detail, time, published_by, event_group_id, deduplication_id,"
               " printf('%020d', 99999999), ingested_at + 1 FROM events WHERE event_id = ?", (event,))
    db.execute("INSERT INTO deliveries SELECT event_id || '-copy', rule, target, attempt, delivered_at + 9999,"
               " finished_at + 9999, outcome, error, delivery_type FROM deliveries WHERE event_id = ?", (event,))
    return order


CUSTOM_ONLY = ("fifo_subscribers_keep_publish_order", "deduplicated_publishes_stored_nothing")
BREAKS = {name: globals()[f"break_{name}"] for name in INVARIANTS}
CASES = [("classic", name) for name in INVARIANTS if name not in CUSTOM_ONLY] + [("custom", name) for name in INVARIANTS]


@pytest.fixture(scope="module")
def names(finished_custom) -> dict[str, str]:
    """Each invariant's function name → the name it reports (check_run returns them in INVARIANTS' order)."""
    return dict(zip(INVARIANTS, (i.name for i in check_run(finished_custom))))


@pytest.fixture
def broken_copy(request, tmp_path):
    bus = request.param
    return _copy(request.getfixturevalue("finished_custom" if bus == "custom" else "finished"), tmp_path)


@pytest.mark.parametrize("broken_copy, invariant", CASES, indirect=["broken_copy"])
def test_each_invariant_alone_catches_a_run_broken_its_way(broken_copy, invariant, names):
    path, db = broken_copy
    order = BREAKS[invariant](db)
    failed = failing(path)
    assert set(failed) == {names[invariant]}, failed
    assert any(order in offender for offender in failed[names[invariant]].offenders)


@pytest.mark.parametrize("broken_copy, invariant", CASES, indirect=["broken_copy"])
def test_switching_one_invariant_off_lets_its_broken_run_pass(broken_copy, invariant, monkeypatch):
    """What the test above proves: with the invariant switched off, nothing else would notice."""
    path, db = broken_copy
    BREAKS[invariant](db)
    monkeypatch.setattr(check, invariant, lambda run: Invariant(invariant, "switched off", True))
    assert not failing(path)


def test_a_classic_run_skips_the_custom_event_bus_promises_saying_why(finished):
    skipped = {i.name: i.skipped for i in check_run(finished) if i.skipped}
    assert "Classic bus" in skipped["FIFO order per event group"] and "Classic bus" in skipped["deduplication at publish"]


def test_a_custom_event_bus_run_is_known_by_its_events_even_when_run_info_says_classic(custom_copy):
    path, db = custom_copy
    db.execute("UPDATE run_info SET value = '\"classic\"' WHERE key = 'bus'")
    order = break_fifo_subscribers_keep_publish_order(db)
    assert any(order in o for o in failing(path)["FIFO order per event group"].offenders)


def test_routing_comes_from_the_catalog_not_from_run_info(copy):
    path, db = copy
    nothing = {"forged-rule": {"source": ["nobody"], "detail-type": ["Nothing"]}}
    db.execute("UPDATE run_info SET value = ? WHERE key = 'rules'", (json.dumps(nothing),))
    assert not failing(path)  # the catalog's rules decide, and every delivery they call for was made


def test_a_run_of_another_catalog_is_not_checked_against_this_one(copy, catalog_copy):
    path, _ = copy
    catalog_copy.edit("notification", lambda d: d["subscriptions"][0]["pattern"]["detail-type"].pop())
    lost = failing_with_catalog(path, catalog_copy.root)["no event lost"]
    assert "other rules than these" in lost.offenders[0]


def failing_with_catalog(path, catalog):
    return {i.name: i for i in check_run(path, catalog) if not i.passed}


def test_a_workload_placed_in_part_fails_even_when_what_was_placed_is_clean(tmp_path):
    run_saga(RunOptions(orders=10, seed=4, out=tmp_path))
    with sqlite3.connect(tmp_path / "run.db") as db:  # as if 4,990 more had been requested and never placed
        db.executemany("INSERT INTO requests (seq, order_id, due, request) VALUES (?, ?, 99, '{}')",
                       [(n, f"ord-never-{n}") for n in range(11, 5001)])
        db.execute("UPDATE run_info SET value = '5000' WHERE key = 'orders_requested'")
    offenders = failing(tmp_path)["every request accounted for"].offenders
    assert len(offenders) == 4990 and "ord-never-11" in offenders[0]


# ---------------------------------------------------------------- a run.db that cannot be read

def make_null_amount(path, db):
    db.execute("UPDATE state SET item = json_set(item, '$.amount', json('null')) WHERE service = 'order'"
               " AND kind = 'order' AND key = (SELECT MIN(key) FROM state WHERE service = 'order' AND kind = 'order')")
    return "no numeric amount"


def make_empty(path, db):
    db.close()
    (path / "run.db").write_bytes(b"")
    return "empty (0 bytes)"


def make_not_a_database(path, db):
    db.close()
    (path / "run.db").write_text("these are not the orders you are looking for\n" * 100)
    return "not a run database"


def make_missing_table(path, db):
    db.execute("DROP TABLE deliveries")
    return "no table deliveries"


def make_bad_json(path, db):
    db.execute("UPDATE events SET detail = '{not json' WHERE seq = 1")
    return "is not JSON"


MALFORMED = [make_null_amount, make_empty, make_not_a_database, make_missing_table, make_bad_json]


@pytest.mark.parametrize("make", MALFORMED, ids=[m.__name__.removeprefix("make_") for m in MALFORMED])
def test_a_malformed_run_db_is_one_line_naming_the_file_exit_2(copy, make):
    path, db = copy
    problem = make(path, db)
    db.close()
    with pytest.raises(MalformedRunError) as error:
        check_run(path)
    assert problem in str(error.value)
    result = subprocess.run([sys.executable, "-m", "yafdp", "check", str(path)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and str(path / "run.db") in result.stderr and problem in result.stderr


def test_an_outbox_published_again_after_a_crash_is_one_announcement_not_a_second_charge(copy):
    """At least once: a function that crashed between publishing and clearing its outbox publishes the same
    entries again when its message comes back (new event ids, the same ``published_by``). That is one charge
    announced twice, and the checker says so; an event of unknown provenance still counts as a second charge."""
    path, db = copy
    order = delivered(db)
    db.execute("INSERT INTO events (event_id, order_id, detail_type, source, published_at, detail, time, published_by)"
               " SELECT event_id || '-again', order_id, detail_type, source, published_at + 1, detail, time, published_by"
               " FROM events WHERE order_id = ? AND detail_type = 'Payment_Success'", (order,))
    db.execute("INSERT INTO deliveries SELECT event_id || '-again', rule, target, attempt, delivered_at + 1,"
               " finished_at + 1, 'duplicate', error, delivery_type FROM deliveries WHERE event_id IN (SELECT event_id FROM events"
               " WHERE order_id = ? AND detail_type = 'Payment_Success' AND event_id NOT LIKE '%-again')", (order,))
    assert db.execute("SELECT COUNT(*) FROM events WHERE order_id = ? AND detail_type = 'Payment_Success'"
                      " AND published_by IS NOT NULL", (order,)).fetchone()[0] == 2
    results = {i.name: i for i in check_run(path)}
    assert results["no double charge"].passed, results["no double charge"].offenders


def test_the_checker_reads_one_snapshot_while_another_connection_writes(tmp_path, monkeypatch):
    """Every invariant reads the run as it was when the check began: here, after the first invariant, another
    connection deletes every event and commits, and no later invariant sees it."""
    run_saga(RunOptions(orders=30, seed=2, out=tmp_path, store="file"))
    # A finished run is left in rollback-journal mode, where a reader's lock simply blocks writers; in WAL mode
    # (a run in progress, or a run.db written before finished runs left WAL) a writer can commit mid-check.
    with sqlite3.connect(tmp_path / "run.db") as db:
        assert db.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    first = INVARIANTS[0]
    original = getattr(check, first)

    def then_delete_the_events(run):
        result = original(run)
        with sqlite3.connect(tmp_path / "run.db") as writer:  # run.db is in WAL mode: the writer is not blocked
            writer.execute("DELETE FROM events")
        return result

    monkeypatch.setattr(check, first, then_delete_the_events)
    assert [(i.name, i.offenders[:3]) for i in check_run(tmp_path) if not i.passed] == []
    monkeypatch.undo()
    assert failing(tmp_path)  # the deletion was real: a check begun after it fails
