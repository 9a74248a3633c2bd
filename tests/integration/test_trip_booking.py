"""The second example domain, examples/trip_booking (a flight, a hotel, a car, then the payment as the pivot), through
the real command line: its design lints with every compensation covered, it runs with every fault option on the
local bus and on moto and passes `yafdp check`, and its own invariants catch what they promise."""

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from yafdp.analysis.check import check_run
from yafdp.catalog import load_catalog

pytestmark = pytest.mark.slow

TRIP = Path(__file__).resolve().parents[2] / "examples" / "trip_booking"
EVERY_OUTCOME = ["--outcome-rate", "flight_unavailable=0.1", "--outcome-rate", "hotel_unavailable=0.1",
                 "--outcome-rate", "car_unavailable=0.1", "--outcome-rate", "payment_declined=0.1"]


def cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_the_trip_design_lints_clean_with_every_compensation_covered():
    done = cli("lint", "--catalog", TRIP, "--coverage")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "UNCOVERED" not in done.stdout and "ok: 13 events" in done.stdout
    assert "flight-cancels-failed-trip → Flight_Cancelled" in done.stdout
    saga = load_catalog(TRIP).saga
    assert {kind for kind in saga.steps.values()} == {"compensatable", "pivot", "retriable"}


@pytest.fixture(scope="module")
def faulty_trips(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trips") / "run"
    done = cli("run", "--catalog", TRIP, "--orders", 150, "--seed", 3, "--out", out, *EVERY_OUTCOME,
               "--duplicate-rate", 0.2, "--reorder-rate", 0.3, "--delay-rate", 0.1, "--handler-failure-rate", 0.1)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_trips_run_with_every_fault_on_the_local_bus_and_pass_check(faulty_trips):
    summary = json.loads((faulty_trips / "summary.json").read_text())
    assert set(summary["orders"]["by_status"]) == {"CONFIRMED", "CANCELLED"}
    assert summary["deliveries"]["duplicate"] and summary["deliveries"]["failed"]
    done = cli("check", faulty_trips)
    assert done.returncode == 0, done.stdout
    assert "pass  bookings given back" in done.stdout and "pass  charged once, the trip's total" in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("check: 12 passed, 0 failed, 0 skipped, 2 not applicable")


def test_trips_run_with_every_fault_on_the_custom_event_bus_and_pass_check(tmp_path):
    """One event group per trip (detail.trip_id, the saga's id): FIFO subscribers, deduplication at publish. The
    Trip service has two subscribers that take Payment_Charged into its one FIFO queue: both must reach it."""
    out = tmp_path / "run"
    done = cli("run", "--catalog", TRIP, "--bus", "custom", "--orders", 120, "--seed", 4, "--out", out, *EVERY_OUTCOME,
               "--duplicate-rate", 0.2, "--reorder-rate", 0.3, "--delay-rate", 0.1, "--handler-failure-rate", 0.1,
               "--publish-retry-rate", 0.3)
    assert done.returncode == 0, done.stdout + done.stderr
    checked = cli("check", out)
    assert checked.returncode == 0, checked.stdout
    assert checked.stdout.strip().splitlines()[-1] == "check: 14 passed, 0 failed, 0 skipped"


def test_every_way_a_trip_fails_gives_back_what_it_held(faulty_trips):
    with sqlite3.connect(faulty_trips / "run.db") as db:
        failures = {t for (t,) in db.execute("SELECT detail_type FROM events WHERE detail_type LIKE '%Unavailable'"
                                              " OR detail_type = 'Payment_Declined'")}
        held = db.execute("SELECT COUNT(*) FROM state s JOIN state t ON t.service = 'trip' AND t.kind = 'trip'"
                          " AND t.key = s.key WHERE s.kind = 'booking' AND json_extract(s.item, '$.status') = 'held'"
                          " AND json_extract(t.item, '$.status') = 'CANCELLED'").fetchone()[0]
    assert failures == {"Flight_Unavailable", "Hotel_Unavailable", "Car_Unavailable", "Payment_Declined"}
    assert held == 0


def test_a_poisoned_trip_run_exits_1_naming_the_stuck_trips_and_check_finds_them_in_the_dead_letter_queue(tmp_path):
    out = tmp_path / "run"
    done = cli("run", "--catalog", TRIP, "--orders", 40, "--seed", 5, "--out", out, "--poison-rate", 0.05)
    assert done.returncode == 1
    assert "sagas did not end in a terminal outcome (CONFIRMED or CANCELLED)" in done.stderr and "trip-5-" in done.stderr
    results = {i.name: i for i in check_run(out)}
    assert results["no event lost"].passed and not results["every saga is terminal"].passed


def test_the_trips_own_invariants_catch_a_booking_kept_for_a_cancelled_trip(faulty_trips, tmp_path):
    for name in ("run.db", "catalog.json"):
        shutil.copy(faulty_trips / name, tmp_path / name)
    with sqlite3.connect(tmp_path / "run.db") as db:
        trip = db.execute("SELECT key FROM state WHERE service = 'flight' AND kind = 'booking'"
                          " AND json_extract(item, '$.status') = 'cancelled' ORDER BY key LIMIT 1").fetchone()[0]
        db.execute("UPDATE state SET item = json_set(item, '$.status', 'held') WHERE service = 'flight'"
                   " AND kind = 'booking' AND key = ?", (trip,))
    failed = {i.name: i for i in check_run(tmp_path) if not i.passed}
    assert any(o.startswith(trip) for o in failed["bookings given back"].offenders)


def test_a_bad_trip_request_is_refused_naming_its_field(tmp_path):
    requests = tmp_path / "trips.json"
    requests.write_text(json.dumps([
        {"trip_id": "trip-mine-1", "traveller_id": "trv-ada", "origin": "LHR", "destination": "BCN", "nights": 3,
         "card_token": "card_ok_0001"},
        {"trip_id": "trip-mine-2", "traveller_id": "trv-ada", "origin": "LHR", "destination": "BCN", "nights": 99,
         "card_token": "card_ok_0001"}]))
    done = cli("run", "--catalog", TRIP, "--orders-file", requests, "--out", tmp_path / "run", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["orders"]["by_status"] == {"CONFIRMED": 1}
    assert summary["orders"]["refusals"] == [{"order_id": "trip-mine-2", "field": "nights",
                                             "problem": "request refused: nights: must be a whole number from 1 to 21, got 99"}]


def test_an_outcome_rate_the_trip_workload_does_not_take_is_refused(tmp_path):
    done = cli("run", "--catalog", TRIP, "--payment-failure-rate", 0.2, "--out", tmp_path / "run")
    assert done.returncode == 2 and not (tmp_path / "run").exists()
    assert "outcome rate 'payment_failure'" in done.stderr and "car_unavailable" in done.stderr


def test_trips_run_on_moto_with_its_faults_and_pass_check(tmp_path):
    out = tmp_path / "run"
    done = cli("run", "--backend", "moto", "--catalog", TRIP, "--orders", 6, "--seed", 2, "--arrival-rate", 3,
               "--out", out, *EVERY_OUTCOME, "--duplicate-rate", 0.3, "--handler-failure-rate", 0.2)
    assert done.returncode == 0, done.stdout + done.stderr
    checked = cli("check", out)
    assert checked.returncode == 0, checked.stdout
