"""The design exercise 06.customer-cancels: a failure event of the learner's own, its subscriptions and compensations,
proven by running them and auditing the run.

The customer cancels a paid order that the restaurant has not answered yet. :func:`starter_catalog` gives the
learner a copy of the shipped catalog with the Order service's side already written: an API entry point,
``cancel_by_customer``, that publishes the failure event ``Order_Cancelled_By_Customer`` (refusing an order past
``PAID``, or another customer's). Nobody reacts to it yet: which services must, with which compensation, is the
exercise (the refund, the restaurant's release, the order's status). :func:`cancellation_run` runs a learner's
catalog folder through a scenario that a wrong design fails, and :func:`cancellation_problems` says what is wrong.

The scenario (:data:`SCENARIO`), on the simulated AWS clock with the Classic bus: orders to Trattoria Silenzio (paid,
never answered by its restaurant) cancelled by their customer a few seconds after payment, every other one twice (two
taps); an outage of the Restaurant's queue at the start, so that every cancellation reaches the Restaurant service
before the payment it cancels (EventBridge retries the payment after the outage); publications sent twice by a
producer that did not hear PutEvents' answer (the same fact under two event ids); and orders to Pizzeria Napoli that
must be delivered untouched, one of which the customer tries to cancel after its courier was booked (the entry point
refuses it). Every choice is seeded: the same answer gives the same run.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from yafdp.catalog import CatalogError, load_catalog
from yafdp.errors import RequestRefusedError, YafdpError

EVENT = "Order_Cancelled_By_Customer"
ENTRYPOINT = "cancel_by_customer"
SCENARIO = {
    "seed": 6,
    "silent": 6,  # orders to res-silent, each cancelled by its customer after payment, placed every `spacing` seconds
    "napoli": 3,  # orders to res-napoli, delivered; the first one's customer tries to cancel once it is delivered
    "spacing": 0.5,  # seconds between two orders
    "cancel_after": 2.0,  # seconds after the order: the customer taps "cancel"; refused before payment, they retry
    "retry_after": 1.0,  # seconds: the customer's next tap after a refusal because the order is not paid yet
    "second_tap_after": 0.05,  # seconds: every other customer taps "cancel" twice (a double tap), the second this much later
    "late_cancel_after": 120.0,  # seconds after the order: the attempt to cancel a delivered order
    # EventBridge cannot reach the queue of this rule (the Restaurant's review of a paid order) during the first
    # `outage_seconds` of the run: the payment reaches the restaurant after the cancellation (its retries, with the
    # shipped retry policy, deliver it once the outage ends)
    "outage_rule": "restaurant-reviews-paid-order", "outage_seconds": 8.0,
    "publish_retry_rate": 0.5,  # the producer of every other unit of work publishes it twice (new event ids)
    "refund_within": 120.0,  # seconds from an accepted cancellation to its refund (the deadline is 900 s)
}
HOLDING = ("awaiting_answer", "confirmed")  # the Restaurant service's statuses of an order it still waits for or cooks

ORDER_MODULE = '''"""The Order service of the shipped catalog, and the customer's cancellation (exercise 06.customer-cancels)."""

from yafdp.errors import RequestRefusedError, YafdpError
from yafdp.services.order import place_order, track_status  # noqa: F401 - the shipped Order service's handlers


def cancel_by_customer(request, uow):
    """The customer cancels a paid order that the restaurant has not answered yet: Order_Cancelled_By_Customer is
    published. Refused (RequestRefusedError, nothing published) for an unknown order, another customer's, or an order
    past PAID (the restaurant answered, or the saga ended)."""
    order_id = request.get("order_id") if isinstance(request, dict) else None
    order = uow.get("order", order_id) if isinstance(order_id, str) else None
    if order is None:
        raise RequestRefusedError("order_id", f"no order {order_id!r}")
    if request.get("customer_id") != order["customer_id"]:
        raise RequestRefusedError("customer_id", "is not the customer of this order")
    if order["status"] != "PAID":
        raise RequestRefusedError("order_id", f"an order {order['status']} cannot be cancelled any more (only a PAID one)")
    uow.publish("Order_Cancelled_By_Customer", {"order_id": order_id, "customer_id": order["customer_id"],
                                                "restaurant_id": order["restaurant_id"], "reason": "customer_request"})
