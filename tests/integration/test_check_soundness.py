"""`yafdp check` is an audit: every tampered copy of a finished run fails it naming the order, whatever else the
tamperer made agree (run_info's rules and catalog, the records on both sides of a pair); each invariant catches a
run broken its way; what it checks against is the catalog, proven, never what run.db says about itself; and a
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
from yafdp.runtime import rundb
from yafdp.runtime.faults import Faults


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A clean run with every outcome: delivered, declined, rejected and refunded, no courier and refunded."""
    out = tmp_path_factory.mktemp("finished")
    run_saga(RunOptions(orders=80, seed=5, out=out, rates={"payment_failure": 0.15, "restaurant_reject": 0.15, "delivery_failure": 0.15}))
    assert all(i.passed for i in check_run(out))
    return out


@pytest.fixture(scope="module")
def finished_custom(tmp_path_factory):
    """The same on a Custom Event Bus, every producer publishing twice half the time (DEDUPLICATED copies)."""
    out = tmp_path_factory.mktemp("finished-custom")
    run_saga(RunOptions(orders=80, seed=5, out=out, rates={"payment_failure": 0.15, "restaurant_reject": 0.15,
                                                        "delivery_failure": 0.15}, bus="custom",
                        faults=Faults(publish_retry_rate=0.5)))
    assert all(i.passed and not i.skipped for i in check_run(out))
    return out


def _copy(run, tmp_path):
    """A copy of a finished run (run.db, its copy of the catalog and its summary) to tamper with, and a connection
    to it."""
    for name in ("run.db", "catalog.json", "summary.json"):
        shutil.copy(run / name, tmp_path / name)
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


def tamper_own_rules_every_delivery_deleted_and_a_loyalty_award_doubled(db):
    """Issue 27: run_info names rules that match nothing (their hash recomputed) and a catalog that does not load,
    its record of the catalog is removed, every delivery is deleted and a loyalty award doubled."""
    nothing = {"forged-rule": {"source": ["nobody"], "detail-type": ["Nothing"]}}
    db.execute("UPDATE run_info SET value = ? WHERE key = 'rules'", (json.dumps(nothing),))
    db.execute("UPDATE run_info SET value = ? WHERE key = 'rules_sha256'", (json.dumps(rundb.rules_hash(nothing)),))
    db.execute("UPDATE run_info SET value = '\"/nowhere\"' WHERE key = 'catalog_dir'")
    db.execute("DELETE FROM run_info WHERE key = 'catalog'")
    db.execute("DELETE FROM deliveries")
    order = delivered(db)
    db.execute("UPDATE state SET item = json_set(item, '$.points', json_extract(item, '$.points') * 2)"
               " WHERE service = 'loyalty' AND kind = 'entry' AND key LIKE ?", (f"{order}#award#%",))
    return order


def tamper_lost_refund_hidden_by_deleting_the_charges_ledger_row_too(db):
    """Issue 27: the refund is gone (its ledger row, record, event and deliveries), and so is the charge's ledger
    row; the order's Payment_Success and the Payment service's charge record still show the money taken."""
    order = refunded(db)
    db.execute("DELETE FROM state WHERE service = 'payment' AND (kind = 'refund' AND key = ? OR kind = 'ledger'"
               " AND key LIKE ?)", (order, f"{order}#%"))
    refunds = [e for (e,) in db.execute("SELECT event_id FROM events WHERE order_id = ?"
                                         " AND detail_type = 'Payment_Refunded'", (order,))]
    db.executemany("DELETE FROM deliveries WHERE event_id = ?", [(e,) for e in refunds])
    db.executemany("DELETE FROM events WHERE event_id = ?", [(e,) for e in refunds])
    return order


TAMPERED = [tamper_delivered_charge_times_ten, tamper_cancelled_charge_and_refund_times_ten,
            tamper_declined_order_marked_delivered_with_loyalty, tamper_every_state_row_of_an_order_deleted,
            tamper_events_of_an_order_deleted, tamper_second_payment_success_inserted,
            tamper_rules_replaced_and_500_deliveries_deleted, tamper_cancelling_charged_and_not_refunded,
            tamper_second_charge_in_the_ledger, tamper_own_rules_every_delivery_deleted_and_a_loyalty_award_doubled,
            tamper_lost_refund_hidden_by_deleting_the_charges_ledger_row_too]


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


