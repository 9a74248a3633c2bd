"""The workbook's exercises: a question per chapter or two, a check that says what is wrong with an answer,
and a worked solution a teacher can render (``yafdp workbook --solutions`` runs every chapter with them).

In a notebook::

    exercises.ask("06.idempotent-refund")            # the question
    answer = ...                                      # the learner's answer
    exercises.check("06.idempotent-refund", answer)  # ✓, or what is wrong

A check never raises on a wrong answer: it prints what is wrong and returns False, so a chapter still runs
to its end. ``check(key, solution(key))`` holds for every exercise (the test suite proves it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import networkx as nx

from yafdp.catalog import Catalog, load_catalog


@dataclass(frozen=True)
class Exercise:
    """One exercise: its question, a check returning the problems of an answer (none: correct), and a worked
    solution (a function returning the answer) with what it teaches."""

    key: str
    question: str
    check: Callable[..., list[str]]
    solution: Callable[..., Any]
    explanation: str
    context: tuple[str, ...] = field(default=())  # what check and solution need besides the answer (e.g. "run")
    # The events of the shipped catalog the question is about: on a catalog without them (the workbook run on your
    # own saga, `yafdp workbook --catalog DIR`) the exercise says so and is skipped.
    about: tuple[str, ...] = field(default=())

    def applies_to(self, catalog: Catalog | None) -> bool:
        """Whether the question means anything on ``catalog`` (None: the shipped one)."""
        return catalog is None or set(self.about) <= set(catalog.events)


EXERCISES: dict[str, Exercise] = {}


def exercise(key: str, question: str, explanation: str, context: tuple[str, ...] = (), *, solution: Callable,
             about: tuple[str, ...] = ()):
    """Register ``check`` (the decorated function) with its worked ``solution``; ``about``: the shipped catalog's
    events the question names."""
    def register(check):
        EXERCISES[key] = Exercise(key, question, check, solution, explanation, context, about)
        return check
    return register


def _catalog(context: dict) -> Catalog:
    return context.get("catalog") or load_catalog()


_KINDS = {int: "a whole number", float: "a number", str: "a text", dict: "a dict", list: "a list"}


def _described(value) -> str:
    """What a learner gave, in words: ``the text '3'``, ``the number 3.5``, ``True``, ``a list [...]``."""
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"the number {value!r}"
    if isinstance(value, (bool, type(None))):
        return repr(value)
    return f"{_KINDS.get(type(value), 'a ' + type(value).__name__)} {value!r}"


def _shape_problems(answer: dict, kinds: dict[str, type | tuple[type, ...]]) -> list[str]:
    """What is wrong with the shape of a dict answer before its values are compared: each key of ``kinds`` that is
    missing, each key not asked for, each value of another type than ``kinds`` says (``int``: a whole number,
    never a bool; ``float``: any number; a tuple: any of them). Empty when the shape is right.

    Examples
    --------
    >>> _shape_problems({"delivered": "3"}, {"delivered": int, "no courier": int})
    ["'no courier' is missing", "delivered: a whole number is expected, got the text '3'"]
    """
    problems = [f"{key!r} is missing" for key in kinds if key not in answer]
    problems += [f"{key!r} is not asked for (the keys are {', '.join(map(repr, kinds))})" for key in answer
                 if key not in kinds]
    for key, kind in kinds.items():
        allowed = kind if isinstance(kind, tuple) else (kind,)
        value = answer.get(key)
        numbers = float in allowed and isinstance(value, (int, float))
        if key in answer and (isinstance(value, bool) or not (numbers or isinstance(value, allowed))):
            expected = " or ".join(_KINDS.get(k, k.__name__) for k in allowed)
            problems.append(f"{key}: {expected} is expected, got {_described(value)}")
    return problems


# ---- 01 · Identify the events ------------------------------------------------------------------------------

def _nothing_to_undo(context) -> set[str]:
    catalog = _catalog(context)
    return {e.name for e in catalog.events.values() if e.kind == "failure"
            and not any(s.path != "observe" for s in catalog.consumers(e.name))}


def _01_solution(**context):
    catalog = _catalog(context)
    return sorted(e.name for e in catalog.events.values() if e.kind == "failure"
                  and not any(s.path != "observe" for s in catalog.consumers(e.name)))


@exercise("01.nothing-to-undo",
          "Which failure events need no compensation at all (nothing had changed yet when they happened)? "
          "Answer with a list of event names.",
          "A compensation undoes an earlier step. When the first step that changes the world fails, there is "
          "nothing to undo: the failure only has observers.",
          solution=_01_solution)
def _01_check(answer, **context) -> list[str]:
    expected = _nothing_to_undo(context)
    if not isinstance(answer, (list, tuple, set)):
        return ["answer with a list of event names, e.g. ['Some_Event']"]
    given = set(answer)
    unknown = sorted(given - set(_catalog(context).events))
    problems = [f"{e!r} is not an event of the catalog" for e in unknown]
    problems += [f"{e!r} sets a compensation in motion: see tables.failure_paths(catalog)" for e in sorted(given - expected - set(unknown))]
    if expected - given:
        problems.append("one is missing: a failure whose only listeners observe it")
    return problems


def _01b_solution(**context):
    return {"order_id": "ord-ex-1", "customer_id": "cus-ada", "restaurant_id": "res-napoli",
            "items": [{"item_id": "margherita", "quantity": 3, "unit_price": 8.5}],
            "amount": 25.5, "currency": "EUR", "payment_method": "pm_accepted_3f6c2a9e51d07b84",
            "delivery_zone": "zone-centre"}


@exercise("01.valid-order",
          "Write the detail of an Order_Initiated event for three margheritas from res-napoli, at the price its menu "
          "asks (data/marketplace.json): it must pass the event's schema and the Order service's own checks (each "
          "unit price is the menu's, the amount is what the items add up to).",
          "The schema is the contract: the project's publishers refuse a detail that breaks it before anything "
          "is published (EventBridge itself validates no schema). A schema cannot know the menu, though: that each "
          "unit price is the restaurant's and the amount their sum is the Order service's business rule "
          "(yafdp.services.order.validate_order), checked before Order_Initiated is published.",
          about=("Order_Initiated",), solution=_01b_solution)
def _01b_check(answer, **context) -> list[str]:
    from yafdp.catalog.marketplace import load_marketplace
    from yafdp.services.order import OrderRejectedError, validate_order

    catalog = _catalog(context)
    if not isinstance(answer, dict):
        return ["answer with a dict, the event's detail"]
    try:
        catalog.validate_detail("Order_Initiated", answer)
    except Exception as exc:  # fastjsonschema says which field
        return [f"the schema refuses it: {exc}"]
    # The detail carries the card's payment method, not the customer's token (validate_order exchanges one for the
    # other): its menu and amount rules are checked on the request the detail stands for, with a test token.
    request = {**{k: v for k, v in answer.items() if k != "payment_method"}, "payment_token": "tok_visa_4242"}
    try:
        validate_order(request, load_marketplace(catalog.path))
    except OrderRejectedError as exc:
        return [f"the Order service refuses it: {exc}"]
    problems = []
    if answer["restaurant_id"] != "res-napoli":
        problems.append(f"the margheritas come from res-napoli, not {answer['restaurant_id']}")
    if {i["item_id"] for i in answer["items"]} != {"margherita"}:
        problems.append("the order should hold margheritas only")
    if sum(i["quantity"] for i in answer["items"]) != 3:
        problems.append("the order should hold three margheritas (quantity adds up to 3)")
    return problems


# ---- 02 · Map the subscriptions ----------------------------------------------------------------------------

def _02_solution(**context):
    catalog = _catalog(context)
    return sorted({s.service for s in catalog.consumers("Delivery_Failed") if s.path != "observe"})


@exercise("02.who-compensates",
          "Which services act (not only observe) when Delivery_Failed is published? Answer with a list of "
          "service names.",
          "Read the Delivery_Failed row of the subscription matrix: every 'compensation' cell is a service "
          "that undoes its own step, in parallel, without knowing of the others.",
          about=("Delivery_Failed",), solution=_02_solution)
def _02_check(answer, **context) -> list[str]:
    expected = set(_02_solution(**context))
    if not isinstance(answer, (list, tuple, set)):
        return ["answer with a list of service names"]
    given = set(answer)
    problems = [f"{s!r} does not act on Delivery_Failed (it observes it, or does not listen)" for s in sorted(given - expected)]
    problems += [f"a service is missing: {len(expected - given)} more act on it" for _ in [1] if expected - given]
    return problems


def _02b_solution(**context):
    return {"source": ["yafdp.payment"], "detail-type": ["Payment_Success", "Payment_Failed"]}


@exercise("02.pattern",
          "Write an EventBridge event pattern that matches Payment_Success and Payment_Failed, and no other "
          "event of the catalog.",
          "A rule names what it wants on source and detail-type; EventBridge matches each field against a "
          "list of allowed values (an OR within a field, an AND across fields).",
          about=("Payment_Success", "Payment_Failed"), solution=_02b_solution)
def _02b_check(answer, **context) -> list[str]:
    from yafdp.patterns import compile_pattern

    catalog = _catalog(context)
    if not isinstance(answer, dict):
        return ["answer with a dict, an event pattern"]
    try:
        pattern = compile_pattern(answer)
    except Exception as exc:
        return [f"EventBridge would refuse the pattern: {exc}"]
    matched = {name for name, ev in catalog.events.items()
               if pattern.matches({"source": ev.source, "detail-type": name, "detail": {}})}
    wanted = {"Payment_Success", "Payment_Failed"}
    problems = [f"it also matches {e}" for e in sorted(matched - wanted)]
    problems += [f"it does not match {e}" for e in sorted(wanted - matched)]
    return problems


# ---- 03 · Deploy -------------------------------------------------------------------------------------------

OUTAGE = {"seconds": 600, "orders": 5, "seed": 3}  # EventBridge cannot reach any queue for the first ten minutes


def _03_solution(**context):
    return {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 3600}


def run_with_target_faults(catalog: Catalog, out: str, *, orders: int, seed: int, faults_for) -> "object":
    """Place ``orders`` orders that all succeed on the local bus while ``faults_for(bus)`` (``(rule, attempt) ->
    (ERROR_CODE, ERROR_MESSAGE) or None``) fails EventBridge's deliveries to the targets, run them to the end and
    return the run (:class:`yafdp.analysis.trace.Run`): what the exercises 03.retry-policy and 04.predict-dlq run."""
    import time

    from yafdp.analysis import trace
    from yafdp.runs import RunOptions, finish, start_saga
    from yafdp.runs.workload import outcome_rates, planned_requests

    options = RunOptions(orders=0, seed=seed, out=out, catalog=catalog)
    started, bus = time.perf_counter(), start_saga(options)
    bus.inject_target_faults(faults_for(bus))
    entry = catalog.start_entrypoint
    for planned in planned_requests(catalog, orders, seed, {name: 0.0 for name in outcome_rates(catalog)}):
        bus.call(entry.service, entry.name, planned.request)
    bus.run()
    finish(bus, options, options.out, time.perf_counter() - started)
    return trace.load_run(out)


def retry_policy_run(policy: dict, out: str, catalog: Catalog | None = None, outage=OUTAGE) -> dict:
    """Run a few orders while EventBridge's deliveries to every queue are throttled for ``outage["seconds"]`` (an
    outage of the targets), with ``policy`` as every rule target's retry policy. Returns ``{"dead letters",
    "statuses"}``: how many events were dead-lettered, and how many orders ended in each status."""
    import dataclasses

    catalog = catalog or load_catalog()
    changed = dataclasses.replace(catalog, bus=dataclasses.replace(catalog.bus, retry_policy=dict(policy)))
    run = run_with_target_faults(changed, out, orders=outage["orders"], seed=outage["seed"], faults_for=lambda bus: (
        lambda rule, attempt: ("THROTTLING", "Rate exceeded (an outage of the targets)")
        if bus.vt < outage["seconds"] else None))
    return {"dead letters": len(run.dead_letters), "statuses": run.orders["status"].value_counts().to_dict()}


@exercise("03.retry-policy",
          "EventBridge cannot reach the saga's queues for ten minutes (every delivery to a target is throttled, as in "
          "an outage). Choose the retry policy of every rule target ({'MaximumRetryAttempts': …, "
          "'MaximumEventAgeInSeconds': …}, AWS's names and ranges) so that no event is dead-lettered by such an "
          "outage, yet an event EventBridge cannot deliver within an hour goes to the dead-letter queue rather than "
          "being retried for a day. The check runs five orders through the outage with your policy.",
          "EventBridge retries with exponential backoff (here from 1 s, doubling, capped at 256 s, with jitter), so "
          "ten minutes take about a dozen retries: the shipped 4 retries give up after about half a minute and "
          "dead-letter every event, while AWS's defaults (185 retries, 24 hours) would keep a broken step silent for "
          "a day. The event age, not the count, is the limit that says how long a saga may wait.",
          context=("out_dir",), about=("Order_Initiated",), solution=_03_solution)
def _03_check(answer, **context) -> list[str]:
    import tempfile

    if not isinstance(answer, dict):
        return ["answer with a dict {'MaximumRetryAttempts': …, 'MaximumEventAgeInSeconds': …}"]
    problems = _shape_problems(answer, {"MaximumRetryAttempts": int, "MaximumEventAgeInSeconds": int})
    if problems:
        return problems
    retries, age = answer["MaximumRetryAttempts"], answer["MaximumEventAgeInSeconds"]
    if not 0 <= retries <= 185:
        problems.append(f"MaximumRetryAttempts must be from 0 to 185 (RetryPolicy), got {retries!r}")
    if not 60 <= age <= 86400:
        problems.append(f"MaximumEventAgeInSeconds must be from 60 to 86,400 s (RetryPolicy), got {age!r}")
    if problems:
        return problems
    if age > 3600:
        problems.append(f"an event EventBridge cannot deliver is retried for {age:,} s: more than the hour after which "
                        "it should be in the dead-letter queue")
    result = retry_policy_run(answer, f"{context.get('out_dir') or tempfile.mkdtemp()}/runs/03_retry_exercise",
                              _catalog(context))
    if result["dead letters"]:
        problems.append(f"{result['dead letters']} event(s) were dead-lettered during the {OUTAGE['seconds']} s outage "
                        f"(orders ended {result['statuses']}): the policy gives up before the outage ends")
    return problems


# ---- 04 · Fire orders --------------------------------------------------------------------------------------

LOCKED_OUT = {"orders": 3, "seed": 7, "rule": "notification-tells-customer"}


def locked_out_run(out: str, catalog: Catalog | None = None, setup=LOCKED_OUT) -> dict:
    """Run ``setup["orders"]`` orders that all succeed while Notification's queue refuses its own rule (a queue policy
    that forgot it: EventBridge has no permission to send there). Returns what the dead-letter queues hold and how the
    orders ended, as the exercise 04.predict-dlq asks for them."""
    from yafdp.analysis import trace

    run = run_with_target_faults(catalog or load_catalog(), out, orders=setup["orders"], seed=setup["seed"],
                                 faults_for=lambda bus: lambda rule, attempt: (
                                     "NO_PERMISSIONS", "the queue's policy does not allow sqs:SendMessage from this rule")
                                 if rule.endswith(setup["rule"]) else None)
    letters = trace.dead_letter_messages(run)
    return {"dead letters": len(letters), "kinds": sorted(set(letters["kind"])),
            "ERROR_CODE": sorted(set(letters["ERROR_CODE"].dropna())) if "ERROR_CODE" in letters else [],
            "RETRY_ATTEMPTS": sorted(set(letters["RETRY_ATTEMPTS"].dropna())) if "RETRY_ATTEMPTS" in letters else [],
            "statuses": run.orders["status"].value_counts().to_dict()}


def _04_solution(**context):
    catalog = _catalog(context)
    told = len([e for e in catalog.matched_events(catalog.subscription(LOCKED_OUT["rule"]))
                if e in ("Order_Initiated", "Payment_Success", "Restaurant_Confirmed_Order", "Delivery_Scheduled")])
    return {"dead letters": told * LOCKED_OUT["orders"], "kind": "rule", "ERROR_CODE": "NO_PERMISSIONS",
            "RETRY_ATTEMPTS": 0, "statuses": {"DELIVERY_SCHEDULED": LOCKED_OUT["orders"]}}


@exercise("04.predict-dlq",
          "Predict, then verify. Notification's queue policy forgets its rule, so EventBridge may not send there; three "
          "orders are placed, none of which fails. Predict what the dead-letter queues will hold and how the orders "
          "end: {'dead letters': how many, 'kind': 'rule' or 'queue' (whose DLQ), 'ERROR_CODE': …, 'RETRY_ATTEMPTS': …, "
          "'statuses': {status: orders}}. The check runs it and compares.",
          "A missing permission is EventBridge's failure to reach the target, so the rule's DLQ holds the event, with "
          "EventBridge's attributes, at once: it does not retry NO_PERMISSIONS (RETRY_ATTEMPTS 0). Each delivered order "
          "publishes four events Notification listens to, so twelve dead letters; and the orders still end delivered, "
          "because Notification only observes: nothing in the saga waits for it.",
          context=("out_dir",),
          about=("Order_Initiated", "Payment_Success", "Restaurant_Confirmed_Order", "Delivery_Scheduled"),
          solution=_04_solution)
def _04_check(answer, **context) -> list[str]:
    import tempfile

    if not isinstance(answer, dict):
        return ["answer with a dict {'dead letters': …, 'kind': …, 'ERROR_CODE': …, 'RETRY_ATTEMPTS': …, 'statuses': …}"]
    problems = _shape_problems(answer, {"dead letters": int, "kind": str, "ERROR_CODE": str, "RETRY_ATTEMPTS": int,
                                        "statuses": dict})
    if problems:
        return problems
    seen = locked_out_run(f"{context.get('out_dir') or tempfile.mkdtemp()}/runs/04_predict_exercise", _catalog(context))
    if answer["dead letters"] != seen["dead letters"]:
        problems.append(f"dead letters: you predicted {answer['dead letters']!r}, the run left {seen['dead letters']}: "
                        "count the events Notification's rule matches per delivered order")
    if [answer["kind"]] != seen["kinds"]:
        problems.append(f"kind: you predicted {answer['kind']!r}, they are in {seen['kinds']}: who failed, EventBridge "
                        "reaching the queue, or the function reading it?")
    if [answer["ERROR_CODE"]] != seen["ERROR_CODE"]:
        problems.append(f"ERROR_CODE: you predicted {answer['ERROR_CODE']!r}, the DLQ says {seen['ERROR_CODE']}")
    if [str(answer["RETRY_ATTEMPTS"])] != seen["RETRY_ATTEMPTS"]:
        problems.append(f"RETRY_ATTEMPTS: you predicted {answer['RETRY_ATTEMPTS']!r}, the DLQ says "
                        f"{seen['RETRY_ATTEMPTS']}: which failures does EventBridge retry?")
    if answer["statuses"] != seen["statuses"]:
        problems.append(f"statuses: you predicted {answer['statuses']!r}, the orders ended {seen['statuses']}")
    return problems


# ---- 05 · Latency ------------------------------------------------------------------------------------------

def _05_solution(**context):
    from yafdp.analysis.graph import causal_graph

    causes = causal_graph(_catalog(context))
    start = _catalog(context).bus.start_event
    return {"delivered": nx.shortest_path_length(causes, start, "Delivery_Scheduled"),
            "no courier": nx.shortest_path_length(causes, start, "Delivery_Failed") + 1}


@exercise("05.hops",
          "How many hops (event deliveries one after another) follow Order_Initiated before the saga's last "
          "step, for a delivered order and for an order no courier could take (its last step is the refund)? "
          "Answer {'delivered': …, 'no courier': …}.",
          "The saga's length is its chain of hops: payment, restaurant, delivery for a delivered order; one more "
          "(the refund after Delivery_Failed) when no courier can take it. On AWS each hop costs tens to "
          "hundreds of milliseconds, so the chain, not the handlers, sets the end-to-end latency there.",
          about=("Order_Initiated", "Delivery_Scheduled", "Delivery_Failed"), solution=_05_solution)
def _05_check(answer, **context) -> list[str]:
    expected = _05_solution(**context)
    if not isinstance(answer, dict):
        return ["answer with a dict {'delivered': …, 'no courier': …}"]
    return _shape_problems(answer, dict.fromkeys(expected, int)) or [
        f"{k}: {answer[k]} hops is not right; follow the arrows of the causal graph from Order_Initiated"
        for k, v in expected.items() if answer[k] != v]


# ---- 06 · Failures -----------------------------------------------------------------------------------------

class MemoryUnitOfWork:
    """A unit of work over a dict, for trying a handler by hand: what it stored, published and scheduled (the
    :class:`~yafdp.runtime.unit_of_work.UnitOfWork` a backend gives, without a backend). ``world`` and ``saga`` are
    what the handler sees as ``uow.world`` and ``uow.saga`` (the catalog's), ``service`` as ``uow.service``;
    ``now()`` is the run's clock in seconds (``clock``, 0.0: the start of a run), unless ``now`` is given."""

    def __init__(self, world=None, saga=None, now=None, service: str = "exercise"):
        self.items: dict[tuple[str, str], dict] = {}
        self.published: list[tuple[str, dict]] = []
        self.schedules: list[tuple] = []  # what it asked EventBridge Scheduler for, as BufferedUnitOfWork keeps it
        self.world, self.saga, self.service = world, saga, service
        self.clock = 0.0
        self._now = now

    def now(self) -> float:
        return self._now() if self._now is not None else self.clock

    def get(self, kind: str, key: str) -> dict | None:
        return self.items.get((kind, key))

    def put(self, kind: str, key: str, item: dict) -> None:
        self.items[(kind, key)] = item

    def add(self, kind: str, key: str, item: dict) -> bool:
        if (kind, key) in self.items:
            return False
        self.items[(kind, key)] = item
        return True

    def publish(self, detail_type: str, detail: dict, *, source: str | None = None) -> None:
        self.published.append((detail_type, detail))

    def schedule(self, name: str, after_seconds: float, detail_type: str, detail: dict) -> None:
        self.schedules.append(("create", name, after_seconds, detail_type, detail))

    def cancel_schedule(self, name: str) -> None:
        self.schedules.append(("delete", name))


def _envelope(event_id: str, detail_type: str, detail: dict, catalog: Catalog) -> dict:
    """An event as a handler receives it (its envelope), for the checks that call a handler by hand."""
    from yafdp.runtime.envelope import make_envelope

    return make_envelope(event_id, catalog.events[detail_type].source, detail_type, detail, 1_767_225_600.0)


def _refund(event, uow):
    order_id = event["detail"]["order_id"]
    charge = uow.get("charge", order_id)  # what Payment charged: the amount, currency and customer to refund
    if charge is None or uow.get("refund", order_id):  # nothing charged, or refunded already (the business key)
        return
    refund = {"order_id": order_id, "customer_id": charge["customer_id"], "refund_id": "ref-" + order_id[4:],
              "amount": charge["amount"], "currency": charge["currency"], "reason": event["detail-type"]}
    uow.put("refund", order_id, refund)
    uow.publish("Payment_Refunded", refund)


def _06_solution(**context):
    return _refund


REFUND_CASES = {  # what a refund must survive: the failures that reach it, each published twice with new ids
    "a failed delivery, published twice": ("Delivery_Failed", "Delivery_Failed"),
    "a rejection, then a failed delivery of the same order": ("Restaurant_Rejected_Order", "Delivery_Failed"),
}


@exercise("06.idempotent-refund",
          "Write a handler refund(event, uow) for Payment: on a failure event (Restaurant_Rejected_Order or "
          "Delivery_Failed) it refunds what the order was charged (uow.get('charge', order_id) holds the charge: "
          "amount, currency, customer_id) with one Payment_Refunded per order, even when the failure is published "
          "twice under two event ids (a producer that retried its PutEvents call), or two failures reach it.",
          "Two layers of idempotency: the bus records each (rule, event id) it processed, which skips a "
          "duplicate delivery of the same event; but a republished event has a new id, so only a business key "
          "(one refund per order id) stops a second refund. And the refund is the charge's, read from Payment's own "
          "state: a failure event does not even carry the amount.",
          about=("Restaurant_Rejected_Order", "Delivery_Failed", "Payment_Refunded"), solution=_06_solution)
def _06_check(answer, **context) -> list[str]:
    from yafdp.catalog.marketplace import load_marketplace
    from yafdp.services.order import validate_order
    from yafdp.services.payment import charge_order

    if not callable(answer):
        return ["answer with a function refund(event, uow)"]
    catalog = _catalog(context)
    world = load_marketplace(catalog.path)
    problems: list[str] = []
    for case, failures in REFUND_CASES.items():
        order = validate_order({"order_id": "ord-ex-6", "customer_id": "cus-ada", "restaurant_id": "res-napoli",
                                "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}], "amount": 17.0,
                                "currency": "EUR", "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"},
                               world)  # the Order_Initiated detail, as the Order service publishes it
        uow = MemoryUnitOfWork(world, catalog.saga, service="payment")
        charge_order(_envelope("evt-0", "Order_Initiated", order, catalog), uow)  # Payment charged the order first
        details = {"Restaurant_Rejected_Order": {"order_id": "ord-ex-6", "restaurant_id": "res-napoli",
                                                 "customer_id": "cus-ada", "reason": "restaurant_closed"},
                   "Delivery_Failed": {"order_id": "ord-ex-6", "customer_id": "cus-ada", "restaurant_id": "res-napoli",
                                       "reason": "no_courier_available"}}
        uow.published.clear()
        try:
            for n, failure in enumerate(failures, 1):
                answer(_envelope(f"evt-{n}", failure, details[failure], catalog), uow)
        except Exception as exc:
            problems.append(f"{case}: the handler raised {type(exc).__name__}: {exc}")
            continue
        refunds = [d for e, d in uow.published if e == "Payment_Refunded"]
        if len(refunds) != 1:
            problems.append(f"{case}: Payment_Refunded published {len(refunds)} times for one order; key the check "
                            "on the order id, not the event id")
            continue
        try:
            catalog.validate_detail("Payment_Refunded", refunds[0])
        except Exception as exc:
            problems.append(f"{case}: its Payment_Refunded breaks the event's schema: {exc}")
        if refunds[0].get("amount") != 17.0:
            problems.append(f"{case}: it refunded {refunds[0].get('amount')!r}, the order was charged 17.0")
    return problems


def _notify_solution(**context):
    from yafdp.services.notification import MESSAGES

    saga = _catalog(context).saga  # the statuses and their ranks, as the catalog's saga declares them

    def notify(event, uow):
        detail, detail_type = event["detail"], event["detail-type"]
        order_id = detail["order_id"]
        # where this event puts the story (Order_Initiated: its start)
        status = saga.status_after.get(detail_type, saga.initial_status)
        told = uow.get("told", order_id)  # how far the customer has been told the story
        if told is not None and saga.ranks[status] <= saga.ranks[told["status"]]:
            return  # it would move the story backwards, or nowhere: say nothing
        uow.put("told", order_id, {"status": status})
        uow.add("message", f"{order_id}#{detail_type}", {
            "order_id": order_id, "customer_id": detail.get("customer_id"), "detail_type": detail_type,
            "text": MESSAGES[detail_type].format_map(detail)})

    return notify


NOTIFIER_CHECK = {"orders": 60, "seed": 4, "reorder_rate": 0.6, "max_delay": 5.0}


@exercise("06.notifier",
          "Notification tells the customer one message per event, in the order the events reach it, so on the "
          "Classic bus a cancelled order's last message can be \"The restaurant is cooking\". Write notify(event, uow) "
          "for a notifier in its place (it keeps Notification's subscription and texts: "
          "yafdp.services.notification.MESSAGES) whose last message to every customer agrees with how the order "
          "ended, however the events are reordered.",
          "A notifier cannot ask the Order service (services own their state), but it can keep its own view of the "
          "order's progress from the events it hears, moving forward only, as the Order service does with its "
          "status, and stay silent on an event that would move the story backwards. The other fix is ordered "
          "delivery: on a Custom Event Bus a FIFO subscriber hands it each order's events in publish order "
          "(chapter 08); on the Classic bus only the handler can keep the story straight.",
          context=("out_dir",), about=("Order_Initiated", "Payment_Refunded"), solution=_notify_solution)
def _notify_check(answer, **context) -> list[str]:
    import tempfile

    from yafdp.analysis import trace
    from yafdp.catalog.inline import add_service, copy_of
    from yafdp.runs import RunOptions, run_saga
    from yafdp.runtime.faults import Faults

    if not callable(answer):
        return ["answer with a function notify(event, uow)"]
    told: list[tuple] = []  # (order_id, detail_type, when) of every message the answer stored

    def recording(event, uow):
        answer(event, uow)
        for (kind, _), item in getattr(uow, "writes", {}).items():
            if kind == "message":
                told.append((item.get("order_id"), item.get("detail_type"), uow.now()))

    base = _catalog(context)
    catalog = add_service(base.without("notification"), copy_of(base, "notification", "notifier"),
                          {"notify_customer": recording})
    out = f"{context.get('out_dir') or tempfile.mkdtemp()}/runs/06_notifier_exercise"
    check = NOTIFIER_CHECK
    run_saga(RunOptions(orders=check["orders"], seed=check["seed"], out=out, catalog=catalog,
                        faults=Faults(reorder_rate=check["reorder_rate"], max_delay_seconds=check["max_delay"]),
                        rates={"payment_failure": 0.15, "restaurant_reject": 0.15, "delivery_failure": 0.25}))
    run = trace.load_run(out)
    last: dict[str, str] = {}
    for order_id, detail_type, _ in sorted(told, key=lambda row: row[2]):
        last[order_id] = detail_type
    agrees = trace.last_message_for(catalog)
    wrong = [f"{o} ended {s} and was last told about {last.get(o, 'nothing')}"
             for o, s in run.orders[["order_id", "status"]].itertuples(index=False)
             if last.get(o) not in agrees.get(s, ())]
    if wrong:
        return [f"{len(wrong)} of {len(run.orders)} customers were last told about something other than how their order ended, "
                f"e.g. {wrong[0]}"]
    return []


def _cancel_solution(out_dir=None, **context):
    import tempfile
    from pathlib import Path

    from yafdp.analysis.cancellation import EVENT, edit_document, starter_catalog

    folder = starter_catalog(Path(tempfile.mkdtemp(prefix="06-customer-cancels-", dir=out_dir)) / "catalog")

    def saga(bus):  # the cancellation opens the compensation; the refund ends the order CANCELLED
        bus["saga"]["status_after"][EVENT] = "CANCELLING"

    def order(document):  # the Order service keeps the status from it, as from every step
        document["subscriptions"][0]["pattern"]["detail-type"].append(EVENT)

    def payment(document):  # refund it: the shipped refund_order keys the refund on the order id
        document["subscriptions"].append({
            "rule": "payment-refunds-cancelled-order", "handler": "refund_order", "path": "compensation",
            "purpose": "Compensate: refund the charge of an order its customer cancelled.", "emits": ["Payment_Refunded"],
            "pattern": {"source": ["yafdp.order"], "detail-type": [EVENT]}})
        document["events"]["Payment_Refunded"]["schema"]["properties"]["reason"]["enum"].append(EVENT)

    def restaurant(document):  # release the order, even when the cancellation arrives before the payment
        document["subscriptions"].append({
            "rule": "restaurant-releases-cancelled-order", "handler": "release_order", "path": "compensation",
            "purpose": "Compensate: stop waiting for (or cooking) an order its customer cancelled.",
            "emits": ["Restaurant_Cancelled_Order"], "pattern": {"source": ["yafdp.order"], "detail-type": [EVENT]}})
        document["events"]["Restaurant_Cancelled_Order"]["schema"]["properties"]["reason"]["enum"].append(EVENT)

    def notification(document):  # tell the customer
        pattern = document["subscriptions"][0]["pattern"]
        pattern["detail-type"].append(EVENT)

    edit_document(folder, "bus.json", saga)
    for service, change in (("order", order), ("payment", payment), ("restaurant", restaurant),
                            ("notification", notification)):
        edit_document(folder, f"services/{service}.json", change)
    (folder / "services" / "restaurant.py").write_text('''
from yafdp.services.restaurant import cancel_order, review_order, time_out_order  # noqa: F401 - the shipped ones


def release_order(event, uow):
    cancelled = event["detail"]
    order_id = cancelled["order_id"]
    order = uow.get("order", order_id)
    if order is None:  # the cancellation overtook the payment: remember it, so the late payment finds it decided
        uow.put("order", order_id, {**{k: cancelled[k] for k in ("order_id", "restaurant_id", "customer_id")},
                                    "status": "released"})
    elif order["status"] == "awaiting_answer":  # nobody answered yet: take it off the tablet
        uow.put("order", order_id, {**order, "status": "released"})
    elif order["status"] == "confirmed":  # already cooking: stop, as when no courier comes
        cancel_order(event, uow)
'''.lstrip())
    return str(folder)


@exercise("06.customer-cancels",
          "Design a failure of your own: the customer cancels a paid order before the restaurant answers. "
          "cancellation.starter_catalog(folder) copies the catalog with the Order service's side written (the entry "
          "point cancel_by_customer publishes the failure event Order_Cancelled_By_Customer); nobody reacts to it yet. "
          "Add the subscriptions and compensations (in the folder's services/*.json, bus.json, and services/<service>.py "
          "for a handler of your own) so that a cancelled order is refunded once, released by its restaurant (its order "
          "item no longer awaiting_answer or confirmed) and ends CANCELLED, not before its refund, however the events are "
          "reordered or published twice. Answer with the folder's path: the check runs it and audits the run with yafdp "
          "check.",
          "A failure event needs a compensation for every step done before it: here the charge (Payment refunds, with "
          "the shipped refund_order, keyed on the order id, so a cancellation published twice refunds once) and the "
          "restaurant's pending order (released). The restaurant may hear the cancellation before the payment, so its "
          "handler remembers a cancellation of an order it never saw, and the late Payment_Success finds it decided "
          "(the tombstone, as Loyalty's revert). The order's status must not end before the refund: the cancellation "
          "leads to CANCELLING, the refund to CANCELLED, so 'every saga is terminal' still proves the money was "
          "returned.",
          context=("out_dir",), about=("Order_Initiated", "Payment_Refunded", "Restaurant_Cancelled_Order"),
          solution=_cancel_solution)
def _cancel_check(answer, out_dir=None, **context) -> list[str]:
    import tempfile

    from yafdp.analysis.cancellation import cancellation_problems

    return cancellation_problems(answer, tempfile.mkdtemp(prefix="06-customer-cancels-run-", dir=out_dir))


# ---- 07 · Add a service ------------------------------------------------------------------------------------

def feedback_document(name: str = "feedback") -> dict:
    """A document to start the exercise 07.feedback-service from: the service, its ``Feedback_Requested`` event, and
    one subscription whose pattern and handler are the learner's to write."""
    return {
        "service": name, "source": f"yafdp.{name}",
        "description": "Asks the customer of a cancelled order what went wrong.", "origin": "extension",
        "events": {"Feedback_Requested": {
            "description": "The customer of a cancelled order was asked for feedback.", "origin": "extension",
            "kind": "happy", "terminal": True,
            "schema": {"type": "object", "required": ["order_id", "customer_id"],
                       "properties": {"order_id": {"type": "string"}, "customer_id": {"type": "string"}}}}},
        "subscriptions": [{
            "rule": f"{name}-asks-cancelled-customer", "handler": "ask_for_feedback",
            "purpose": "ask the customer of a cancelled order for feedback, once", "path": "observe",
            "pattern": {"source": ["yafdp.payment"], "detail-type": ["Payment_Refunded"]},
            "emits": ["Feedback_Requested"]}],
    }


def _07_solution(**context):
    document = feedback_document()
    # A cancelled order ends with Payment_Failed (nothing was charged) or Payment_Refunded (the charge given back).
    document["subscriptions"][0]["pattern"]["detail-type"] = ["Payment_Failed", "Payment_Refunded"]

    def ask_for_feedback(event, uow):
        order = event["detail"]
        if not uow.add("asked", order["order_id"], {"order_id": order["order_id"]}):
            return  # asked already: one request per order, whatever the event or its id
        uow.publish("Feedback_Requested", {"order_id": order["order_id"], "customer_id": order["customer_id"]})

    return document, {"ask_for_feedback": ask_for_feedback}


FEEDBACK_CHECK = {"orders": 40, "seed": 5, "publish_retry_rate": 0.5, "duplicate_rate": 0.3, "reorder_rate": 0.3}


@exercise("07.feedback-service",
          "Write a Feedback service that asks the customer of every cancelled order, and only those, for feedback, "
          "once per order (Feedback_Requested), even when the event that ends the order is published twice under "
          "two ids. Start from feedback_document() (its pattern and handler are yours to write); answer "
          "(document, {handler name: function}).",
          "A cancelled order ends with Payment_Failed (declined: nothing was charged) or Payment_Refunded (charged, "
          "then refunded): the service subscribes to both, and nobody else changes. At-least-once delivery and a "
          "producer's retries bring the same fact twice, the second time under a new event id, so only a business "
          "key (one request per order id, uow.add) keeps the customer from being asked twice.",
          context=("out_dir",),
          about=("Payment_Failed", "Payment_Refunded"), solution=_07_solution)
def _07_check(answer, **context) -> list[str]:
    import tempfile

    from yafdp.analysis import trace
    from yafdp.analysis.extension import diff_plans
    from yafdp.catalog.inline import add_service
    from yafdp.plan import build_plan
    from yafdp.runs import RunOptions, run_saga
    from yafdp.runtime.faults import Faults

    try:
        document, handlers = answer
        name = document["service"]
    except (TypeError, ValueError, KeyError):
        return ["answer with a pair (document, {handler name: function}); the document names its service"]
    base = _catalog(context)
    try:
        extended = add_service(base, document, handlers)
    except Exception as exc:
        return [f"the catalog refuses it: {exc}"]
    if "Feedback_Requested" not in extended.services[name].may_emit():
        return ["the service never publishes Feedback_Requested"]
    changed = [c for c in diff_plans(build_plan(base), build_plan(extended)) if c.change != "unchanged"]
    problems = [f"the plan changes {c.kind} {c.name} ({c.change}), which is not {name}'s"
                for c in changed if c.change != "added" or c.service != name]
    out = f"{context.get('out_dir') or tempfile.mkdtemp()}/runs/07_exercise"
    check = FEEDBACK_CHECK
    run_saga(RunOptions(orders=check["orders"], seed=check["seed"], out=out, catalog=extended,
                        rates={"payment_failure": 0.2, "restaurant_reject": 0.2, "delivery_failure": 0.2},
                        faults=Faults(publish_retry_rate=check["publish_retry_rate"],
                                      duplicate_rate=check["duplicate_rate"], reorder_rate=check["reorder_rate"])))
    run = trace.load_run(out)
    cancelled = set(run.orders.loc[run.orders["status"] == "CANCELLED", "order_id"])
    asked = run.events[run.events["detail_type"] == "Feedback_Requested"]
    # A producer's retry stores the same unit of work's events again (same published_by): one request, sent twice.
    # Two units of work that each asked are two requests.
    requests = asked.groupby("order_id")["published_by"].nunique()
    if set(requests.index) - cancelled:
        problems.append(f"{len(set(requests.index) - cancelled)} order(s) not cancelled were asked, e.g. "
                        f"{sorted(set(requests.index) - cancelled)[0]}")
    if cancelled - set(requests.index):
        problems.append(f"{len(cancelled - set(requests.index))} of {len(cancelled)} cancelled orders were never asked, "
                        f"e.g. {sorted(cancelled - set(requests.index))[0]}: how does a declined order end?")
    twice = requests[requests > 1]
    if len(twice):
        problems.append(f"{len(twice)} order(s) were asked more than once (e.g. {twice.index[0]}: {int(twice.iloc[0])} "
                        "times): key the request by the order id, not by the event")
    return problems


# ---- 08 · Classic or Custom Event Bus ---------------------------------------------------------------------

def _08_race_solution(**context):
    from yafdp.analysis.bus_comparison import races

    return sorted(set(races(_catalog(context))["service"]))


@exercise("08.fifo-race",
          "On a Custom Event Bus whose subscribers are all FIFO, every event of an order in one event group (the "
          "order id), which services can still handle an order's events in another order than they were "
          "published? Answer with a list of service names.",
          "FIFO is each subscriber's promise, not the bus's: \"ordering is a property of a subscriber\" (UG "
          "Ordering, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html). A service with two subscribers gets two ordered streams "
          "that can overtake each other whenever the later event does not wait for the service's own handling of "
          "the earlier one: Delivery publishes Delivery_Failed on hearing Restaurant_Confirmed_Order, whether "
          "Loyalty has heard it yet or not. Payment and Restaurant have several subscribers too, but each of their "
          "later events follows from their own earlier handling, so it cannot arrive first.",
          solution=_08_race_solution)
def _08_race_check(answer, **context) -> list[str]:
    catalog = _catalog(context)
    expected = set(_08_race_solution(**context))
    if not isinstance(answer, (list, tuple, set)):
        return ["answer with a list of service names"]
    problems = []
    for service in sorted(set(answer) - expected):
        if service not in catalog.services:
            problems.append(f"{service!r} is not a service of the catalog")
        elif len(catalog.services[service].subscriptions) == 1:
            problems.append(f"{service!r} has one subscriber: a FIFO subscriber hands it every order's events in "
                            "publish order")
        else:
            problems.append(f"{service!r} has several subscribers, but each later event it receives follows from "
                            "its own handling of the earlier one: it cannot arrive first")
    if expected - set(answer):
        problems.append("a service is missing: one with two subscribers whose events other services publish, one "
                        "after the other")
    return problems


ONE_SUBSCRIBER_CHECK = {"orders": 60, "seed": 8, "reorder_rate": 0.5, "delivery_failure_rate": 0.3}


def _08_one_subscriber_solution(**context):
    from yafdp.catalog.inline import copy_of
    from yafdp.services.loyalty import award_points, revert_points

    rewards = copy_of(_catalog(context), "loyalty", "rewards")  # Loyalty's document, as a service of its own
    award, revert = rewards["subscriptions"]
    rewards["subscriptions"] = [{  # one subscriber for both events: one FIFO stream per order
        "rule": "rewards-follows-order", "handler": "follow_order", "path": "happy",
        "purpose": "Award points on a confirmation and take them back on a failed delivery, in publish order.",
        "emits": award["emits"] + revert["emits"],
        "pattern": {"source": award["pattern"]["source"] + revert["pattern"]["source"],
                    "detail-type": award["pattern"]["detail-type"] + revert["pattern"]["detail-type"]}}]

    def follow_order(event, uow):
        confirmed = event["detail-type"] == "Restaurant_Confirmed_Order"
        (award_points if confirmed else revert_points)(event, uow)

    return rewards, {"follow_order": follow_order}


@exercise("08.one-subscriber",
          "Loyalty's award and revert are two subscribers, so on a Custom Event Bus Delivery_Failed can still "
          "reach it before the confirmation it follows. Write a service in its place (start from "
          "copy_of(catalog, 'loyalty', 'rewards') and Loyalty's handlers) that never sees an order's events out of "
          "publish order, and whose points still net out: one per whole euro of a delivered order, none for "
          "another. Answer (document, {handler name: function}).",
          "One subscriber whose filter matches both events carries them in one FIFO stream per order, so the "
          "failure always comes after the confirmation and the tombstone is never needed. The cost: one handler "
          "that dispatches on detail-type, and one retry policy and dead-letter queue for both kinds of work.",
          context=("out_dir",),
          about=("Loyalty_Points_Added", "Delivery_Failed", "Restaurant_Confirmed_Order"),
          solution=_08_one_subscriber_solution)
def _08_one_subscriber_check(answer, **context) -> list[str]:
    import tempfile

    from yafdp.analysis import trace
    from yafdp.analysis.bus_comparison import out_of_order
    from yafdp.catalog.inline import add_service
    from yafdp.runs import RunOptions, run_saga
    from yafdp.runtime.faults import Faults

    try:
        document, handlers = answer
        name = document["service"]
    except (TypeError, ValueError, KeyError):
        return ["answer with a pair (document, {handler name: function}); the document names its service"]
    try:
        catalog = add_service(_catalog(context).without("loyalty"), document, handlers)
    except Exception as exc:
        return [f"the catalog refuses it: {exc}"]
    if "Loyalty_Points_Added" not in catalog.services[name].may_emit():
        return ["it never publishes Loyalty_Points_Added: a service in Loyalty's place awards points"]
    out = f"{context.get('out_dir') or tempfile.mkdtemp()}/runs/08_exercise"
    check = ONE_SUBSCRIBER_CHECK
    run_saga(RunOptions(orders=check["orders"], seed=check["seed"], out=out, catalog=catalog, bus="custom",
                        faults=Faults(reorder_rate=check["reorder_rate"]), latency_model="aws-eu-west-1",
                        rates={"delivery_failure": check["delivery_failure_rate"]}))
    run = trace.load_run(out)
    problems = []
    late = out_of_order(run, by="service")["out_of_order"].get(name, 0)
    if late:
        problems.append(f"{late} time(s) {name} handled an order's event after one of the same order published "
                        "later: its subscribers are ordered each on its own, not with each other")
    mine = run.events[run.events["service"] == name]
    points = mine["detail"].map(lambda d: json.loads(d)["points"]) * mine["detail_type"].map(
        {"Loyalty_Points_Added": 1, "Loyalty_Points_Reverted": -1}).fillna(0)
    net = points.groupby(mine["order_id"]).sum()
    awards = mine[mine["detail_type"] == "Loyalty_Points_Added"].groupby("order_id").size()
    wrong = []
    for order_id, status, amount in run.orders[["order_id", "status", "amount"]].itertuples(index=False):
        expected = int(amount) if status == "DELIVERY_SCHEDULED" else 0
        if net.get(order_id, 0) != expected or awards.get(order_id, 0) > 1:
            wrong.append(f"{order_id} ({status}): {net.get(order_id, 0)} points net from "
                         f"{awards.get(order_id, 0)} award(s), expected {expected}")
    if wrong:
        problems.append(f"points do not net out for {len(wrong)} order(s), e.g. {wrong[0]}")
    return problems


# ---- 09 · Choreography vs orchestration --------------------------------------------------------------------

# The restaurants' staff answer within 20 minutes; the check's three paid orders are answered after 1, 10 and 19
# minutes 50 seconds, a fourth never is; its refund must come within half an hour of its payment.
HUMAN_STEP_CHECK = {"think_seconds": {"ord-hs-quick": 60.0, "ord-hs-busy": 600.0, "ord-hs-slow": 1190.0},
                    "refund_within_seconds": 1800.0}


def _09_human_step_solution(**context):
    return ("standard", 1500)


def _human_step_orders() -> list[dict]:
    base = {"customer_id": "cus-ada", "currency": "EUR", "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
    napoli = {"restaurant_id": "res-napoli", "amount": 17.0,
              "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}]}
    orders = [{**base, **napoli, "order_id": order_id} for order_id in HUMAN_STEP_CHECK["think_seconds"]]
    return orders + [{**base, "order_id": "ord-hs-silent", "restaurant_id": "res-silent", "amount": 12.0,
                      "items": [{"item_id": "lasagne", "quantity": 1, "unit_price": 12.0}]}]


@exercise("09.human-step",
          "The restaurants' staff confirm an order by hand, within 20 minutes. Choose the workflow type ('standard' "
          "or 'express') and the human step's TimeoutSeconds so that every order a person answers is delivered and "
          "an order nobody answers is refunded within half an hour of its payment. Answer (workflow, "
          "timeout_seconds); the check runs it (decision.human_step_run) on orders answered after 1, 10 and almost "
          "20 minutes, and one never answered.",
          "Only a Standard workflow can wait for a task token; an Express one refuses the definition (and could not "
          "wait 20 minutes anyway: five at most). The timeout must be longer than the slowest answer (20 minutes) "
          "and short enough that the refund, which follows it within seconds, comes before half an hour: anything "
          "from 20 to about 29 minutes. In a choreography the same decision is the saga's deadline (chapter 06).",
          context=("out_dir",), about=("Order_Initiated", "Restaurant_Confirmed_Order"),
          solution=_09_human_step_solution)
def _09_human_step_check(answer, out_dir=None, **context) -> list[str]:
    import tempfile

    from yafdp.analysis import decision, trace
    from yafdp.plan.step_functions import OrchestrationError

    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return ["answer with a pair (workflow, timeout_seconds), e.g. ('standard', 900)"]
    workflow, timeout = answer
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        return [f"timeout_seconds: a whole number is expected, got {_described(timeout)}"]
    if workflow not in ("standard", "express"):
        return [f"the workflow is 'standard' or 'express', not {workflow!r}"]
    if timeout < 1:
        return ["TimeoutSeconds is a positive number of seconds"]
    think = HUMAN_STEP_CHECK["think_seconds"]
    out = tempfile.mkdtemp(prefix="09-human-step-", dir=out_dir)
    try:
        decision.human_step_run(f"{out}/run", _human_step_orders(), workflow=workflow, timeout_seconds=timeout,
                                responder=lambda token, payload: think.get(payload["event"]["detail"]["order_id"]))
    except OrchestrationError as refused:
        return [f"the run was refused: {refused}"]
    run = trace.load_run(f"{out}/run")
    statuses = run.orders.set_index("order_id")["status"].to_dict()
    problems = [f"{order_id}, answered after {think[order_id] / 60:.1f} minutes, ended {statuses.get(order_id)}: the "
                "Task gave up before the person answered" for order_id in think if statuses.get(order_id) != "DELIVERY_SCHEDULED"]
    events = run.events[run.events["order_id"] == "ord-hs-silent"].set_index("detail_type")["published_at"]
    if "Payment_Refunded" not in events:
        problems.append("the order nobody answered was never refunded")
    elif events["Payment_Refunded"] - events["Payment_Success"] > HUMAN_STEP_CHECK["refund_within_seconds"]:
        minutes = (events["Payment_Refunded"] - events["Payment_Success"]) / 60
        problems.append(f"the order nobody answered was refunded {minutes:.1f} minutes after its payment, not within 30")
    return problems


# ---- notebook helpers --------------------------------------------------------------------------------------

NOT_HERE = "this exercise is about the shipped YAFDP catalog (data/), whose events it names: skipped on {path}"


def ask(key: str, catalog: Catalog | None = None):
    """Display an exercise's question (and that it is skipped when ``catalog`` lacks the events it is about)."""
    from yafdp.analysis.notebook import Html

    note = "" if EXERCISES[key].applies_to(catalog) else f" ({NOT_HERE.format(path=catalog.path)})"
    return Html(f"<p><b>Exercise {key}.</b> {EXERCISES[key].question}<i>{note}</i></p>",
                f"Exercise {key}. {EXERCISES[key].question}{note}")


def check(key: str, answer, **context) -> bool:
    """Check an answer: print ✓ and return True, or print what is wrong and return False (never raises for a
    wrong answer, so a chapter runs to its end). ``None`` means no answer yet. With ``catalog=`` one that lacks
    the events the exercise is about, it says so and returns False."""
    if not EXERCISES[key].applies_to(context.get("catalog")):
        print(f"Exercise {key}: {NOT_HERE.format(path=context['catalog'].path)}.")
        return False
    if answer is None:
        print(f"Exercise {key}: no answer yet. Replace None with yours and run the cell again.")
        return False
    problems = EXERCISES[key].check(answer, **context)
    if problems:
        print(f"Exercise {key}: not yet.\n" + "\n".join(f"  ✗ {p}" for p in problems))
        return False
    print(f"Exercise {key}: ✓ correct. {EXERCISES[key].explanation}")
    return True


def solution(key: str, **context):
    """The worked solution's answer (what ``yafdp workbook --solutions`` puts in the answer cells); None for an
    exercise that does not apply to ``catalog=``."""
    if not EXERCISES[key].applies_to(context.get("catalog")):
        return None
    return EXERCISES[key].solution(**context)


def show_solution(key: str):
    """The worked solution: its code and what it teaches (for the teacher's copy)."""
    from yafdp.analysis.notebook import Html, show_source

    code = show_source(EXERCISES[key].solution)
    return Html(f"<p><b>Solution {key}.</b> {EXERCISES[key].explanation}</p>" + code.markup,
                f"Solution {key}. {EXERCISES[key].explanation}\n{code.text}")
