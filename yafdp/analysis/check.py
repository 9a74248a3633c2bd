"""The saga's promises, checked on any run's ``run.db`` whatever backend or faults produced it.

Each invariant names the orders (or events) that break it; ``yafdp check DIR`` prints them and exits 1. The
checker trusts nothing a run could have got wrong: money is read from the Payment service's ledger (one row per
charge and per refund), the events and the requests are counted on their own, the views are its own definitions
(not the ones stored in ``run.db``), and routing comes from the catalog's rules, not from what ``run_info`` says.
A ``run.db`` it cannot read raises :class:`MalformedRunError`, one line naming the file and the problem. It reads
every table in one read transaction: one snapshot of the run, even while another process writes it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from yafdp.errors import RunFolderError
from yafdp.patterns import RuleSet
from yafdp.runs import folder
from yafdp.runtime import rundb
from yafdp.services.order import STATUS_AFTER, TERMINAL

CENT = 0.005
START_EVENT = "Order_Initiated"
CHARGED_EVENT, REFUNDED_EVENT, AWARDED_EVENT = "Payment_Success", "Payment_Refunded", "Loyalty_Points_Added"
DELIVERED = "DELIVERY_SCHEDULED"
# The events that move an order to each status (the Order service's rule): a status no event of the order leads
# to was not reached.
LEADS_TO = {status: {e for e, s in STATUS_AFTER.items() if s == status} for status in set(STATUS_AFTER.values())}
BASE_TABLES, MalformedRunError = rundb.BASE_TABLES, rundb.MalformedRunError  # one check for every reader of a run


class UnfinishedRunError(RunFolderError):
    """A run that has not finished (``finished_only``): in progress in another process, or stopped before its end."""


@dataclass(frozen=True)
class Invariant:
    name: str
    promise: str
    passed: bool
    offenders: tuple[str, ...] = ()
    checked: int = 0
    skipped: str | None = None


@dataclass
class Run:
    """What the invariants read: the database (with this module's own views), ``run_info``, the routing rules
    and where they came from, and whether the run had a Loyalty service."""

    path: Path
    db: sqlite3.Connection
    info: dict
    rules: dict | None
    rules_source: str
    loyalty: bool
    fifo: frozenset[str] | None = None  # a Custom Event Bus's FIFO subscribers (from the catalog), None: unknown
    custom: bool = False  # a Custom Event Bus run (see _custom_bus)


def check_run(path: str | Path, catalog_dir: str | Path | None = None, *, finished_only: bool = False) -> list[Invariant]:
    """Check every invariant on the run in ``path`` (a run folder or its ``run.db``), all of them on one snapshot.

    Routing is checked against the rules of the catalog the run was made with (``run_info.catalog_dir``, or
    ``catalog_dir`` when given). Raises :class:`MalformedRunError` when ``run.db`` cannot be read as a run. With
    ``finished_only`` (``yafdp check``), a run that has not finished raises :class:`UnfinishedRunError` instead of
    failing invariants it has not had the time to keep: one whose folder another process holds (in progress), or
    one stopped before its end (``run_info.status`` still ``running``), which says how to finish it. Without it,
    an unfinished run is checked as far as it got (a notebook looks at its run before it redrives and finishes it).

    (Run in ``tests/integration/test_documented_examples.py``: a small run places every order and ends them all.)
    """
    if finished_only:  # first: a memory-store run in progress has no run.db until it ends
        _refuse_in_progress(rundb.run_db_path(path).parent)
    db, db_path = _open(path)
    try:
        db.execute("BEGIN")  # deferred: the first read below takes the snapshot that every later read sees
        info = _well_formed(db, db_path)
        if finished_only:
            _refuse_unfinished(db_path.parent, info)
        custom = _custom_bus(db, info)
        rules, source, loyalty, fifo = _routing(info, catalog_dir, "custom" if custom else "classic")
        run = Run(db_path, db, info, rules, source, loyalty, fifo, custom)
        try:
            # Looked up by name each time, so a test can switch one off and show that the suite notices.
            return [globals()[name](run) for name in INVARIANTS]
        except sqlite3.DatabaseError as exc:
            raise MalformedRunError(f"{db_path}: {exc}") from None
    finally:
        db.close()


INVARIANTS = ("every_order_terminal", "no_double_charge", "charges_are_the_orders_amount", "refunds_match_charges",
              "loyalty_nets_out", "every_request_accounted_for", "state_matches_events", "every_event_reached_its_targets",
              "fifo_subscribers_keep_publish_order", "deduplicated_publishes_stored_nothing")
DEDUPLICATION_WINDOW_SECONDS = 300  # a Custom Event Bus's deduplication window (UG "Ordering and deduplication")


# ---------------------------------------------------------------- the invariants

def every_order_terminal(run: Run) -> Invariant:
    rows = run.db.execute("SELECT order_id, status FROM orders ORDER BY order_id").fetchall()
    bad = [f"{o} ({s})" for o, s in rows if s not in TERMINAL]
    return Invariant("every order is terminal", "each order ends DELIVERY_SCHEDULED or CANCELLED", not bad, tuple(bad), len(rows))


def no_double_charge(run: Run) -> Invariant:
    charges = Counter(o for (o,) in run.db.execute("SELECT order_id FROM ledger WHERE kind = 'charge'"))
    successes = _events_per_order(run.db, CHARGED_EVENT)
    bad = [f"{o} ({n} charges in the ledger)" for o, n in sorted(charges.items()) if n > 1]
    bad += [f"{o} ({n} {CHARGED_EVENT} events)" for o, n in sorted(successes.items()) if n > 1]
    return Invariant("no double charge", f"no order is charged more than once (in the ledger, and in {CHARGED_EVENT} events)",
                     not bad, tuple(bad), len(charges.keys() | successes.keys()))


def charges_are_the_orders_amount(run: Run) -> Invariant:
    orders = _orders(run.db)
    initiated = _initiated(run.db)
    charges = _ledger(run.db, "charge")
    bad = []
    for order_id, (status, amount, currency) in orders.items():
        asked = initiated.get(order_id)
        for charge_amount, charge_currency in charges.get(order_id, ()):
            if abs(charge_amount - amount) > CENT or charge_currency != currency:
                bad.append(f"{order_id} (charged {_money(charge_amount, charge_currency)} for an order of {_money(amount, currency)})")
            elif asked is not None and (abs(charge_amount - asked[0]) > CENT or charge_currency != asked[1]):
                bad.append(f"{order_id} (charged {_money(charge_amount, charge_currency)}; "
                           f"{START_EVENT} asked for {_money(*asked)})")
        if status == DELIVERED and not charges.get(order_id):
            bad.append(f"{order_id} (delivered without a charge)")
    return Invariant("charges are the order's amount",
                     "every charge is exactly its order's amount, in its currency; nothing is delivered without one",
                     not bad, tuple(bad), len(orders))


def refunds_match_charges(run: Run) -> Invariant:
    orders = _orders(run.db)
    charges, refunds = _ledger(run.db, "charge"), _ledger(run.db, "refund")
    bad = []
    for order_id, (status, _, _) in orders.items():
        charged, refunded = charges.get(order_id, []), refunds.get(order_id, [])
        charged_total, refunded_total = sum(a for a, _ in charged), sum(a for a, _ in refunded)
        if status == DELIVERED:
            if refunded:
                bad.append(f"{order_id} (delivered but refunded {refunded_total:.2f})")
        elif charged and (len(refunded) != 1 or abs(refunded_total - charged_total) > CENT
                          or {c for _, c in refunded} != {c for _, c in charged}):
            bad.append(f"{order_id} ({status}, charged {charged_total:.2f}, {len(refunded)} refund(s) of {refunded_total:.2f})")
        elif refunded and not charged:
            bad.append(f"{order_id} ({status}, refunded {refunded_total:.2f} without a charge)")
    for order_id in sorted((charges.keys() | refunds.keys()) - orders.keys()):
        bad.append(f"{order_id} (money moved for an order that was never placed)")
    return Invariant("refunds match charges",
                     "a charged order that did not end delivered (whatever its status) has exactly one refund of the "
                     "charge; a delivered one has none", not bad, tuple(bad), len(orders))


def loyalty_nets_out(run: Run) -> Invariant:
    name, promise = "loyalty nets out", ("points stand only for delivered orders, one per whole euro of the order, "
                                         "awarded once; every other order nets zero")
    if not run.loyalty:
        return Invariant(name, promise, True, skipped="this run has no Loyalty service")
    orders = _orders(run.db)
    entries: dict[str, list[int]] = defaultdict(list)
    for order_id, points in run.db.execute("SELECT order_id, points FROM loyalty"):
        entries[order_id].append(points)
    awarded = _events_per_order(run.db, AWARDED_EVENT)
    bad = []
    for order_id, (status, amount, _) in orders.items():
        points = entries.get(order_id, [])
        expected = int(amount) if status == DELIVERED else 0
        awards, reversals = sum(p > 0 for p in points), sum(p < 0 for p in points)
        if sum(points) != expected or awards > 1 or reversals > 1 or awarded.get(order_id, 0) > 1:
            bad.append(f"{order_id} ({status}: {sum(points)} points net from {awards} award(s) and {reversals} "
                       f"reversal(s), {awarded.get(order_id, 0)} {AWARDED_EVENT} event(s); expected {expected})")
    bad += [f"{o} (loyalty points for an order that was never placed)" for o in sorted(entries.keys() - orders.keys())]
    return Invariant(name, promise, not bad, tuple(bad), len(orders))


def every_request_accounted_for(run: Run) -> Invariant:
    orders = {o: (customer, amount) for o, customer, amount in run.db.execute("SELECT order_id, customer_id, amount FROM orders")}
    refused = {seq for (seq,) in run.db.execute("SELECT request FROM refusals WHERE request IS NOT NULL")}
    requests = run.db.execute("SELECT seq, order_id, request, same_as FROM requests ORDER BY seq").fetchall()
    texts = {seq: text for seq, _, text, _ in requests}
    bad = []
    for seq, order_id, text, same_as in requests:
        who = f"request #{seq} ({order_id or 'no order id'})"
        if same_as is not None:
            if texts.get(same_as) != text or same_as >= seq:
                bad.append(f"{who} (merged with request #{same_as}, which is not an earlier identical request)")
        elif seq not in refused:
            placed = orders.get(order_id)
            if placed is None:
                bad.append(f"{who} (neither placed nor refused)")
            elif not _same_order(json.loads(text), *placed):
                bad.append(f"{who} (placed, but the order record differs from the request)")
    wanted = run.info.get("orders_requested")
    if not run.info.get("orders_file") and isinstance(wanted, int) and wanted != len(requests):
        bad.append(f"(workload) run_info says {wanted} orders were requested; run.db holds {len(requests)} requests")
    return Invariant("every request accounted for",
                     "every order the workload requested was placed as asked, or refused with its reason",
                     not bad, tuple(bad), len(requests))


def state_matches_events(run: Run) -> Invariant:
    orders = _orders(run.db)
    kinds: dict[str, set[str]] = defaultdict(set)
    for order_id, detail_type in run.db.execute("SELECT order_id, detail_type FROM events WHERE order_id IS NOT NULL"):
        kinds[order_id].add(detail_type)
    bad = []
    for order_id, (status, _, _) in orders.items():
        published = kinds.get(order_id, set())
        if START_EVENT not in published:
            bad.append(f"{order_id} (no {START_EVENT} event)")
        elif status != "PLACED" and not (LEADS_TO.get(status, set()) & published):
            bad.append(f"{order_id} ({status}, but none of its events leads there: {', '.join(sorted(published))})")
    for kind, event in (("charge", CHARGED_EVENT), ("refund", REFUNDED_EVENT)):
        for order_id in sorted(_ledger(run.db, kind)):
            if order_id in orders and event not in kinds.get(order_id, set()):
                bad.append(f"{order_id} (a {kind} in the ledger, but no {event} event)")
    bad += [f"{o} (events for an order with no order record)" for o in sorted(kinds.keys() - orders.keys())]
    return Invariant("state matches events",
                     "every placed order has its events, its status is one its events lead to, and every charge "
                     "and refund was announced", not bad, tuple(bad), len(orders))


def every_event_reached_its_targets(run: Run) -> Invariant:
    name = "no event lost"
    promise = ("every published event reached every target whose rule (from the catalog) matched it, "
               "or is in a dead-letter queue with its reason")
    if run.rules is None:
        return Invariant(name, promise, False, (run.rules_source,))
    ruleset = RuleSet()
    for rule, pattern in run.rules.items():
        ruleset.add(rule, pattern)
    done = set(run.db.execute("SELECT event_id, rule FROM deliveries WHERE outcome = 'ok'"))
    dead = {(e, r): reason for e, r, reason in run.db.execute(
        "SELECT event_id, rule, error_code || ': ' || error_message FROM dead_letters"
        " WHERE redriven_at IS NULL AND kind != 'dropped'")}  # a dropped event is lost, whatever the reason
    bad, checked, seen = [], 0, set()
    if "other rules" in run.rules_source:
        bad.append(f"(rules) {run.rules_source}")
    for event_id, order_id, source, detail_type, detail in run.db.execute(
            "SELECT event_id, order_id, source, detail_type, detail FROM events ORDER BY seq"):
        seen.add(event_id)
        envelope = {"id": event_id, "source": source, "detail-type": detail_type, "detail": json.loads(detail)}
        for rule in ruleset.matching(envelope):
            checked += 1
            if (event_id, rule) in done:
                continue
            reason = dead.get((event_id, rule))
            if not reason or not reason.strip(": "):
                bad.append(f"{order_id or '(no order)'}: {detail_type} {event_id} → {rule} (neither delivered nor dead-lettered)")
    strays = sorted({e for e, _ in done} - seen)
    bad += [f"(event {e}) delivered, but not in the archive of published events" for e in strays]
    return Invariant(name, f"{promise} [{run.rules_source}]", not bad, tuple(bad), checked)


def fifo_subscribers_keep_publish_order(run: Run) -> Invariant:
    name = "FIFO order per event group"
    promise = ("every FIFO subscriber of a Custom Event Bus handed each event group's (order's) events to its "
               "handler in publish order (aws:SequenceNumber), replays and redriven dead letters aside")
    if not run.custom:
        return Invariant(name, promise, True, skipped="a Classic bus run: its rules promise no order")
    if run.fifo is None:
        return Invariant(name, promise, False, (run.rules_source,))
    # An event a subscriber gave up on left a hole in its group (the group moved on, UG retry): redriven later,
    # it comes after its successors by design, and is left out, as replays are.
    rows = run.db.execute(
        "SELECT d.rule, e.event_group_id, e.sequence_number, e.detail_type, e.order_id FROM deliveries d"
        " JOIN events e ON e.event_id = d.event_id WHERE d.outcome = 'ok' AND COALESCE(d.delivery_type, 'LIVE') = 'LIVE'"
        " AND NOT EXISTS (SELECT 1 FROM dead_letters l WHERE l.event_id = d.event_id AND l.rule = d.rule)"
        " ORDER BY d.delivered_at, d.rowid").fetchall()
    last: dict[tuple[str, str], tuple[str, str]] = {}
    bad, checked = [], 0
    for subscriber, group, sequence, detail_type, order_id in rows:
        if subscriber not in run.fifo or group is None:
            continue
        checked += 1
        before = last.get((subscriber, group))
        if before is not None and (sequence or "") < before[0]:
            bad.append(f"{order_id or group} → {subscriber}: {detail_type} (#{int(sequence or 0)}) was handled after "
                       f"{before[1]} (#{int(before[0])}), which was published after it")
        last[(subscriber, group)] = (sequence or "", detail_type)
    return Invariant(name, promise, not bad, tuple(bad), checked)


def deduplicated_publishes_stored_nothing(run: Run) -> Invariant:
    name = "deduplication at publish"
    promise = (f"on a Custom Event Bus, no two stored events share a DeduplicationId (in one event group) within "
               f"{DEDUPLICATION_WINDOW_SECONDS} s, and every publish answered DEDUPLICATED repeats an event stored "
               f"less than {DEDUPLICATION_WINDOW_SECONDS} s before it")
    if not run.custom:
        return Invariant(name, promise, True, skipped="a Classic bus run: it does not deduplicate")
    stored: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
    for event_id, group, key, at in run.db.execute(
            "SELECT event_id, event_group_id, deduplication_id, ingested_at FROM events"
            " WHERE deduplication_id IS NOT NULL ORDER BY ingested_at"):
        stored[(group, key)].append((at, event_id))
    bad = []
    for (group, key), events in stored.items():
        for (a, first), (b, second) in zip(events, events[1:]):
            if b - a < DEDUPLICATION_WINDOW_SECONDS:
                bad.append(f"{group or '(no group)'}: events {first} and {second} share DeduplicationId {key!r} "
                           f"{b - a:.1f} s apart: the copy should have been DEDUPLICATED, not stored and delivered")
    deduplicated = run.db.execute("SELECT event_id, deduplication_id, event_group_id, ingested_at FROM deduplicated")
    count = 0
    for event_id, key, group, at in deduplicated:
        count += 1
        original = next((t for t, e in stored.get((group, key), ()) if e == event_id), None)
        if original is None or not 0 <= at - original < DEDUPLICATION_WINDOW_SECONDS:
            bad.append(f"{group or '(no group)'}: a publish answered DEDUPLICATED as a copy of {event_id}, but no "
                       f"event with DeduplicationId {key!r} was stored in the {DEDUPLICATION_WINDOW_SECONDS} s before it")
    return Invariant(name, promise, not bad, tuple(bad), count + sum(len(v) for v in stored.values()))


def _custom_bus(db, info: dict) -> bool:
    """A Custom Event Bus run: run_info says so, or its events carry the bus's sequence numbers (the evidence a
    tampered run_info cannot remove)."""
    if info.get("bus") == "custom":
        return True
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    return "sequence_number" in columns and db.execute(
        "SELECT 1 FROM events WHERE sequence_number IS NOT NULL LIMIT 1").fetchone() is not None


# ---------------------------------------------------------------- reading the run

def _refuse_in_progress(where: Path) -> None:
    holder = folder.lock_holder(where)
    if holder is None:
        return
    recorded = re.fullmatch(r"process (\d+) \((.*)\)", holder)
    who = f"pid {recorded[1]}: {recorded[2]}" if recorded else holder
    raise UnfinishedRunError(f"run in progress ({who}) in {where}: check it once it has finished")


def _refuse_unfinished(where: Path, info: dict) -> None:
    status = info.get("status")
    if status not in ("running", "resuming"):
        return
    stopped = f"{where} holds an unfinished run (status {status!r}: it was stopped before its end)"
    if info.get("store") == "file" and info.get("style", "choreography") == "choreography":
        raise UnfinishedRunError(f"{stopped}: `yafdp resume --out {where}` finishes it, then check it")
    raise UnfinishedRunError(f"{stopped}, which cannot be resumed: run it again with `yafdp run --force --out {where}`")


def _open(path: str | Path) -> tuple[sqlite3.Connection, Path]:
    return rundb.open_run(path), rundb.run_db_path(path)


def _well_formed(db: sqlite3.Connection, db_path: Path) -> dict:
    """``run_info``, once ``run.db`` has every table and no value a run cannot write; this module's own views
    over them (a view stored in ``run.db`` is not trusted)."""
    def refuse(problem: str):
        raise MalformedRunError(f"{db_path}: {problem}")

    try:  # rundb.open_run has seen every table of BASE_TABLES; this first read in the transaction takes the snapshot
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        for name, select in rundb.views():
            db.execute(f"CREATE TEMP VIEW {name} AS {select}")
        bad = db.execute("SELECT key FROM run_info WHERE NOT json_valid(value) LIMIT 1").fetchone()
        if bad:
            refuse(f"run_info {bad[0]!r} is not JSON")
        info = rundb.get_info(db)
        if not info:
            refuse("run_info is empty: the run was stopped before it started")
        bad = db.execute("SELECT service, kind, key FROM state WHERE NOT json_valid(item) LIMIT 1").fetchone()
        if bad:
            refuse(f"the {bad[0]} service's item {bad[1]} {bad[2]!r} is not JSON")
        bad = db.execute("SELECT event_id FROM events WHERE NOT json_valid(detail) LIMIT 1").fetchone()
        if bad:
            refuse(f"event {bad[0]}'s detail is not JSON")
        numeric = "typeof({0}) IN ('integer', 'real')"
        for what, query in (
            ("order {0} has no status or no numeric amount",
             f"SELECT order_id FROM orders WHERE status IS NULL OR NOT {numeric.format('amount')}"),
            ("the ledger has a row for order {0} without kind charge/refund, order or numeric amount",
             f"SELECT order_id FROM ledger WHERE order_id IS NULL OR kind NOT IN ('charge', 'refund')"
             f" OR kind IS NULL OR NOT {numeric.format('amount')}"),
            ("a loyalty entry of order {0} has no whole number of points",
             "SELECT order_id FROM loyalty WHERE order_id IS NULL OR typeof(points) != 'integer'"),
            ("request #{0} has no JSON request", "SELECT seq FROM requests WHERE NOT json_valid(request)"),
        ):
            row = db.execute(query + " LIMIT 1").fetchone()
            if row:
                refuse(what.format(row[0]))
    except sqlite3.DatabaseError as exc:
        refuse(str(exc))
    return info


def _routing(info: dict, catalog_dir, bus: str) -> tuple[dict | None, str, bool, frozenset[str] | None]:
    """The rules (a Custom Event Bus's subscribers) to check routing with, where they come from, whether the run
    had a Loyalty service, and which subscribers are FIFO (a Custom Event Bus run).

    The catalog the run names (or ``catalog_dir``) decides; its rules must be the ones the run recorded (by
    hash). Only when that catalog cannot be loaded is ``run_info``'s copy used, and only if it still has the
    hash recorded with it.
    """
    from yafdp.catalog import CatalogError, load_catalog
    from yafdp.plan import build_plan
    from yafdp.plan.model import DEFAULT_PREFIX

    stored = info.get("rules") if isinstance(info.get("rules"), dict) else None
    recorded_hash = info.get("rules_sha256")
    where = catalog_dir if catalog_dir is not None else info.get("catalog_dir")
    try:
        catalog = load_catalog(where).without(*info.get("exclude_services", ()))
    except CatalogError as exc:
        if stored is not None and recorded_hash == rundb.rules_hash(stored):
            return stored, f"rules from run.db's copy, its hash intact: the catalog did not load ({exc})", \
                "loyalty" in info.get("services", ()), None
        return None, f"cannot check routing: the catalog did not load ({exc}) and run_info has no intact copy", True, None
    routes = build_plan(catalog, info.get("prefix") or DEFAULT_PREFIX, bus=bus).routes
    rules = {r.name: dict(r.pattern) for r in routes}
    fifo = frozenset(r.name for r in routes if getattr(r, "fifo", False))
    label = f"rules of the catalog {where or '(shipped)'}"
    if recorded_hash is not None and recorded_hash != rundb.rules_hash(rules):
        label += ("; run_info records other rules than these: if the run used another catalog, "
                  "check it with --catalog")
    return rules, label, "loyalty" in catalog.services, fifo


def _orders(db) -> dict[str, tuple[str, float, str | None]]:
    return {o: (s, a, c) for o, s, a, c in db.execute("SELECT order_id, status, amount, currency FROM orders ORDER BY order_id")}


def _initiated(db) -> dict[str, tuple[float, str]]:
    return {o: (a, c) for o, a, c in db.execute(
        "SELECT order_id, json_extract(detail, '$.amount'), json_extract(detail, '$.currency') FROM events"
        " WHERE detail_type = ?", (START_EVENT,))}


def _ledger(db, kind: str) -> dict[str, list[tuple[float, str]]]:
    rows: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for order_id, amount, currency in db.execute("SELECT order_id, amount, currency FROM ledger WHERE kind = ?", (kind,)):
        rows[order_id].append((amount, currency))
    return rows


def _events_per_order(db, detail_type: str) -> Counter:
    """How many times each order's ``detail_type`` was announced: events published again from the same outbox
    (at-least-once publication after a crash) are one announcement; any other event counts on its own."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    key = "COALESCE(published_by, event_id)" if "published_by" in columns else "event_id"  # a run.db from before it
    return Counter(dict(db.execute(f"SELECT order_id, COUNT(DISTINCT {key}) FROM events"
                                   " WHERE detail_type = ? AND order_id IS NOT NULL GROUP BY order_id", (detail_type,))))


def _same_order(request, customer_id, amount) -> bool:
    if not isinstance(request, dict):
        return False
    asked = request.get("amount")
    return (request.get("customer_id") == customer_id and isinstance(asked, (int, float))
            and not isinstance(asked, bool) and abs(asked - amount) <= CENT)


def _money(amount: float, currency: str | None) -> str:
    return f"{amount:.2f} {currency or '(no currency)'}"