def test_a_lost_refund_is_seen_by_the_charges_other_witnesses(copy):
    path, db = copy
    order = tamper_lost_refund_hidden_by_deleting_the_charges_ledger_row_too(db)
    failed = failing(path)
    assert any(o.startswith(order) and "0 refund(s)" in o for o in failed["refunds match charges"].offenders)
    assert any(o.startswith(order) and "none in ledger" in o for o in failed["money records agree"].offenders)


def test_a_run_db_naming_its_own_rules_is_audited_against_the_catalog_all_the_same(copy):
    path, db = copy
    order = tamper_own_rules_every_delivery_deleted_and_a_loyalty_award_doubled(db)
    failed = failing(path)
    assert "the run records no catalog" in failed["the run's catalog"].offenders[0]
    assert failed["no event lost"].offenders and failed["publications have causes"].offenders
    # Told which catalog to trust, the checker runs every invariant against it: the doubled award is seen too.
    failed = {i.name: i for i in check_run(path, check.load_catalog()) if not i.passed}
    assert any(o.startswith(order) for o in failed["loyalty nets out"].offenders)
    assert failed["no event lost"].offenders


# ---------------------------------------------------------------- each invariant catches a run broken its way

def break_every_saga_terminal(db):
    order = declined(db)
    db.execute("UPDATE state SET item = json_set(item, '$.status', 'PLACED') WHERE service = 'order' AND key = ?", (order,))
    return order


def break_no_double_charge(db):
    return tamper_second_charge_in_the_ledger(db)


def break_charges_are_the_orders_amount(db):
    return tamper_delivered_charge_times_ten(db)


def break_money_records_agree(db):
    order = delivered(db)
    db.execute("DELETE FROM state WHERE service = 'payment' AND kind = 'charge' AND key = ?", (order,))
    return order


def break_refunds_match_charges(db):
    order = refunded(db)
    db.execute("UPDATE state SET item = json_set(item, '$.amount', json_extract(item, '$.amount') / 2)"
               " WHERE service = 'payment' AND key LIKE ? AND (kind = 'refund' OR kind = 'ledger'"
               " AND json_extract(item, '$.kind') = 'refund')", (f"{order}%",))
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


def remove_a_whole_saga(db) -> int:
    """Every row of a delivered saga deleted (its events, their deliveries, its state and its request), and
    run_info's orders requested lowered by one: the records that hold the saga agree that it never was. Returns
    the removed request's seq."""
    order = delivered(db)
    seq = one(db, "SELECT seq FROM requests WHERE order_id = ?", order)
    db.execute("DELETE FROM deliveries WHERE event_id IN (SELECT event_id FROM events WHERE order_id = ?)", (order,))
    db.execute("DELETE FROM events WHERE order_id = ?", (order,))
    db.execute("DELETE FROM state WHERE key = ? OR json_extract(item, '$.order_id') = ?", (order, order))
    db.execute("DELETE FROM requests WHERE order_id = ?", (order,))
    db.execute("UPDATE run_info SET value = value - 1 WHERE key = 'orders_requested'")
    return seq


def break_the_workload_is_whole(db):
    return f"request #{remove_a_whole_saga(db)} missing"


def break_state_matches_events(db):
    order = delivered(db)
    db.execute("UPDATE state SET item = json_set(item, '$.status', 'CANCELLED') WHERE service = 'order' AND key = ?",
               (order,))
    return order


def break_every_event_reached_its_targets(db):
    order = delivered(db)
    db.execute("DELETE FROM deliveries WHERE rowid = (SELECT d.rowid FROM deliveries d JOIN events e USING (event_id)"
               " WHERE e.order_id = ? AND d.rule LIKE '%notification%' AND d.outcome = 'ok' LIMIT 1)", (order,))
    return order


def break_publications_have_causes(db):
    order = delivered(db)
    db.execute("UPDATE events SET published_by = 'yafdp-notification-tells-customer#' || substr(published_by,"
               " instr(published_by, '#') + 1) WHERE order_id = ? AND detail_type = 'Payment_Success'", (order,))
    return order


def break_compensations_match_steps(db):
    order = refunded(db)
    db.execute("UPDATE events SET detail_type = 'Payment_Failed' WHERE order_id = ? AND detail_type = 'Payment_Refunded'",
               (order,))
    return order


def break_no_step_applied_twice(db):
    return tamper_second_payment_success_inserted(db)


