"""YAFDP's own invariants (the checker's hook, see :mod:`yafdp.analysis.check`): the money and the loyalty points.

Each fact is read from every record that holds it, and the records must agree: a charge is the Payment service's
ledger row, its charge record and the ``Payment_Success`` it announced; a refund, its ledger row, its refund record
and ``Payment_Refunded``; loyalty points, the Loyalty service's ledger entries, its per-order record and the events
it announced. Removing both sides of one pair still leaves a third witness.
"""

from __future__ import annotations

from collections import defaultdict

from yafdp.analysis.check import CENT, Invariant, Run, money

DELIVERED = "DELIVERY_SCHEDULED"


def no_double_charge(run: Run) -> Invariant:
    charges = defaultdict(int)
    for (order_id,) in run.db.execute("SELECT order_id FROM ledger WHERE kind = 'charge'"):
        charges[order_id] += 1
    bad = [f"{o} ({n} charges in the ledger)" for o, n in sorted(charges.items()) if n > 1]
    return Invariant("no double charge", "no order is charged more than once in the Payment service's ledger",
                     not bad, tuple(bad), len(charges))


def money_records_agree(run: Run) -> Invariant:
    """A charge (a refund) is in the ledger, in the Payment service's record and announced, or in none of them,
    with one amount."""
    bad = []
    witnesses = _money(run)
    for order_id in sorted(witnesses):
        for kind, event in (("charge", "Payment_Success"), ("refund", "Payment_Refunded")):
            seen = witnesses[order_id][kind]
            present = {where for where, amounts in seen.items() if amounts}
            if present and present != {"ledger", "record", event}:
                missing = sorted({"ledger", "record", event} - present)
                bad.append(f"{order_id} (a {kind} in {' and '.join(sorted(present))}, none in {' and '.join(missing)})")
            amounts = {round(a, 2) for amounts in seen.values() for a, _ in amounts if isinstance(a, (int, float))}
            if len(amounts) > 1:
                bad.append(f"{order_id} ({kind} amounts disagree: {', '.join(f'{a:.2f}' for a in sorted(amounts))})")
    return Invariant("money records agree", "each charge and refund is in the ledger, in the Payment service's "
                     "record and announced, with one amount", not bad, tuple(bad), len(witnesses))


def charges_are_the_orders_amount(run: Run) -> Invariant:
    orders, asked, witnesses = _orders(run), _asked(run), _money(run)
    bad = []
    for order_id, (status, amount, currency) in orders.items():
        charged = _amounts(witnesses.get(order_id), "charge")
        for charge, charge_currency in charged:
            if abs(charge - amount) > CENT or charge_currency not in (currency, None):
                bad.append(f"{order_id} (charged {money(charge, charge_currency)} for an order of {money(amount, currency)})")
            elif order_id in asked and (abs(charge - asked[order_id][0]) > CENT or currency != asked[order_id][1]):
                bad.append(f"{order_id} (charged {money(charge, charge_currency)}; "
                           f"{run.saga.start_event} asked for {money(*asked[order_id])})")
        if order_id in asked and (abs(amount - asked[order_id][0]) > CENT or currency != asked[order_id][1]):
            bad.append(f"{order_id} (the order record says {money(amount, currency)}; "
                       f"{run.saga.start_event} asked for {money(*asked[order_id])})")
        if status == DELIVERED and not charged:
            bad.append(f"{order_id} (delivered without a charge)")
    return Invariant("charges are the order's amount", "every charge is exactly its order's amount, in its "
                     "currency, as its order asked; nothing is delivered without one", not bad, tuple(bad), len(orders))


def refunds_match_charges(run: Run) -> Invariant:
    orders, witnesses = _orders(run), _money(run)
    bad = []
    for order_id, (status, _, _) in orders.items():
        charged, refunds = _amounts(witnesses.get(order_id), "charge"), _refunds(witnesses.get(order_id))
        charged_total, refunded_total = sum(a for a, _ in charged), sum(refunds)
        if status == DELIVERED:
            if refunds:
                bad.append(f"{order_id} (delivered but refunded {refunded_total:.2f})")
        elif charged and (len(refunds) != 1 or abs(refunded_total - charged_total) > CENT):
            bad.append(f"{order_id} ({status}, charged {charged_total:.2f}, {len(refunds)} refund(s) of {refunded_total:.2f})")
        elif refunds and not charged:
            bad.append(f"{order_id} ({status}, refunded {refunded_total:.2f} without a charge)")
    bad += [f"{o} (money moved for an order that was never placed)" for o in sorted(set(witnesses) - set(orders))]
    return Invariant("refunds match charges", "a charged order that did not end delivered (whatever its status) has "
                     "exactly one refund of the charge; a delivered one has none", not bad, tuple(bad), len(orders))


