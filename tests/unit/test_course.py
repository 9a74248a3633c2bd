"""The course's exercises, in-memory services and the one layout of the flow graph."""

import pytest

from yafdp.analysis import exercises
from yafdp.analysis import figures
from yafdp.analysis.graph import flow_graph
from yafdp.catalog import CatalogError, load_catalog
from yafdp.catalog.inline import add_service, copy_of, example_document
from yafdp.services.loyalty import award_points, revert_points

def context(key, tmp_path):
    """What an exercise's check needs besides the answer, as the notebooks pass it."""
    wanted = exercises.EXERCISES[key].context
    return {"out_dir": str(tmp_path)} if "out_dir" in wanted else {}


@pytest.mark.parametrize("key", list(exercises.EXERCISES))
def test_every_worked_solution_passes_its_own_check(key, tmp_path):
    ctx = context(key, tmp_path)
    assert exercises.EXERCISES[key].check(exercises.solution(key, **ctx), **ctx) == []


def _refund_by_event_id(event, uow):  # keyed by the event, not the order: a republished failure refunds again
    charge = uow.get("charge", event["detail"]["order_id"])
    if uow.get("refund", event["id"]):
        return
    uow.put("refund", event["id"], {})
    uow.publish("Payment_Refunded", {"order_id": charge["order_id"], "customer_id": charge["customer_id"],
                                     "refund_id": "ref-ex-6", "amount": charge["amount"], "currency": "EUR",
                                     "reason": event["detail-type"]})


def _feedback_asking_every_time(event, uow):  # no business key: a republished end asks again
    uow.publish("Feedback_Requested", {"order_id": event["detail"]["order_id"],
                                       "customer_id": event["detail"]["customer_id"]})


def _feedback(handler, events=("Payment_Failed", "Payment_Refunded")):
    document = exercises.feedback_document()
    document["subscriptions"][0]["pattern"]["detail-type"] = list(events)
    return document, {"ask_for_feedback": handler}


@pytest.mark.parametrize("key, wrong", [
    ("01.nothing-to-undo", ["Delivery_Failed"]),
    ("01.valid-order", {"order_id": "ord-ex-1", "customer_id": "cus-ada", "restaurant_id": "res-napoli",  # 1.00 each
                        "items": [{"item_id": "margherita", "quantity": 3, "unit_price": 1.0}], "amount": 3.0,
                        "currency": "EUR", "payment_method": "pm_accepted_3f6c2a9e51d07b84", "delivery_zone": "zone-centre"}),
    ("02.pattern", {"source": ["yafdp.payment"], "detail-type": ["Payment_Success"]}),
    ("03.retry-policy", {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}),  # the shipped policy
    ("03.retry-policy", {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}),  # AWS's Classic defaults
    ("04.predict-dlq", {"dead letters": 12, "kind": "queue", "ERROR_CODE": "NO_PERMISSIONS", "RETRY_ATTEMPTS": 0,
                        "statuses": {"DELIVERY_SCHEDULED": 3}}),
    ("04.predict-dlq", {"dead letters": 12, "kind": "rule", "ERROR_CODE": "NO_PERMISSIONS", "RETRY_ATTEMPTS": 185,
                        "statuses": {"PAID": 3}}),
    ("06.idempotent-refund", lambda event, uow: uow.publish("Payment_Refunded", event["detail"])),
    ("06.idempotent-refund", _refund_by_event_id),
    ("06.notifier", load_catalog().handler("notification", "notify_customer")),  # the shipped notifier contradicts itself
    ("07.feedback-service", _feedback(_feedback_asking_every_time)),
    ("07.feedback-service", _feedback(exercises.solution("07.feedback-service")[1]["ask_for_feedback"],
                                      events=("Payment_Refunded",))),  # forgets the declined cards
    ("08.fifo-race", ["order", "payment"]),  # one FIFO subscriber; several, but each later event follows its own
    ("08.fifo-race", []),
    ("09.human-step", ("express", 1500)),  # cannot wait for a person
    ("09.human-step", ("standard", 600)),  # gives up on the slow restaurant's answer
    ("09.human-step", ("standard", 3600)),  # refunds the silent order an hour late
])
def test_a_wrong_answer_is_told_what_is_wrong(key, wrong, capsys, tmp_path):
    assert exercises.check(key, wrong, **context(key, tmp_path)) is False
    assert "✗" in capsys.readouterr().out


