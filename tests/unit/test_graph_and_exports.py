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


def test_each_failure_is_drawn_as_its_own_sub_graph_readable_at_page_width():
    import matplotlib

    matplotlib.use("Agg")
    from yafdp.analysis import figures
    from yafdp.analysis.graph import consequences, flow_graph, saga_order

    catalog = load_catalog()
    graph = flow_graph(catalog)
    failures = saga_order(catalog, [e.name for e in catalog.events.values() if e.kind == "failure"])
    assert failures[0] == "Payment_Failed" and failures[-1] == "Delivery_Failed"
    only = {(u, v) for u, v in consequences(catalog, "Restaurant_Rejected_Order")
            if graph.edges[u, v].get("path") != "observe"}
    panels = {f: {"only": {(u, v) for u, v in consequences(catalog, f) if graph.edges[u, v].get("path") != "observe"}}
              for f in failures}
    fig = figures.flow_graph_panels(graph, catalog.bus.start_event, panels, columns=2, panel_size=(9, 4.5))
    figures.save(fig, "compensations", None)
    width, height = fig.get_size_inches() * figures.PNG_DPI
    assert width <= 2200 and height <= 1200  # chapter 06's was 2148 x 4303 px: four whole graphs stacked
    drawn = {t.get_text() for t in fig.axes[failures.index("Restaurant_Rejected_Order")].texts}
    labels = {graph.nodes[n]["label"] for edge in only for n in edge}
    assert {label.replace("_", "\n", 1).replace("_", " ") if label[0].isupper() else label for label in labels} == drawn


def test_no_edge_of_the_flow_graph_runs_through_a_node():
    """The review's case: the red Delivery_Failed → payment edge crossed the loyalty box. Each arrow's arc, with the
    curvature it was drawn with, passes through no box but its own two (the default curvatures crossed ten)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yafdp.analysis import figures

    catalog = load_catalog()
    graph = flow_graph(catalog)
    fig, ax = plt.subplots(figsize=(18, 9))  # as the chapters draw it
    figures.draw_flow_graph(graph, catalog.bus.start_event, title="t", ax=ax)
    pos = figures.flow_layout(graph, catalog.bus.start_event, base=figures.course_layout())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    names = {(d["label"] if d["kind"] == "service" else d["label"].replace("_", "\n", 1).replace("_", " ")): n
             for n, d in graph.nodes(data=True)}
    boxes = {names[t.get_text()]: t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts
             if t.get_text() in names}
    arrows = [p for p in ax.patches if p.get_gid()]
    assert len(arrows) == graph.number_of_edges()
    for arrow in arrows:
        u, v = arrow.get_gid().split("->")
        points = figures.arc_points(ax.transData.transform(pos[u]), ax.transData.transform(pos[v]),
                                    arrow.get_connectionstyle().rad)
        crossed = [n for n, box in boxes.items() if n not in (u, v) and any(box.contains(x, y) for x, y in points)]
        assert not crossed, f"{u} → {v} runs through {crossed}"
    plt.close(fig)
