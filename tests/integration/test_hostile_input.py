"""Input made to flood, inject or leak, through the real command line: what reaches a terminal cannot drive it,
a refusal quotes a value briefly and a secret not at all."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# What a terminal acts on: an escape sequence (here: set the window title), a bell, a carriage return that
# overwrites the line, a newline that forges a line of output, and a direction override that reorders the text.
HOSTILE = "\x1b]0;owned\x07\r\nFAKE: all checks passed\u202e"
UNSHOWN = ("\x1b", "\x07", "\r", "\u202e", "\x9b")
CARD = "4242 4242 4242 4242"


def cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yafdp.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def request(**changes) -> dict:
    return {"order_id": "ord-ok-1", "customer_id": "cus-ada", "restaurant_id": "res-napoli",
            "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}], "amount": 17.0,
            "currency": "EUR", "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre", **changes}


def assert_nothing_a_terminal_acts_on(text: str) -> None:
    assert not [c for c in UNSHOWN if c in text], ascii(text)
    assert "FAKE" not in "\n".join(line for line in text.splitlines() if line.startswith("FAKE"))


def test_values_from_a_file_or_an_option_reach_the_terminal_escaped(tmp_path):
    """The issue's case: "merged 2 identical requests for <order_id>" printed the orders file's escape sequences
    and newlines raw, and so did --out paths."""
    orders = tmp_path / "orders.json"
    hostile = request(order_id=f"ord-x{HOSTILE}")
    orders.write_text(json.dumps([hostile, hostile, request()]))
    out = tmp_path / f"run{HOSTILE}"
    result = cli("run", "--orders-file", orders, "--out", out)
    assert result.returncode == 0, result.stderr
    assert_nothing_a_terminal_acts_on(result.stdout + result.stderr)
    merged = [line for line in result.stdout.splitlines() if "merged" in line]
    assert merged == ["  merged 2 identical requests for ord-x\\x1b]0;owned\\x07\\r\\nFAKE: all checks passed"
                      "\\u202e into one"]
    assert "wrote " in result.stdout and "\\x1b]0;owned" in result.stdout.splitlines()[-1]
    again = cli("run", "--orders-file", orders, "--out", out)  # refused: the one line names the folder, escaped
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1
    assert_nothing_a_terminal_acts_on(again.stderr)
    checked = cli("check", out)  # values from the run's database, printed by the checker
    assert_nothing_a_terminal_acts_on(checked.stdout + checked.stderr)


def test_a_refusal_quotes_no_card_number_and_no_huge_value(tmp_path):
    """The issue's case: a card number typed into payment_token was echoed whole to the terminal, summary.json and
    run.db, and a 2 MB customer_id made a 2-million-character line."""
    orders = tmp_path / "orders.json"
    huge = "cus-" + "x" * 2_000_000
    orders.write_text(json.dumps([request(order_id="ord-card", payment_token=CARD),
                                  request(order_id="ord-card-2", payment_token=CARD.replace(" ", "")),
                                  request(order_id="ord-huge", customer_id=huge),
                                  request(order_id="ord-digits", amount=int(CARD.replace(" ", ""))),
                                  request(order_id="ord-good")]))  # one placed: a run that places none exits 1
    out = tmp_path / "run"
    result = cli("run", "--orders-file", orders, "--out", out)
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert CARD not in said and CARD.replace(" ", "") not in said and "4242 4242" not in said
    assert max(map(len, said.splitlines())) < 300
    refused = {line.split(":")[0].strip(): line for line in result.stdout.splitlines() if "refused ord-" in line}
    assert "payment_token: (19 characters, not shown: a secret)" in refused["refused ord-card"]
    assert f"'cus-{'x' * 60}…' (2,000,004 characters)" in refused["refused ord-huge"]
    summary = (out / "summary.json").read_text()
    assert CARD not in summary and CARD.replace(" ", "") not in summary and len(summary) < 20_000
    with sqlite3.connect(out / "run.db") as db:
        recorded = json.dumps(db.execute("SELECT * FROM refusals").fetchall()
                              + db.execute("SELECT * FROM run_info WHERE key = 'summary'").fetchall())
    assert CARD not in recorded and CARD.replace(" ", "") not in recorded and len(recorded) < 20_000


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli("run", "--orders", 30, "--seed", 2, "--store", "file", "--out", out).returncode == 0
    return out


DEEP = "[" * 990 + "]" * 990
FIRST_EVENT = "(SELECT MIN(seq) FROM events)"
# (name, the SQL that tampers with a finished run's database, what the one line says)
MALFORMED = [
    ("detail-nested-990-deep", f"UPDATE events SET detail = '{{\"order_id\": \"ord-1\", \"n\": {DEEP}}}' WHERE seq = "
                               f"{FIRST_EVENT}", "nests 991 deep, more than a run's records may (64)"),
    ("detail-a-list", f"UPDATE events SET detail = '[1, 2]' WHERE seq = {FIRST_EVENT}",
     "has a detail that is not a JSON object"),
    ("detail-not-json", f"UPDATE events SET detail = '{{oops' WHERE seq = {FIRST_EVENT}",
     "has a detail that is not JSON"),
    ("published-at-text", f"UPDATE events SET published_at = 'soon' WHERE seq = {FIRST_EVENT}",
     "has no finite publication time"),
    ("state-item-a-list", "UPDATE state SET item = '[]' WHERE service = 'order' AND kind = 'order' AND key = (SELECT"
                          " MIN(key) FROM state WHERE kind = 'order')", "the order service's order ord-"),
    ("state-item-nested-990-deep", f"UPDATE state SET item = '{{\"x\": {DEEP}}}' WHERE service = 'payment' AND "
                                   "kind = 'charge' AND key = (SELECT MIN(key) FROM state WHERE kind = 'charge')",
     "nests 991 deep"),
    ("request-nested-990-deep", f"UPDATE requests SET request = '{DEEP}' WHERE seq = 1", "request #1 nests 990 deep"),
    ("delivery-outcome-unknown", "UPDATE deliveries SET outcome = 'maybe' WHERE rowid = 1",
     "has an outcome no delivery has"),
    ("dead-letter-attributes-a-string", "INSERT INTO dead_letters (event_id, rule, target, rule_arn, target_arn, "
     "error_code, error_message, exhausted_retry_condition, retry_attempts, dead_lettered_at, attributes) VALUES "
     "('e-1', 'r', 't', 'a', 'b', 'c', 'd', 'e', 1, 0.0, '\"x\"')", "the dead letter of event e-1 has attributes"),
    ("schedule-request-not-json", "INSERT INTO schedules (grp, name, request) VALUES ('default', 'deadline-ord-1', "
     "'{oops')", "the schedule default/deadline-ord-1 has a request that is not JSON"),
    ("schedule-request-a-list", "INSERT INTO schedules (grp, name, request) VALUES ('default', 'deadline-ord-1', "
     "'[]')", "the schedule default/deadline-ord-1 has a request that is not a JSON object"),
    ("schedule-fired-not-a-flag", "INSERT INTO schedules (grp, name, request, fired) VALUES ('default', "
     "'deadline-ord-1', '{}', 'x')", "the schedule default/deadline-ord-1 has a fired flag that is neither 0 nor 1"),
]


@pytest.mark.parametrize("name, tamper, said", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_every_reader_of_a_run_folder_refuses_a_malformed_record_in_one_line(finished_run, tmp_path, name, tamper, said):
    """The issue's case: an event detail nested 990 deep gave `RecursionError (a bug)`, and a detail that is a JSON
    list passed `yafdp check`. Every reader (check, resume, fit-profile; the notebooks' loaders) says one line."""
    import shutil

    from yafdp.analysis.costs import usage_from_run
    from yafdp.analysis.trace import load_run
    from yafdp.runtime.rundb import MalformedRunError

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    with sqlite3.connect(out / "run.db") as db:
        db.execute("PRAGMA ignore_check_constraints = ON")  # a tamperer's own tools need not keep them
        db.execute(tamper)
    db.close()
    before = (out / "run.db").read_bytes()
    for command in (["check", out], ["resume", "--out", out], ["fit-profile", out, "--out", tmp_path / "p.json"]):
        result = cli(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and said in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr and "a bug" not in result.stderr
    assert (out / "run.db").read_bytes() == before and not (tmp_path / "p.json").exists()
    for loader in (load_run, usage_from_run):
        with pytest.raises(MalformedRunError, match=said.replace("(", r"\(").replace(")", r"\)")):
            loader(out)


def test_the_payment_token_does_not_travel_with_the_events(tmp_path):
    """The issue's case: the token went in Order_Initiated to the Notification service, its queue and the event
    archive. Now only the workload as the client sent it (`requests`, what a resume sends again) holds it; every
    event, delivery and service state holds the provider's payment method reference instead, and the saga runs
    as before (a declined token still ends the order cancelled)."""
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps([request(order_id="ord-paid", payment_token="tok_visa_SECRET123"),
                                  request(order_id="ord-declined", payment_token="tok_declined_SECRET456")]))
    out = tmp_path / "run"
    result = cli("run", "--orders-file", orders, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["orders"]["by_status"] == {"CANCELLED": 1, "DELIVERY_SCHEDULED": 1}
    assert cli("check", out).returncode == 0
    with sqlite3.connect(out / "run.db") as db:
        travelled = json.dumps([db.execute(f"SELECT * FROM {table}").fetchall()
                                for table in ("events", "deliveries", "dead_letters", "state", "refusals")])
        sent = json.dumps(db.execute("SELECT request FROM requests").fetchall())
        details = [json.loads(d) for (d,) in db.execute("SELECT detail FROM events WHERE detail_type = 'Order_Initiated'")]
    assert "SECRET" not in travelled and "tok_" not in travelled
    assert "tok_visa_SECRET123" in sent  # the workload itself, as given
    assert sorted(d["payment_method"].rpartition("_")[0] for d in details) == ["pm_accepted", "pm_declined"]