@pytest.mark.parametrize("key, right", [
    ("06.idempotent-refund", load_catalog().handler("payment", "refund_order")),  # the project's own refund passes
    ("01.valid-order", {"order_id": "ord-mine-1", "customer_id": "cus-ada", "restaurant_id": "res-napoli",  # README's
                        "items": [{"item_id": "margherita", "quantity": 3, "unit_price": 8.5}], "amount": 25.5,
                        "currency": "EUR", "payment_method": "pm_accepted_3f6c2a9e51d07b84", "delivery_zone": "zone-centre"}),
])
def test_the_projects_own_code_is_a_right_answer(key, right, tmp_path):
    assert exercises.EXERCISES[key].check(right, **context(key, tmp_path)) == []


def test_the_rating_service_shown_above_the_exercise_does_not_answer_it(tmp_path):
    def ask_for_review(event, uow):
        if uow.add("request", event["detail"]["order_id"], {}):
            uow.publish("Rating_Requested", {k: event["detail"][k] for k in ("order_id", "customer_id")})
    problems = exercises.EXERCISES["07.feedback-service"].check((example_document(), {"ask_for_review": ask_for_review}),
                                                                out_dir=str(tmp_path))
    assert problems == ["the service never publishes Feedback_Requested"]


@pytest.mark.parametrize("key, answer, told", [
    ("05.hops", {"delivered": "3", "no courier": 4}, ["delivered: a whole number is expected, got the text '3'"]),
    ("05.hops", {"delivered": 3}, ["'no courier' is missing"]),
    ("05.hops", {"delivered": 3, "no courier": 4, "cancelled": 2},
     ["'cancelled' is not asked for (the keys are 'delivered', 'no courier')"]),
    ("05.hops", {"delivered": True, "no courier": 4}, ["delivered: a whole number is expected, got True"]),
    ("05.hops", {"delivered": 2, "no courier": 4},
     ["delivered: 2 hops is not right; follow the arrows of the causal graph from Order_Initiated"]),
    ("03.retry-policy", {"MaximumRetryAttempts": 4}, ["'MaximumEventAgeInSeconds' is missing"]),
    ("03.retry-policy", {"MaximumRetryAttempts": 4.0, "MaximumEventAgeInSeconds": 3600},
     ["MaximumRetryAttempts: a whole number is expected, got the number 4.0"]),
    ("04.predict-dlq", {"dead letters": "12", "kind": "rule", "ERROR_CODE": "NO_PERMISSIONS", "RETRY_ATTEMPTS": 0},
     ["'statuses' is missing", "dead letters: a whole number is expected, got the text '12'"]),
    ("09.human-step", ("standard", "900"), ["timeout_seconds: a whole number is expected, got the text '900'"]),
    ("09.human-step", "standard", ["answer with a pair (workflow, timeout_seconds), e.g. ('standard', 900)"]),
])
def test_a_missing_key_or_a_value_of_the_wrong_type_is_named_as_such(key, answer, told, tmp_path):
    assert exercises.EXERCISES[key].check(answer, **context(key, tmp_path)) == told


def test_no_answer_yet_is_not_an_error(capsys):
    assert exercises.check("01.valid-order", None) is False
    assert "no answer yet" in capsys.readouterr().out


def test_an_in_memory_service_needs_every_handler_and_cannot_replace_a_service_of_the_catalog():
    catalog = load_catalog()
    with pytest.raises(CatalogError, match="ask_for_review"):
        add_service(catalog, example_document(), {})
    with pytest.raises(CatalogError, match="services/payment.json"):
        add_service(catalog, example_document("payment"), {"ask_for_review": print})
    broken = example_document()
    broken["subscriptions"][0]["pattern"] = {"source": ["yafdp.delivery"]}
    with pytest.raises(CatalogError, match="detail-type"):
        add_service(catalog, broken, {"ask_for_review": print})


def test_an_in_memory_service_is_resolved_like_any_other():
    def handler(event, uow):
        return "mine"
    extended = add_service(load_catalog(), example_document("tasting"), {"ask_for_review": handler})
    assert extended.handler("tasting", "ask_for_review") is handler
    again = add_service(extended, example_document("tasting"), {"ask_for_review": print})  # a cell run twice
    assert again.handler("tasting", "ask_for_review") is print


def test_adding_a_service_moves_no_node_of_the_course_layout():
    catalog = load_catalog()
    extended = add_service(catalog, example_document(), {"ask_for_review": lambda event, uow: None})
    base = figures.course_layout()
    layout = figures.flow_layout(flow_graph(extended), catalog.bus.start_event, base=base)
    assert all(layout[node] == base[node] for node in base)
    new = set(layout) - set(base)
    assert new == {"service:rating", "event:Rating_Requested"}
    assert len(set(layout.values())) == len(layout)  # no two nodes in one place