'''

_ID = {"type": "string", "pattern": "^{prefix}-[A-Za-z0-9-]{{1,60}}$"}


def _id(prefix: str) -> dict:
    return {**_ID, "pattern": _ID["pattern"].format(prefix=prefix)}


def starter_catalog(folder: str | Path) -> Path:
    """Copy the shipped catalog into ``folder`` (which must not exist, or be empty) and add the Order service's side of
    the exercise: the entry point ``cancel_by_customer`` (``services/order.py``) and the failure event
    ``Order_Cancelled_By_Customer`` it publishes (``services/order.json``), which nobody consumes yet. Returns the
    folder.

    Raises :class:`~yafdp.errors.RefusedError` (a :class:`RequestRefusedError`) when ``folder`` holds something: an
    earlier answer is never overwritten."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise RequestRefusedError("folder", f"{folder} is not empty: choose a new folder (nothing was overwritten)")
    shutil.copytree(load_catalog().path, folder, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    order = json.loads((folder / "services" / "order.json").read_text())
    order["entrypoints"].append({
        "name": ENTRYPOINT, "emits": [EVENT],
        "purpose": "The customer cancels a paid order the restaurant has not answered yet (refused past PAID)."})
    order["events"][EVENT] = {
        "description": "The customer cancelled a paid order before the restaurant answered it; what was done must be "
                       "undone.",
        "origin": "extension", "kind": "failure", "terminal": False,
        "schema": {"type": "object", "additionalProperties": False,
                   "required": ["order_id", "customer_id", "restaurant_id", "reason"],
                   "properties": {"order_id": _id("ord"), "customer_id": _id("cus"), "restaurant_id": _id("res"),
                                  "reason": {"type": "string", "enum": ["customer_request"]}}}}
    (folder / "services" / "order.json").write_text(json.dumps(order, indent=2) + "\n")
    (folder / "services" / "order.py").write_text(ORDER_MODULE)
    return folder


def edit_document(folder: str | Path, name: str, change) -> None:
    """Apply ``change(document)`` (it edits the dict in place) to the catalog file ``name`` of ``folder``
    (``"bus.json"`` or ``"services/<service>.json"``), and write it back."""
    path = Path(folder) / name
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2) + "\n")


def _requests() -> list[dict]:
    base = {"currency": "EUR", "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
    silent = [{**base, "order_id": f"ord-cx-silent-{n}", "customer_id": f"cus-cx-{n}", "restaurant_id": "res-silent",
               "amount": 12.0, "items": [{"item_id": "lasagne", "quantity": 1, "unit_price": 12.0}]}
              for n in range(1, SCENARIO["silent"] + 1)]
    napoli = [{**base, "order_id": f"ord-cx-napoli-{n}", "customer_id": f"cus-cn-{n}", "restaurant_id": "res-napoli",
               "amount": 17.0, "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}]}
              for n in range(1, SCENARIO["napoli"] + 1)]
    return silent + napoli


def cancellation_run(folder: str | Path, out: str | Path) -> dict:
    """Run :data:`SCENARIO` on the catalog in ``folder`` into the run folder ``out``. Returns ``{"accepted":
    {order_id: [run seconds of each accepted cancellation]}, "refused": {order_id: [reasons]}}``.

    Raises :class:`~yafdp.catalog.CatalogError` when the catalog does not load, and what the run raises."""
    from yafdp.runs import RunOptions, finish, start_saga
    from yafdp.runtime.faults import Faults

    catalog = load_catalog(folder)
    options = RunOptions(orders=0, seed=SCENARIO["seed"], out=Path(out), catalog_dir=Path(folder),
                         latency_model="aws-eu-west-1", faults=Faults(publish_retry_rate=SCENARIO["publish_retry_rate"]))
    started, bus = time.perf_counter(), start_saga(options)
    bus.inject_target_faults(lambda rule, attempt: ("THROTTLING", "Rate exceeded (an outage of the queue)")
                             if rule.endswith(SCENARIO["outage_rule"]) and bus.vt < SCENARIO["outage_seconds"] else None)
    accepted: dict[str, list[float]] = {}
    refused: dict[str, list[str]] = {}

    def cancel(request: dict, *, taps: int, retry: bool):
        """The customer taps "cancel": refused while the order is not paid yet (they try again a second later, when
        ``retry``), accepted once it is PAID (a second tap right after, when ``taps`` is 2)."""
        def action():
            try:
                bus.call("order", ENTRYPOINT, {"order_id": request["order_id"], "customer_id": request["customer_id"]})
            except RequestRefusedError as exc:
                refused.setdefault(request["order_id"], []).append(str(exc))
                if retry and "PLACED" in str(exc):
                    bus.schedule(bus.vt + SCENARIO["retry_after"], cancel(request, taps=taps, retry=True))
            else:
                accepted.setdefault(request["order_id"], []).append(bus.now())
                if taps > 1:
                    bus.schedule(bus.vt + SCENARIO["second_tap_after"], cancel(request, taps=taps - 1, retry=False))
        return action

    requests = _requests()
    for n, request in enumerate(requests):
        at = n * SCENARIO["spacing"]
        bus.schedule(at, lambda request=request: bus.call("order", catalog.start_entrypoint.name, request))
        if request["restaurant_id"] == "res-silent":  # every other customer taps twice
            bus.schedule(at + SCENARIO["cancel_after"], cancel(request, taps=1 + n % 2, retry=True))
    first_napoli = next(r for r in requests if r["restaurant_id"] == "res-napoli")
    bus.schedule(requests.index(first_napoli) * SCENARIO["spacing"] + SCENARIO["late_cancel_after"],
                 cancel(first_napoli, taps=1, retry=False))
    bus.run()
    finish(bus, options, options.out, time.perf_counter() - started)
    return {"accepted": accepted, "refused": refused}


def cancellation_problems(folder, out: str | Path) -> list[str]:
    """What is wrong with the catalog folder ``folder`` as an answer to 06.customer-cancels (none: right): it must
    load, pass ``yafdp lint``, and run :data:`SCENARIO` into ``out`` with every invariant of ``yafdp check`` holding,
    every accepted cancellation refunded once and soon, its order ``CANCELLED`` and released by its restaurant, and
    the delivered orders untouched. An order must not read an end (``saga.outcomes``, e.g. ``CANCELLED``) before its
    refund: the tracker's status would claim everything was undone while the money is still taken."""
    import sqlite3

    from yafdp.analysis import trace
    from yafdp.analysis.check import check_run
    from yafdp.analysis.lint import lint

    if not isinstance(folder, (str, Path)) or not Path(folder).is_dir():
        return ["answer with the path of your catalog folder (start from starter_catalog(folder))"]
    try:
        catalog = load_catalog(folder)
    except CatalogError as exc:
        return [f"the catalog does not load: {exc}"]
    if catalog.events.get(EVENT) is None or catalog.events[EVENT].service != "order":
        return [f"{EVENT} is not the Order service's event any more: start from starter_catalog(folder)"]
    problems = [f"yafdp lint: {finding}" for finding in lint(catalog)]
    try:
        seen = cancellation_run(folder, out)
    except YafdpError as refused:  # a handler the catalog names and nobody wrote, a run option refused, ...
        return problems + [f"the run was refused: {refused}"]
    accepted = seen["accepted"]
    if not accepted:
        return problems + ["no cancellation was accepted: the scenario could not run (is the entry point still there?)"]
    problems += [f"yafdp check: {result.name}: {'; '.join(result.offenders[:2]) or result.promise}"
                 for result in check_run(out) if not result.passed]
    run = trace.load_run(out)
    statuses = run.orders.set_index("order_id")["status"].to_dict()
    refunds = run.events[run.events["detail_type"] == "Payment_Refunded"]
    with sqlite3.connect(Path(out) / "run.db") as db:
        held = {key: json.loads(item).get("status") for key, item in db.execute(
            "SELECT key, item FROM state WHERE service = 'restaurant' AND kind = 'order'")}
    saga = catalog.saga  # when the tracker first read an end: its first delivery of an event leading to an outcome
    ending = [e for e, status in saga.status_after.items() if status in saga.outcomes]
    ended = run.deliveries[(run.deliveries["service"] == saga.tracker.service) & (run.deliveries["outcome"] == "ok")
                           & run.deliveries["detail_type"].isin(ending)].sort_values("finished_at").drop_duplicates(
        "order_id").set_index("order_id")
    wrong: dict[str, list[str]] = {}  # what is wrong -> the cancelled orders it is wrong for
    for order_id, times in sorted(accepted.items()):
        own = refunds[refunds["order_id"] == order_id]
        if statuses.get(order_id) != "CANCELLED":
            wrong.setdefault(f"left {statuses.get(order_id)}, not CANCELLED", []).append(order_id)
        if own.empty:
            wrong.setdefault("never refunded", []).append(order_id)
        elif own["published_at"].min() - min(times) > SCENARIO["refund_within"]:
            wrong.setdefault(f"refunded more than {SCENARIO['refund_within']:.0f} s after the cancellation: by the "
                             "saga's deadline, not by a compensation of the cancellation", []).append(order_id)
        if not own.empty and order_id in ended.index and ended.at[order_id, "finished_at"] < own["published_at"].min():
            early = ended.at[order_id, "detail_type"]
            wrong.setdefault(f"{saga.status_after[early]} (on {early}) before their refund: an end of the saga "
                             "(bus.json saga.outcomes) says everything was undone, so it must wait for the refund; "
                             "lead the cancellation to a status that is not an end", []).append(order_id)
        if held.get(order_id) in HOLDING:
            wrong.setdefault(f"still held by their restaurant ({held[order_id]}): never released", []).append(order_id)
    problems += [f"{len(orders)} of {len(accepted)} orders their customer cancelled were {what}, e.g. {orders[0]}"
                 for what, orders in wrong.items()]
    delivered = [o for o in statuses if o.startswith("ord-cx-napoli")]
    problems += [f"{o} should have been delivered untouched; it ended {statuses[o]}" for o in delivered
                 if statuses[o] != "DELIVERY_SCHEDULED"]
    return problems
