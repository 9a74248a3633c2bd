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
          "Write the detail of an Order_Initiated event for three margheritas at 8.50 EUR each: it must pass "
          "the event's schema and its amount must be what the items add up to.",
          "The schema is the contract: the project's publishers refuse a detail that breaks it before anything "
          "is published (EventBridge itself validates no schema). "
          "The total is the project's own business rule, not the schema's.",
          about=("Order_Initiated",), solution=_01b_solution)
def _01b_check(answer, **context) -> list[str]:
    catalog = _catalog(context)
    if not isinstance(answer, dict):
        return ["answer with a dict, the event's detail"]
    try:
        catalog.validate_detail("Order_Initiated", answer)
    except Exception as exc:  # fastjsonschema says which field
        return [f"the schema refuses it: {exc}"]
    problems = []
    items = answer.get("items", [])
    total = round(sum(i.get("quantity", 0) * i.get("unit_price", 0) for i in items), 2)
    if sum(i.get("quantity", 0) for i in items) != 3:
        problems.append("the order should hold three items (quantity adds up to 3)")
    if round(answer.get("amount", 0), 2) != total:
        problems.append(f"amount is {answer.get('amount')}, the items add up to {total}")
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

def _03_solution(**context):
    from yafdp.plan import build_plan

    plan = build_plan(_catalog(context))
    return {"rules": len(plan.rules), "dead-letter queues": len(plan.rules) + len(plan.services)}


@exercise("03.count-resources",
          "How many rules does the deployment plan create, and how many dead-letter queues in all? Answer "
          "{'rules': …, 'dead-letter queues': …}.",
          "One rule per subscription, each with its own target dead-letter queue (EventBridge could not "
          "deliver), plus one dead-letter queue per service queue (the function kept failing).",
          solution=_03_solution)
def _03_check(answer, **context) -> list[str]:
    expected = _03_solution(**context)
    if not isinstance(answer, dict):
        return ["answer with a dict {'rules': …, 'dead-letter queues': …}"]
    problems = []
    for key, value in expected.items():
        if answer.get(key) != value:
            hint = ("count the rows of tables.plan_rules(plan)" if key == "rules"
                    else "there are two kinds: one per rule target, one per service queue (tables.plan_queues)")
            problems.append(f"{key}: {answer.get(key)!r} is not right; {hint}")
    return problems


# ---- 04 · Fire orders --------------------------------------------------------------------------------------

def _04_solution(**context):
    return sorted({s.service for s in _catalog(context).consumers("Order_Initiated")})


@exercise("04.fan-out",
          "To which services does the bus deliver Order_Initiated? Answer with a list of service names.",
          "Payment acts on it (it charges); Notification observes it (it tells the customer). The Order service "
          "published it and sets the status itself, so it does not subscribe to its own event.",
          about=("Order_Initiated",), solution=_04_solution)
def _04_check(answer, **context) -> list[str]:
    expected = set(_04_solution(**context))
    if not isinstance(answer, (list, tuple, set)):
        return ["answer with a list of service names"]
    given = set(answer)
    problems = [f"{s!r} has no rule matching Order_Initiated" for s in sorted(given - expected)]
    problems += [f"{s!r} receives it too (see tables.subscription_matrix)" for s in sorted(expected - given)]
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
    return [f"{k}: {answer.get(k)!r} hops is not right; follow the arrows of the causal graph from Order_Initiated"
            for k, v in expected.items() if answer.get(k) != v]


# ---- 06 · Failures -----------------------------------------------------------------------------------------

class MemoryUnitOfWork:
    """A unit of work over a dict, for trying a handler by hand: what it stored and what it published. ``world``
    and ``saga`` are what the handler sees as ``uow.world`` and ``uow.saga`` (the catalog's); ``now()`` is the
    run's clock in seconds (0.0: the start of a run)."""

    def __init__(self, world=None, saga=None, now=lambda: 0.0):
        self.items: dict[tuple[str, str], dict] = {}
        self.published: list[tuple[str, dict]] = []
        self.world, self.saga, self.now = world, saga, now

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


def _refund(event, uow):
    order_id = event["detail"]["order_id"]
    if uow.get("refund", order_id):  # the business key: one refund per order, whatever the event id
        return
    uow.put("refund", order_id, {"order_id": order_id, "amount": event["detail"]["amount"]})
    uow.publish("Payment_Refunded", {"order_id": order_id, "amount": event["detail"]["amount"]})


def _06_solution(**context):
    return _refund


