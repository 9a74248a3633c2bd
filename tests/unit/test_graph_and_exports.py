"""The event-flow graph, the Mermaid diagram, the AsyncAPI document and ``yafdp catalog``."""

import json
import re

import pytest

from yafdp.catalog import load_catalog
from yafdp.cli import main
from yafdp.analysis.graph import causal_graph, flow_graph, mermaid


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_flow_graph_has_services_and_events_as_distinct_node_kinds(catalog):
    graph = flow_graph(catalog)
    kinds = {d["kind"] for _, d in graph.nodes(data=True)}
    assert kinds == {"service", "event"}
    assert graph.number_of_nodes() == len(catalog.services) + len(catalog.events)


def test_flow_graph_marks_compensation_edges(catalog):
    graph = flow_graph(catalog)
    assert graph.edges["event:Payment_Success", "service:restaurant"]["happy"] is True
    assert graph.edges["event:Restaurant_Rejected_Order", "service:payment"]["happy"] is False
    assert graph.edges["service:payment", "event:Payment_Refunded"]["path"] == "compensation"


def test_causal_graph_follows_handlers(catalog):
    graph = causal_graph(catalog)
    assert graph.has_edge("Order_Initiated", "Payment_Success")
    assert graph.has_edge("Delivery_Failed", "Payment_Refunded")
    assert not graph.has_edge("Payment_Success", "Order_Initiated")


def test_mermaid_lists_every_node_and_dots_compensations(catalog):
    text = mermaid(catalog)
    assert text.startswith("flowchart LR")
    for name in list(catalog.events) + list(catalog.services):
        assert f'"{name}"' in text
    assert "-.->" in text and "-->" in text


@pytest.mark.parametrize("fmt", ["table", "json", "mermaid", "asyncapi"])
def test_cli_catalog_prints_every_format(fmt, capsys):
    assert main(["catalog", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "Restaurant_Confirmed_Order" in out
    if fmt in ("json", "asyncapi"):
        json.loads(out)