def _rewards(subscriptions, handlers):
    """Loyalty's document as the service 'rewards', with ``subscriptions`` changed by the caller."""
    document = copy_of(load_catalog(), "loyalty", "rewards")
    document["subscriptions"] = subscriptions(document["subscriptions"])
    return document, handlers


def test_loyalty_as_two_subscribers_fails_the_one_subscriber_exercise_naming_the_race(tmp_path, capsys):
    two = _rewards(lambda subs: subs, {"award_points": award_points, "revert_points": revert_points})
    assert exercises.check("08.one-subscriber", two, out_dir=str(tmp_path)) is False
    said = capsys.readouterr().out
    assert "handled an order's event after one of the same order published later" in said
    assert "points do not net out" not in said  # the tombstone keeps the points right: only the order is wrong


def test_one_subscriber_that_never_takes_points_back_fails_on_the_points(tmp_path, capsys):
    solution, _ = exercises.solution("08.one-subscriber")
    awards_only = (solution, {"follow_order": lambda event, uow: award_points(event, uow)
                              if event["detail-type"] == "Restaurant_Confirmed_Order" else None})
    assert exercises.check("08.one-subscriber", awards_only, out_dir=str(tmp_path)) is False
    assert "points do not net out" in capsys.readouterr().out


def test_a_service_that_awards_nothing_is_refused_before_anything_runs(tmp_path):
    document, _ = exercises.solution("08.one-subscriber")
    document = {**document, "subscriptions": [dict(document["subscriptions"][0], emits=["Loyalty_Points_Reverted"])]}
    problems = exercises.EXERCISES["08.one-subscriber"].check((document, {"follow_order": print}), out_dir=str(tmp_path))
    assert problems == ["it never publishes Loyalty_Points_Added: a service in Loyalty's place awards points"]
    assert not (tmp_path / "runs").exists()


def test_a_copy_of_a_package_service_is_a_new_service_with_its_own_source_and_rules():
    catalog = load_catalog()
    rewards = copy_of(catalog, "loyalty", "rewards")
    extended = add_service(catalog.without("loyalty"), rewards, {"award_points": print, "revert_points": print})
    assert extended.services["rewards"].source == "yafdp.rewards"
    assert {s.rule for s in extended.services["rewards"].subscriptions} == {
        "rewards-awards-confirmed-order", "rewards-reverts-undeliverable-order"}
    with pytest.raises(CatalogError, match="no service 'nobody'"):
        copy_of(catalog, "nobody", "x")


def test_the_site_reads_every_chapters_title_time_and_goals_from_its_first_cell():
    from yafdp.shipped import notebooks_dir
    from yafdp.site import chapter

    for path in sorted(notebooks_dir().glob("[0-9][0-9]_*.ipynb")):
        read = chapter(path)
        assert read.number == path.stem[:2] and read.minutes and read.title != path.stem, read
        assert len(read.goals) >= 3 and all(len(goal) > 20 for goal in read.goals), read


EVENT = "Order_Cancelled_By_Customer"


def _cancellation(tmp_path, change=None, **modules):
    """The worked answer of 06.customer-cancels, with ``change(folder)`` applied and ``modules`` ({service: source})
    written over its handler modules: a wrong answer to check."""
    from pathlib import Path

    folder = Path(exercises.solution("06.customer-cancels", out_dir=str(tmp_path)))
    if change is not None:
        change(folder)
    for service, source in modules.items():
        (folder / "services" / f"{service}.py").write_text(source)
    return str(folder)


def _without_rule(service, rule):
    from yafdp.analysis.cancellation import edit_document

    def change(folder):
        edit_document(folder, f"services/{service}.json", lambda d: d.update(
            subscriptions=[s for s in d["subscriptions"] if s["rule"] != rule]))
    return change


def _rule_on(service, rule, detail_type, source):
    from yafdp.analysis.cancellation import edit_document

    def change(folder):
        def edit(document):
            [sub] = [s for s in document["subscriptions"] if s["rule"] == rule]
            sub["pattern"] = {"source": [source], "detail-type": [detail_type]}
        edit_document(folder, f"services/{service}.json", edit)
    return change


REFUND_EVERY_TIME = '''
from yafdp.services.payment import charge_order, refund_order  # noqa: F401


class Blind:
    """A unit of work that never shows a refund already made."""

    def __init__(self, uow):
        self.uow = uow

    def __getattr__(self, name):
        return getattr(self.uow, name)

    def get(self, kind, key):
        return None if kind == "refund" else self.uow.get(kind, key)


def refund_cancelled(event, uow):  # the shipped refund_order without its business key: every copy refunds
    refund_order(event, Blind(uow))
'''


