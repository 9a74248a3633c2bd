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
                                  request(order_id="ord-digits", amount=int(CARD.replace(" ", "")))]))
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