def break_only_the_catalogs_services(db):
    order = delivered(db)
    db.execute("INSERT INTO state VALUES ('fraud', 'note', ?, '{}')", (order,))
    return "service 'fraud'"


def break_the_runs_catalog(db):
    db.execute("UPDATE run_info SET value = json_set(value, '$.files.\"services/payment.json\"', 'forged')"
               " WHERE key = 'catalog'")
    return "services/payment.json"


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


DOMAIN = ("no_double_charge", "money_records_agree", "charges_are_the_orders_amount", "refunds_match_charges",
          "loyalty_nets_out")
BREAKS = {name: globals()[f"break_{name}"] for name in ("the_runs_catalog", *INVARIANTS, *DOMAIN)}
CUSTOM_ONLY = ("fifo_subscribers_keep_publish_order", "deduplicated_publishes_stored_nothing")
CASES = [("classic", name) for name in BREAKS if name not in CUSTOM_ONLY] + [("custom", name) for name in BREAKS]


@pytest.fixture(scope="module")
def names(finished_custom) -> dict[str, str]:
    """Each invariant's function name → the name it reports (check_run returns them in this order)."""
    return dict(zip(BREAKS, (i.name for i in check_run(finished_custom))))


@pytest.fixture
def broken_copy(request, tmp_path):
    bus = request.param
    return _copy(request.getfixturevalue("finished_custom" if bus == "custom" else "finished"), tmp_path)


@pytest.mark.parametrize("broken_copy, invariant", CASES, indirect=["broken_copy"])
def test_each_invariant_catches_a_run_broken_its_way(broken_copy, invariant, names):
    path, db = broken_copy
    order = BREAKS[invariant](db)
    failed = failing(path)
    assert names[invariant] in failed, failed
    assert any(order in offender for offender in failed[names[invariant]].offenders)


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
    failed = failing_with_catalog(path, catalog_copy.root)
    assert "services/notification.json changed" in failed["the run's catalog"].offenders[0]


def test_a_tampered_copy_of_the_catalog_in_the_run_folder_is_a_finding(copy):
    path, db = copy
    document = json.loads((path / "catalog.json").read_text())
    document["files"]["services/notification.json"] = document["files"]["services/notification.json"].replace(
        '"Payment_Success", ', "")
    (path / "catalog.json").write_text(json.dumps(document))
    failed = failing(path)
    assert failed["the run's catalog"].offenders == ("catalog.json: services/notification.json changed",)


def test_a_key_added_to_the_copy_of_the_catalog_is_a_finding(copy):
    """The new-user review's case: catalog.json with an extra top-level key passed check."""
    path, db = copy
    document = json.loads((path / "catalog.json").read_text())
    document["note"] = "added by hand"
    (path / "catalog.json").write_text(json.dumps(document))
    failed = failing(path)
    assert failed["the run's catalog"].offenders == (
        "catalog.json: 'note' added (a copy holds excluded, files, folder, in_memory)",)


def test_a_catalog_folder_changed_since_the_run_is_a_finding(tmp_path, catalog_copy):
    out = tmp_path / "run"
    run_saga(RunOptions(orders=10, seed=1, out=out, catalog_dir=catalog_copy.root))
    assert not failing(out)
    (catalog_copy.root / "invariants.py").write_text("INVARIANTS = []  # nothing left to promise\n")
    catalog_copy.edit("notification", lambda d: d["subscriptions"][0]["pattern"]["detail-type"].pop())
    failed = failing(out)
    assert failed["the run's catalog"].offenders == (f"{catalog_copy.root.resolve()}: invariants.py changed",
                                                      f"{catalog_copy.root.resolve()}: services/notification.json changed")
    # The documents are read as the run read them (its copy agrees with run.db): routing is the run's.
    assert "no event lost" not in failed


def test_the_copy_in_the_run_folder_is_read_as_data_never_run(copy):
    path, db = copy
    document = json.loads((path / "catalog.json").read_text())
    document["files"]["invariants.py"] = "raise SystemExit('the checker ran code from the run folder')\n"
    (path / "catalog.json").write_text(json.dumps(document))
    failed = failing(path)
    assert failed["the run's catalog"].offenders == ("catalog.json: invariants.py changed",)


