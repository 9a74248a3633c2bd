"""The course's exercises, in-memory services and the one layout of the flow graph."""

import pandas as pd
import pytest

from yafdp.analysis import exercises
from yafdp.analysis import figures
from yafdp.analysis.graph import flow_graph
from yafdp.catalog import CatalogError, load_catalog
from yafdp.catalog.inline import add_service, example_document

COSTS = pd.DataFrame({"choreography": [5.0, 30.0], "orchestration (Standard)": [440.0, 30.0]},
                     index=["step_functions_standard_transitions", "dynamodb_write_units"])
COSTS.loc["total"] = COSTS.sum()


def context(key, tmp_path):
    return {"costs": COSTS} if key == "08.dominant-cost" else {"out_dir": str(tmp_path)} if key.startswith("07") else {}


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
])
def test_a_wrong_answer_is_told_what_is_wrong(key, wrong, capsys):
    assert exercises.check(key, wrong) is False
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