def loyalty_nets_out(run: Run) -> Invariant:
    name, promise = "loyalty nets out", ("points stand only for delivered orders, one per whole euro of the order, "
                                         "awarded once, the same in the Loyalty service's ledger, its records and "
                                         "its events; every other order nets zero")
    if "loyalty" not in run.catalog.services:
        return Invariant(name, promise, True, skipped="the run's catalog has no Loyalty service")
    orders = _orders(run)
    entries: dict[str, list[int]] = defaultdict(list)
    for item in run.items("loyalty", "entry").values():
        entries[item.get("order_id")].append(item.get("points"))
    announced: dict[str, list[int]] = defaultdict(list)
    for event in run.events_of("Loyalty_Points_Added", "Loyalty_Points_Reverted"):
        if not event["replay_name"]:
            sign = 1 if event["detail_type"] == "Loyalty_Points_Added" else -1
            announced[event["saga_id"]].append((event["published_by"] or event["event_id"],
                                                sign * event["detail"]["points"]))
    records = run.items("loyalty", "order")
    bad = []
    for order_id, (status, amount, _) in orders.items():
        points = entries.get(order_id, [])
        said = dict(announced.get(order_id, []))  # one announcement per outbox
        expected = int(amount) if status == DELIVERED else 0
        awards, reversals = sum(p > 0 for p in points), sum(p < 0 for p in points)
        if sum(points) != expected or awards > 1 or reversals > 1:
            bad.append(f"{order_id} ({status}: {sum(points)} points net from {awards} award(s) and {reversals} "
                       f"reversal(s); expected {expected})")
        if sorted(points) != sorted(said.values()):
            bad.append(f"{order_id} (the ledger's entries {sorted(points)} are not the points announced "
                       f"{sorted(said.values())})")
        record = records.get(order_id)
        awarded = max(points, default=0)
        if record is not None and record.get("state") in ("awarded", "reverted") and record.get("points") != awarded:
            bad.append(f"{order_id} (the Loyalty record says {record.get('points')} points, its ledger {awarded})")
    bad += [f"{o} (loyalty points for an order that was never placed)" for o in sorted(set(entries) - set(orders))]
    return Invariant(name, promise, not bad, tuple(bad), len(orders))


INVARIANTS = [no_double_charge, money_records_agree, charges_are_the_orders_amount, refunds_match_charges,
              loyalty_nets_out]


# ---------------------------------------------------------------- the records

def _orders(run: Run) -> dict[str, tuple[str, float, str | None]]:
    return {o: (s, a, c) for o, s, a, c in run.db.execute(
        "SELECT order_id, status, amount, currency FROM orders ORDER BY order_id")}


def _asked(run: Run) -> dict[str, tuple[float, str]]:
    return {e["saga_id"]: (e["detail"].get("amount"), e["detail"].get("currency"))
            for e in run.events_of(run.saga.start_event) if isinstance(e["detail"].get("amount"), (int, float))}


def _money(run: Run) -> dict[str, dict[str, dict[str, list]]]:
    """Every witness of every charge and refund, ``{order: {"charge"|"refund": {witness: [(amount, currency)]}}}``:
    the ledger's rows, the Payment service's charge and refund records, and the events it announced."""
    cache = run._cache.setdefault("yafdp-money", {})
    if cache:
        return cache
    found: dict = defaultdict(lambda: {k: defaultdict(list) for k in ("charge", "refund")})
    for order_id, kind, amount, currency in run.db.execute("SELECT order_id, kind, amount, currency FROM ledger"):
        found[order_id][kind]["ledger"].append((amount, currency))
    for kind in ("charge", "refund"):
        for order_id, item in run.items("payment", kind).items():
            found[order_id][kind]["record"].append((item.get("amount"), item.get("currency")))
    announced: dict = defaultdict(dict)  # (order, event) -> {announcement: (amount, currency)}: an outbox again is one
    for e in run.events_of("Payment_Success", "Payment_Refunded"):
        if not e["replay_name"]:
            announced[e["saga_id"], e["detail_type"]][e["published_by"] or e["event_id"]] = (
                e["detail"].get("amount"), e["detail"].get("currency"))
    for (order_id, event), seen in announced.items():
        found[order_id]["charge" if event == "Payment_Success" else "refund"][event].extend(seen.values())
    cache.update(found)
    return cache


def _amounts(witnesses: dict | None, kind: str) -> list[tuple[float, str | None]]:
    """The charges (or refunds) an order has: as many as its most telling witness holds (one removed, the others
    still say it happened)."""
    if not witnesses:
        return []
    seen = [amounts for amounts in witnesses[kind].values() if amounts]
    return max(seen, key=len) if seen else []


def _refunds(witnesses: dict | None) -> list[float]:
    return [a for a, _ in _amounts(witnesses, "refund")]
