"""The saga's promises, checked on any run's ``run.db`` whatever backend or faults produced it.

Each invariant names the orders (or events) that break it; ``yafdp check DIR`` prints them and exits 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from yafdp.runtime import rundb
from yafdp.patterns import RuleSet
from yafdp.services.order import TERMINAL
CENT = 0.005


@dataclass(frozen=True)
class Invariant:
    name: str
    promise: str
    passed: bool
    offenders: tuple[str, ...] = ()
    checked: int = 0
    skipped: str | None = None


def check_run(path: str | Path) -> list[Invariant]:
    """Check every invariant on the run in ``path`` (a run folder or its ``run.db``).

    (Run in ``tests/integration/test_documented_examples.py``: a small run places every order and ends them all.)
    """
    db = rundb.open_run(path)
    try:
        info = rundb.get_info(db)
        return [
            every_order_terminal(db),
            no_order_charged_twice(db),
            refunds_match_charges(db),
            loyalty_nets_out(db, info),
            every_event_reached_its_targets(db, info),
        ]
    finally:
        db.close()


def every_order_terminal(db) -> Invariant:
    rows = db.execute("SELECT order_id, status FROM orders").fetchall()
    bad = [f"{o} ({s})" for o, s in rows if s not in TERMINAL]
    return Invariant("every order is terminal", "each order ends DELIVERY_SCHEDULED or CANCELLED", not bad, tuple(bad), len(rows))


def no_order_charged_twice(db) -> Invariant:
    rows = db.execute("SELECT order_id, COUNT(*) FROM payments WHERE kind = 'charge' GROUP BY order_id").fetchall()
    bad = [f"{o} ({n} charges)" for o, n in rows if n > 1]
    return Invariant("no double charge", "no order is charged more than once", not bad, tuple(bad), len(rows))


def refunds_match_charges(db) -> Invariant:
    rows = db.execute("""
        SELECT o.order_id, o.status,
               (SELECT COUNT(*) FROM payments p WHERE p.order_id = o.order_id AND p.kind = 'charge'),
               (SELECT COALESCE(SUM(amount), 0) FROM payments p WHERE p.order_id = o.order_id AND p.kind = 'charge'),
               (SELECT COUNT(*) FROM payments p WHERE p.order_id = o.order_id AND p.kind = 'refund'),
               (SELECT COALESCE(SUM(amount), 0) FROM payments p WHERE p.order_id = o.order_id AND p.kind = 'refund')
        FROM orders o""").fetchall()
    bad = []
    for order_id, status, charges, charged, refunds, refunded in rows:
        if status == "CANCELLED" and charges and (refunds != 1 or abs(refunded - charged) > CENT):
            bad.append(f"{order_id} (cancelled, charged {charged}, {refunds} refund(s) of {refunded})")
        elif status != "CANCELLED" and refunds:
            bad.append(f"{order_id} ({status} but refunded {refunded})")
        elif refunds and not charges:
            bad.append(f"{order_id} (refunded without a charge)")
    orphans = db.execute("SELECT DISTINCT order_id FROM payments WHERE order_id NOT IN (SELECT order_id FROM orders)").fetchall()
    bad += [f"{o} (money moved for an order that was never placed)" for (o,) in orphans]
    return Invariant("refunds match charges",
                     "a cancelled order that was charged has exactly one refund of the same amount; a delivered one has none",
                     not bad, tuple(bad), len(rows))


def loyalty_nets_out(db, info: dict) -> Invariant:
    name, promise = "loyalty nets out", "points stand (once) only for delivered orders: one per whole euro; others net zero"
    if "loyalty" not in info.get("services", ["loyalty"]):
        return Invariant(name, promise, True, skipped="this run has no Loyalty service")
    rows = db.execute("""
        SELECT o.order_id, o.status, o.amount,
               (SELECT COALESCE(SUM(points), 0) FROM loyalty l WHERE l.order_id = o.order_id),
               (SELECT COUNT(*) FROM loyalty l WHERE l.order_id = o.order_id AND l.points > 0)
        FROM orders o""").fetchall()
    bad = []
    for order_id, status, amount, net, awards in rows:
        expected = int(amount) if status == "DELIVERY_SCHEDULED" else 0
        if net != expected or awards > 1:
            bad.append(f"{order_id} ({status}: {net} points net, {awards} award(s), expected {expected})")
    return Invariant(name, promise, not bad, tuple(bad), len(rows))


def every_event_reached_its_targets(db, info: dict) -> Invariant:
    name = "no event lost"
    promise = "every published event reached every target whose rule matched it, or is in a dead-letter queue with its reason"
    rules = info.get("rules")
    if not rules:
        return Invariant(name, promise, False, ("run.db does not record its rules (run_info.rules)",))
    ruleset = RuleSet()
    for rule, pattern in rules.items():
        ruleset.add(rule, pattern)
    done = set(db.execute("SELECT event_id, rule FROM deliveries WHERE outcome = 'ok'"))
    dead = {(e, r): reason for e, r, reason in db.execute(
        "SELECT event_id, rule, error_code || ': ' || error_message FROM dead_letters"
        " WHERE redriven_at IS NULL AND kind != 'dropped'")}  # a dropped event is lost, whatever the reason
    bad, checked = [], 0
    for event_id, source, detail_type, detail in db.execute("SELECT event_id, source, detail_type, detail FROM events"):
        envelope = {"id": event_id, "source": source, "detail-type": detail_type, "detail": json.loads(detail)}
        for rule in ruleset.matching(envelope):
            checked += 1
            if (event_id, rule) in done:
                continue
            reason = dead.get((event_id, rule))
            if not reason or not reason.strip(": "):
                bad.append(f"{detail_type} {event_id} → {rule} (neither delivered nor dead-lettered)")
    return Invariant(name, promise, not bad, tuple(bad), checked)