def _refund_every_time(folder):
    from yafdp.analysis.cancellation import edit_document

    def edit(document):
        [sub] = [s for s in document["subscriptions"] if s["rule"] == "payment-refunds-cancelled-order"]
        sub["handler"] = "refund_cancelled"
    edit_document(folder, "services/payment.json", edit)
    (folder / "services" / "payment.py").write_text(REFUND_EVERY_TIME)


RELEASE_WITHOUT_TOMBSTONE = '''
from yafdp.services.restaurant import cancel_order, review_order, time_out_order  # noqa: F401


def release_order(event, uow):  # releases what it knows, forgets a cancellation that overtook the payment
    order = uow.get("order", event["detail"]["order_id"])
    if order is not None and order["status"] == "awaiting_answer":
        uow.put("order", order["order_id"], {**order, "status": "released"})
    elif order is not None and order["status"] == "confirmed":
        cancel_order(event, uow)
'''


def _cancelled_at_once(folder):  # the cancellation ends the saga before the refund
    from yafdp.analysis.cancellation import edit_document

    edit_document(folder, "bus.json", lambda bus: bus["saga"]["status_after"].update({EVENT: "CANCELLED"}))


@pytest.mark.parametrize("wrong, said", [
    (lambda tmp: _cancellation(tmp, _without_rule("payment", "payment-refunds-cancelled-order")),
     "cancelled were never refunded"),  # a refund missing
    (lambda tmp: _cancellation(tmp, _refund_every_time), "refunds match charges"),  # a compensation that refunds twice
    (lambda tmp: _cancellation(tmp, _rule_on("payment", "payment-refunds-cancelled-order", "Restaurant_Cancelled_Order",
                                             "yafdp.restaurant")),
     "were never refunded"),  # the refund subscribed to the wrong event
    (lambda tmp: _cancellation(tmp, _rule_on("restaurant", "restaurant-releases-cancelled-order", "Delivery_Failed",
                                             "yafdp.delivery")),
     "never released"),  # the release subscribed to the wrong event
    (lambda tmp: _cancellation(tmp, restaurant="from yafdp.services.restaurant import *  # noqa: F401,F403\n"
                                               "from yafdp.services.restaurant import cancel_order as release_order\n"),
     "never released"),  # the shipped cancel_order: it stops cooking, but never releases a pending order
    (lambda tmp: _cancellation(tmp, restaurant=RELEASE_WITHOUT_TOMBSTONE),
     "still held by their restaurant (awaiting_answer)"),  # the cancellation overtook the payment, and was forgotten
    (lambda tmp: _cancellation(tmp, _cancelled_at_once), "CANCELLED (on Order_Cancelled_By_Customer) before their refund"),
    (lambda tmp: str(__import__("yafdp.analysis.cancellation", fromlist=["x"]).starter_catalog(tmp / "starter")),
     "yafdp lint"),  # the starter as it is: nobody reacts to the cancellation
    (lambda tmp: _cancellation(tmp, _rule_on("restaurant", "restaurant-releases-cancelled-order", EVENT, "yafdp.order"),
                               restaurant="from yafdp.services.restaurant import *  # noqa: F401,F403\n"),
     "the run was refused"),  # a handler the catalog names and nobody wrote
])
def test_the_customer_cancels_exercise_refuses_a_wrong_design(wrong, said, tmp_path, capsys):
    assert exercises.check("06.customer-cancels", wrong(tmp_path), out_dir=str(tmp_path)) is False
    assert said in capsys.readouterr().out


def test_the_customer_cancels_exercise_runs_its_race_and_refuses_a_folder_that_is_not_one(tmp_path):
    from yafdp.analysis import trace
    from yafdp.analysis.cancellation import EVENT, cancellation_run, starter_catalog

    seen = cancellation_run(exercises.solution("06.customer-cancels", out_dir=str(tmp_path)), tmp_path / "run")
    assert len(seen["accepted"]) == 6 and seen["refused"]["ord-cx-napoli-1"][0].endswith("(only a PAID one)")
    ok = trace.load_run(tmp_path / "run").deliveries.query("outcome == 'ok' and service == 'restaurant'")
    first = ok.groupby(["order_id", "detail_type"])["delivered_at"].min().unstack()
    cancelled = first.loc[sorted(seen["accepted"])]
    assert (cancelled[EVENT] < cancelled["Payment_Success"]).all()  # every cancellation overtook its payment
    assert exercises.EXERCISES["06.customer-cancels"].check(str(tmp_path / "nowhere"), out_dir=str(tmp_path)) == [
        "answer with the path of your catalog folder (start from starter_catalog(folder))"]
    with pytest.raises(Exception, match="not empty"):
        starter_catalog(tmp_path / "run")  # an earlier folder is never overwritten
