"""The event-flow graph, the Mermaid diagram, the AsyncAPI document and ``yafdp catalog``."""

import json
import re

import pytest
from networkx import get_edge_attributes as nx_edge_attributes

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


@pytest.mark.parametrize("observers, joining", [("inline", False), ("apart", False), ("inline", True),
                                                 ("apart", True)])
def test_no_edge_of_the_flow_graph_runs_through_a_node(observers, joining):
    """The review's case: the red Delivery_Failed → payment edge crossed the loyalty box. Each arrow's arc, with the
    curvature it was drawn with, passes through no box but its own two (the default curvatures crossed ten), the
    observers' boxes included when they are drawn apart; also with chapter 07's Rating service added."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yafdp.analysis import figures
    from yafdp.catalog.inline import add_service, example_document

    catalog = load_catalog()
    if joining:
        catalog = add_service(catalog, example_document("rating", catalog), {"ask_for_review": lambda e, u: None})
    graph = flow_graph(catalog)
    fig, ax = plt.subplots(figsize=(18, 9))  # as the chapters draw it
    figures.draw_flow_graph(graph, catalog.bus.start_event, title="t", ax=ax, observers=observers)
    pos = figures.flow_layout(graph, catalog.bus.start_event, base=figures.course_layout())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    names = {(d["label"] if d["kind"] == "service" else d["label"].replace("_", "\n", 1).replace("_", " ")): n
             for n, d in graph.nodes(data=True)}
    boxes = {names[t.get_text()]: t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts
             if t.get_text() in names}
    observed = {t.get_gid(): t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts
                if (t.get_gid() or "").startswith("observer:")}
    assert not [(a, b) for a in observed for b in observed if a < b and observed[a].overlaps(observed[b])]
    assert all(box.x0 >= 0 and box.x1 <= fig.bbox.width for box in observed.values())  # each box whole on the page
    boxes |= observed
    arrows = [p for p in ax.patches if p.get_gid()]
    drawn = [e for e, watching in nx_edge_attributes(graph, "observer").items() if observers == "inline" or not watching]
    assert len(arrows) == len(drawn) and len(boxes) > 10
    for arrow in arrows:
        u, v = arrow.get_gid().split("->")
        points = figures.arc_points(ax.transData.transform(pos[u]), ax.transData.transform(pos[v]),
                                    arrow.get_connectionstyle().rad)
        crossed = [n for n, box in boxes.items() if n not in (u, v) and any(box.contains(x, y) for x, y in points)]
        assert not crossed, f"{u} → {v} runs through {crossed}"
    plt.close(fig)


# ---------------------------------------------------------------- observers apart, and a layout nothing moves


def _joining(catalog, name: str, path: str, publishes: bool) -> dict:
    """A service document for ``catalog``: it hears the saga's start event on a subscription of ``path`` and, when
    ``publishes``, publishes an event of its own on it."""
    start, id_field = catalog.events[catalog.bus.start_event], catalog.saga.id_field
    event = f"{name.capitalize()}_Noted"
    return {
        "service": name, "source": f"{catalog.bus.source_prefix}{name}", "description": "a test service",
        "origin": "extension",
        "events": {event: {"description": "noted", "origin": "extension", "kind": "happy", "terminal": True,
                           "schema": {"type": "object", "required": [id_field],
                                      "properties": {id_field: {"type": "string"}}}}} if publishes else {},
        "subscriptions": [{"rule": f"{name}-hears-start", "handler": "hear", "purpose": "hear the start", "path": path,
                           "pattern": {"source": [start.source], "detail-type": [start.name]},
                           "emits": [event] if publishes else []}],
    }


def _extended(catalog, document):
    from yafdp.catalog.inline import add_service

    return add_service(catalog, document, {"hear": lambda event, uow: None})


CATALOGS = {"shipped": None, "trip_booking": "examples/trip_booking"}


def test_the_observers_are_the_status_tracker_notification_and_loyalty_style_services():
    from yafdp.analysis.graph import observers
    from yafdp.catalog.inline import add_service, example_document

    catalog = load_catalog()
    services, rules = observers(catalog)
    assert services == {"notification", "loyalty"}  # Loyalty: nobody acts on its points, they move no order
    assert rules == {"order-tracks-status", "notification-tells-customer", "loyalty-awards-confirmed-order",
                     "loyalty-reverts-undeliverable-order"}
    graph = flow_graph(catalog)
    assert graph.edges["event:Payment_Success", "service:order"]["observer"]  # the tracker observes ...
    assert not graph.edges["service:order", "event:Order_Initiated"]["observer"]  # ... the saga's start does not
    assert not graph.edges["service:payment", "event:Payment_Refunded"]["observer"]  # a compensation is the saga's
    rated = add_service(catalog, example_document("rating", catalog), {"ask_for_review": lambda e, u: None})
    assert "rating" in observers(rated)[0]  # chapter 07's Rating service publishes, but nothing hears it
    trip = load_catalog("examples/trip_booking")
    assert observers(trip) == (frozenset(), frozenset({"trip-tracks-status"}))
    # a service that publishes nothing and whose subscriptions do not observe (a compensation that only writes)
    # is the saga's
    assert "quiet" not in observers(_extended(catalog, _joining(catalog, "quiet", "compensation", False)))[0]


@pytest.mark.parametrize("which", sorted(CATALOGS))
@pytest.mark.parametrize("path, publishes", [("observe", False), ("happy", True), ("compensation", True)])
def test_adding_a_service_moves_no_node_of_the_layout(which, path, publishes):
    """Chapter 07's promise: the layout of a catalog with a service added keeps every node of the catalog's own
    layout where it was, and puts the new ones where no node is."""
    from yafdp.analysis import figures

    catalog = load_catalog(CATALOGS[which])
    before = figures.course_layout(catalog)
    after = figures.flow_layout(flow_graph(_extended(catalog, _joining(catalog, "joiner", path, publishes))),
                                catalog.bus.start_event, base=before)
    assert {n: after[n] for n in before} == before
    new = {n: xy for n, xy in after.items() if n not in before}
    assert set(new) == {"service:joiner"} | ({"event:Joiner_Noted"} if publishes else set())
    assert len(set(after.values())) == len(after), "two nodes share a place"


def test_the_shipped_catalog_without_loyalty_is_drawn_where_the_course_draws_it():
    from yafdp.analysis import figures

    catalog = load_catalog()
    before = figures.flow_layout(flow_graph(catalog.without("loyalty")), catalog.bus.start_event,
                                 base=figures.course_layout())
    assert before == {n: xy for n, xy in figures.course_layout().items() if n in before}
    assert set(figures.course_layout()) - set(before) == {"service:loyalty", "event:Loyalty_Points_Added",
                                                          "event:Loyalty_Points_Reverted"}


def _drawn(catalog, **options):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from yafdp.analysis import figures

    fig, ax = plt.subplots(figsize=(18, 9))
    figures.draw_flow_graph(flow_graph(catalog), catalog.bus.start_event, title="t", ax=ax, **options)
    fig.canvas.draw()
    texts = {t.get_text(): t.get_position() for t in ax.texts if not (t.get_gid() or "").startswith("observer:")}
    observed = {t.get_gid(): t.get_text() for t in ax.texts if (t.get_gid() or "").startswith("observer:")}
    limits = (ax.get_xlim(), ax.get_ylim())
    plt.close(fig)
    return texts, observed, limits


def test_observers_apart_are_listed_under_the_saga_and_an_added_observer_moves_nothing_drawn():
    from yafdp.catalog.inline import add_service, example_document

    catalog = load_catalog()
    texts, observed, limits = _drawn(catalog, observers="apart")
    assert "notification" not in texts and "loyalty" not in texts and "Loyalty\nPoints Added" not in texts
    assert "order" in texts  # the Order service starts the saga: it stays, its tracker is listed apart
    assert set(observed) == {"observer:order", "observer:loyalty", "observer:notification"}
    assert "Restaurant Confirmed Order → Loyalty Points Added" in observed["observer:loyalty"]
    assert observed["observer:notification"].count("Payment Failed") == 1
    rated = add_service(catalog, example_document("rating", catalog), {"ask_for_review": lambda e, u: None})
    texts_after, observed_after, limits_after = _drawn(rated, observers="apart")
    assert texts_after == texts and limits_after == limits  # every node and the axes: not a pixel moved
    assert set(observed_after) == set(observed) | {"observer:rating"}
    assert "Delivery Scheduled → Rating Requested" in observed_after["observer:rating"]
    inline, observed_inline, _ = _drawn(catalog)
    assert not observed_inline and {"notification", "loyalty"} <= set(inline)


def test_observers_apart_carry_a_runs_counts_and_an_unknown_view_is_refused():
    counts = {("event:Payment_Success", "service:notification"): 7}
    _, observed, _ = _drawn(load_catalog(), observers="apart", edge_counts=counts)
    assert "Payment Success (7)" in observed["observer:notification"]
    with pytest.raises(ValueError, match="observers='beside'"):
        _drawn(load_catalog(), observers="beside")