@exercise("06.idempotent-refund",
          "Write a handler refund(event, uow) that stores a refund (uow.put('refund', order_id, {...})) and "
          "publishes Payment_Refunded once per order, even when the failure is published twice with two "
          "different event ids (a producer that retried its PutEvents call).",
          "Two layers of idempotency: the bus records each (rule, event id) it processed, which skips a "
          "duplicate delivery of the same event; but a republished event has a new id, so only a business key "
          "(one refund per order id) stops a second refund.",
          about=("Delivery_Failed", "Payment_Refunded"), solution=_06_solution)
def _06_check(answer, **context) -> list[str]:
    if not callable(answer):
        return ["answer with a function refund(event, uow)"]
    uow = MemoryUnitOfWork()
    detail = {"order_id": "ord-ex-6", "customer_id": "cus-ada", "amount": 17.0}
    try:
        for event_id in ("evt-1", "evt-2"):  # the same failure, published twice
            answer({"id": event_id, "detail-type": "Delivery_Failed", "detail": dict(detail)}, uow)
    except Exception as exc:
        return [f"the handler raised {type(exc).__name__}: {exc}"]
    refunds = [k for k in uow.items if k[0] == "refund"]
    problems = []
    if len(refunds) != 1:
        problems.append(f"{len(refunds)} refund item(s) stored; expected one, under the order id")
    published = [e for e, _ in uow.published if e == "Payment_Refunded"]
    if len(published) != 1:
        problems.append(f"Payment_Refunded published {len(published)} times for one order; key the check on "
                        "the order id, not the event id")
    return problems


# ---- 07 · Add a service ------------------------------------------------------------------------------------

def _07_solution(**context):
    from yafdp.catalog.inline import example_document

    def ask_for_review(event, uow):
        order = event["detail"]
        if uow.get("request", order["order_id"]):
            return  # asked already: one request per order, whatever the event id
        uow.put("request", order["order_id"], {"order_id": order["order_id"]})
        uow.publish("Rating_Requested", {"order_id": order["order_id"], "customer_id": order["customer_id"]})

    return example_document("rating"), {"ask_for_review": ask_for_review}


@exercise("07.rating-service",
          "Write a Rating service that asks for a review once a courier is booked (Delivery_Scheduled) by "
          "publishing Rating_Requested: a service document and its handler, as (document, {name: function}).",
          "A new capability joins a choreography by subscribing: one document, one handler, and no other "
          "service changes. The check runs a batch with it and compares the plans.",
          context=("out_dir",),
          about=("Delivery_Scheduled",), solution=_07_solution)
def _07_check(answer, **context) -> list[str]:
    import tempfile

    from yafdp.analysis import trace
    from yafdp.analysis.extension import diff_plans
    from yafdp.catalog.inline import add_service
    from yafdp.plan import build_plan
    from yafdp.runs import RunOptions, run_saga

    try:
        document, handlers = answer
    except (TypeError, ValueError):
        return ["answer with a pair (document, {handler name: function})"]
    base = _catalog(context)
    try:
        extended = add_service(base, document, handlers)
    except Exception as exc:
        return [f"the catalog refuses it: {exc}"]
    name = document["service"]
    changed = [c for c in diff_plans(build_plan(base), build_plan(extended)) if c.change != "unchanged"]
    problems = [f"the plan changes {c.kind} {c.name} ({c.change}), which is not {name}'s"
                for c in changed if c.change != "added" or c.service != name]
    out = context.get("out_dir") or tempfile.mkdtemp()
    run_saga(RunOptions(orders=12, seed=3, out=f"{out}/runs/07_exercise", catalog=extended))
    run = trace.load_run(f"{out}/runs/07_exercise")
    delivered = set(run.orders[run.orders["status"] == "DELIVERY_SCHEDULED"]["order_id"])
    asked = run.events[run.events["detail_type"] == "Rating_Requested"]["order_id"]
    if set(asked) != delivered:
        problems.append(f"{len(set(asked))} orders asked for a review, {len(delivered)} were delivered")
    if asked.duplicated().any():
        problems.append("an order was asked twice")
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

def _09_solution(costs=None, **context):
    return str(costs["orchestration (Standard)"].drop("total").idxmax())


@exercise("09.dominant-cost",
          "In the cost table, which billed item makes most of the Standard workflow's cost? Answer with the "
          "row's name.",
          "A Standard workflow bills every state transition; each order enters a dozen states or more, so the "
          "transitions outweigh everything else. Express bills requests and duration instead.",
          context=("costs",),
          solution=_09_solution)
def _09_check(answer, costs=None, **context) -> list[str]:
    expected = _09_solution(costs=costs)
    if answer != expected:
        return [f"{answer!r} is not the largest item of the Standard column; sort it: "
                "costs['orchestration (Standard)'].sort_values()"]
    return []


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