def test_a_catalog_given_that_does_not_load_is_refused(copy):
    path, _ = copy
    result = subprocess.run([sys.executable, "-m", "yafdp.cli", "check", str(path), "--catalog", str(path / "nowhere")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "nowhere" in result.stderr


def test_a_skipped_check_is_in_the_summary_line_and_fails_with_strict(tmp_path):
    run_saga(RunOptions(orders=10, seed=1, out=tmp_path, exclude_services=("loyalty",)))
    cli = [sys.executable, "-m", "yafdp.cli", "check", str(tmp_path)]
    result = subprocess.run(cli, capture_output=True, text=True)
    last = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0 and "1 skipped (loyalty nets out: the run's catalog has no Loyalty service)" in last
    assert subprocess.run([*cli, "--strict"], capture_output=True, text=True).returncode == 1


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


def check_cli(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp", "check", str(path)], capture_output=True, text=True)


def failed_lines(result, name: str) -> list[str]:
    """The lines ``yafdp check`` printed for the failed invariant ``name``: its FAIL line and what follows."""
    lines = result.stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("FAIL") and name in line)
    end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith(("pass", "FAIL", "skip", "check:"))),
               len(lines))
    return lines[start:end]


def test_a_saga_removed_whole_leaves_a_gap_in_the_requests_and_fails_check(finished, tmp_path):
    path, db = _copy(finished, tmp_path)
    seq = remove_a_whole_saga(db)
    db.close()
    result = check_cli(path)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "the workload is whole" in failed[0], result.stdout
    assert f"request #{seq} missing" in result.stdout and "(run_info.workload)" in result.stdout


