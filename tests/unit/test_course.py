"""The course's exercises, in-memory services and the one layout of the flow graph."""

import pandas as pd
import pytest

from yafdp.analysis import exercises
from yafdp.analysis import figures
from yafdp.analysis.graph import flow_graph
from yafdp.catalog import CatalogError, load_catalog
from yafdp.catalog.inline import add_service, copy_of, example_document
from yafdp.services.loyalty import award_points, revert_points

COSTS = pd.DataFrame({"choreography": [5.0, 30.0], "orchestration (Standard)": [440.0, 30.0]},
                     index=["step_functions_standard_transitions", "dynamodb_write_units"])
COSTS.loc["total"] = COSTS.sum()


RUNS_A_SAGA = ("07.rating-service", "08.one-subscriber")  # their checks run the answer in a batch of orders


def context(key, tmp_path):
    return {"costs": COSTS} if key == "09.dominant-cost" else {"out_dir": str(tmp_path)} if key in RUNS_A_SAGA else {}


@pytest.mark.parametrize("key", list(exercises.EXERCISES))
def test_every_worked_solution_passes_its_own_check(key, tmp_path):
    ctx = context(key, tmp_path)
    assert exercises.EXERCISES[key].check(exercises.solution(key, **ctx), **ctx) == []


@pytest.mark.parametrize("key, wrong", [
    ("01.nothing-to-undo", ["Delivery_Failed"]),
    ("02.pattern", {"source": ["yafdp.payment"], "detail-type": ["Payment_Success"]}),
    ("03.count-resources", {"rules": 1, "dead-letter queues": 1}),
    ("04.fan-out", ["payment", "order"]),
    ("06.idempotent-refund", lambda event, uow: uow.publish("Payment_Refunded", event["detail"])),
    ("08.fifo-race", ["order", "payment"]),  # one FIFO subscriber; several, but each later event follows its own
    ("08.fifo-race", []),
    ("09.dominant-cost", "dynamodb_write_units"),
])
def test_a_wrong_answer_is_told_what_is_wrong(key, wrong, capsys):
    assert exercises.check(key, wrong, **({"costs": COSTS} if key.startswith("09") else {})) is False
    assert "✗" in capsys.readouterr().out


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