def test_a_saga_removed_whole_with_every_run_db_record_made_to_agree_is_seen_by_summary_json(finished, tmp_path):
    """The gap closed, run_info's workload record and summary rewritten: summary.json still counts the saga."""
    path, db = _copy(finished, tmp_path)
    shutil.copy(finished / "summary.json", path / "summary.json")
    seq = remove_a_whole_saga(db)
    db.execute("UPDATE requests SET seq = seq - 1 WHERE seq > ?", (seq,))
    db.execute("UPDATE requests SET same_as = same_as - 1 WHERE same_as > ?", (seq,))
    db.execute("UPDATE refusals SET request = request - 1 WHERE request > ?", (seq,))
    rundb.set_info(db, workload=rundb.workload_record(db))
    db.execute("UPDATE run_info SET value = json_set(value, '$.orders.requested', json_extract(value, "
               "'$.orders.requested') - 1, '$.orders.placed', json_extract(value, '$.orders.placed') - 1)"
               " WHERE key = 'summary'")
    db.close()
    result = check_cli(path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = "\n".join(failed_lines(result, "the workload is whole"))
    requested = json.loads((finished / "summary.json").read_text())["orders"]["requested"]
    assert f"(summary.json) {requested} order(s) requested; run.db holds {requested - 1}" in lines, result.stdout
    assert "(run_info" not in lines and "missing" not in lines


@pytest.mark.parametrize("field, edit", [
    ("events_published", lambda s: s.update(events_published=s["events_published"] + 1)),
    ("deliveries.ok", lambda s: s["deliveries"].update(ok=s["deliveries"]["ok"] - 1)),
    ("added_by_hand", lambda s: s.update(added_by_hand=1))], ids=["events_published", "deliveries.ok", "added"])
def test_a_summary_json_edited_but_still_json_fails_check_and_resume_writes_it_again(finished, tmp_path, field, edit):
    """The review's case: summary.json with events_published + 1 passed `yafdp check`, and `yafdp resume` said
    nothing changed."""
    path, db = _copy(finished, tmp_path)
    db.close()
    summary = json.loads((path / "summary.json").read_text())
    edit(summary)
    (path / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    result = check_cli(path)
    assert result.returncode == 1, result.stdout + result.stderr
    differs = [line for line in failed_lines(result, "the workload is whole") if "run_info.summary" in line]
    assert len(differs) == 1 and differs[0].strip().startswith(f"(summary.json) {field} differs from run_info."
                                                                f"summary's"), result.stdout
    assert f"`yafdp resume --out {path}` writes it again from run.db" in differs[0]

    resumed = subprocess.run([sys.executable, "-m", "yafdp", "resume", "--out", str(path)], capture_output=True,
                             text=True, stdin=subprocess.DEVNULL)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{field} differs from run_info.summary's: written again from run.db" in resumed.stderr
    assert (path / "summary.json").read_bytes() == (finished / "summary.json").read_bytes()
    assert check_cli(path).returncode == 0


def test_an_orders_file_run_with_its_last_saga_removed_fails_check(tmp_path):
    """An orders-file run has no count of orders to compare: the workload recorded as it started is one."""
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps([{"order_id": f"ord-file-{n}", "customer_id": "cus-ada", "restaurant_id": "res-napoli",
                                   "items": [{"item_id": "margherita", "quantity": 3, "unit_price": 8.5}],
                                   "amount": 25.5, "currency": "EUR", "payment_token": "tok_visa_4242",
                                   "delivery_zone": "zone-centre"} for n in range(1, 6)]))
    out = tmp_path / "run"
    run_saga(RunOptions(orders_file=orders, out=out))
    assert check_cli(out).returncode == 0
    with sqlite3.connect(out / "run.db", isolation_level=None) as db:
        last = one(db, "SELECT order_id FROM requests ORDER BY seq DESC")
        db.execute("DELETE FROM deliveries WHERE event_id IN (SELECT event_id FROM events WHERE order_id = ?)",
                   (last,))
        db.execute("DELETE FROM events WHERE order_id = ?", (last,))
        db.execute("DELETE FROM state WHERE key = ? OR json_extract(item, '$.order_id') = ?", (last, last))
        db.execute("DELETE FROM refusals WHERE order_id = ?", (last,))
        db.execute("DELETE FROM requests WHERE order_id = ?", (last,))
    result = check_cli(out)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = "\n".join(failed_lines(result, "the workload is whole"))
    assert "(run_info.workload) the run started with 5 request(s)" in lines and "run.db holds 4" in lines, lines


def test_a_finished_run_without_its_copy_of_the_catalog_fails_check(finished, tmp_path):
    """The excuse that a writer stopped before writing catalog.json is no excuse once the run finished."""
    path, db = _copy(finished, tmp_path)
    db.close()
    (path / "catalog.json").unlink()
    result = check_cli(path)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = "\n".join(failed_lines(result, "the run's catalog"))
    assert f"{path / 'catalog.json'}: the run folder's copy of the catalog is missing from a finished run" in lines


@pytest.mark.parametrize("body, error", [
    ("    return {}['no such key']\n", "raised KeyError: 'no such key'"),
    ("    return True\n", "returned bool, not an Invariant"),
], ids=["raises", "not-an-invariant"])
def test_a_catalog_invariant_that_raises_or_returns_nonsense_fails_and_the_others_still_print(
        tmp_path, catalog_copy, body, error):
    invariants = catalog_copy.root / "invariants.py"
    invariants.write_text(invariants.read_text() + f"\n\ndef broken_promise(run):\n{body}\n\n"
                          "INVARIANTS = [*INVARIANTS, broken_promise]\n")
    out = tmp_path / "run"
    run_saga(RunOptions(orders=10, seed=1, out=out, catalog_dir=catalog_copy.root))
    result = check_cli(out)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and "broken_promise" in failed[0], result.stdout
    lines = "\n".join(failed_lines(result, "broken_promise"))
    assert f"{(catalog_copy.root / 'invariants.py').resolve()}: broken_promise {error}" in lines, lines
    assert "no double charge" in result.stdout and "loyalty nets out" in result.stdout  # the others still print
    assert result.stdout.splitlines()[-1].startswith("check: ") and ", 1 failed," in result.stdout.splitlines()[-1]


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
    assert results["no step applied twice"].passed, results["no step applied twice"].offenders
    assert results["no double charge"].passed, results["no double charge"].offenders


def test_the_checker_reads_one_snapshot_while_another_connection_writes(tmp_path, monkeypatch):
    """Every invariant reads the run as it was when the check began: here, after the first invariant, another
    connection deletes every event and commits, and no later invariant sees it."""
    run_saga(RunOptions(orders=30, seed=2, out=tmp_path, store="file"))
    assert not failing(tmp_path)
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


def test_an_event_from_an_api_call_is_one_an_entry_point_of_the_catalog_emits(copy):
    path, db = copy  # isolation_level None: each statement commits
    event_id, order = db.execute("SELECT event_id, order_id FROM events WHERE detail_type = 'Payment_Success' "
                                 "LIMIT 1").fetchone()
    db.execute("UPDATE events SET published_by = NULL WHERE event_id = ?", (event_id,))  # as if a client put it
    offenders = failing(path)["publications have causes"].offenders
    assert any(o.startswith(order) and "no entry point of the catalog may publish it" in o for o in offenders)
    assert not any("Order_Initiated" in o for o in offenders)  # the entry point's own event still comes from a call
