"""What the notebooks show of a plan and a run: the tables, the trace views, the figures, the failure paths."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from yafdp.analysis import figures, tables, trace
from yafdp.catalog import load_catalog
from yafdp.analysis.check import check_run
from yafdp.runtime.faults import Faults
from yafdp.analysis.graph import consequences, flow_graph
from yafdp.plan import build_plan, plan_resources
from yafdp.runs import RunOptions, finish, run_saga, start_saga


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def plan(catalog):
    return build_plan(catalog)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run_saga(RunOptions(orders=40, seed=9, out=out, rates={"payment_failure": 0.1, "restaurant_reject": 0.1, "delivery_failure": 0.2}))
    return trace.load_run(out)


def test_plan_tables_have_one_row_per_rule_and_list_every_queue(plan):
    assert len(tables.plan_rules(plan)) == len(plan.rules) == len(tables.plan_targets(plan))
    queues = {r.name for r in plan_resources(plan) if r.kind in ("queue", "dead-letter queue")}
    assert set(tables.plan_queues(plan).index) == queues
    iam = tables.plan_iam(plan)
    assert "PublishOwnEventsOnly" not in iam.loc["notification"].index
    assert "yafdp.payment" in iam.loc[("payment", "PublishOwnEventsOnly"), "condition"]



def test_plan_tables_given_the_catalog_list_the_services_in_saga_order_and_lose_no_row(plan, catalog):
    order = tables.services_in_saga_order(catalog)
    for table in (tables.plan_rules, tables.plan_targets, tables.plan_queues, tables.plan_iam):
        plain, ordered = table(plan), table(plan, catalog)
        if table is tables.plan_targets:
            services = [plan.rule(rule).service for rule in ordered.index]
        elif table is tables.plan_iam:
            services = ordered.index.get_level_values("service")
        else:
            services = ordered["service"]
        seen = list(dict.fromkeys(services))
        assert seen == [s for s in order if s in seen], table.__name__
        assert sorted(map(str, plain.index)) == sorted(map(str, ordered.index)), table.__name__

def test_resource_names_are_unique_per_kind(plan):
    keys = [(r.kind, r.name) for r in plan_resources(plan)]
    assert len(keys) == len(set(keys))


def test_a_declined_card_needs_no_compensation_and_a_failed_delivery_three(catalog):
    paths = tables.failure_paths(catalog)
    assert paths.loc["Payment_Failed", "rule"].tolist() == ["—"]
    assert set(paths.loc["Delivery_Failed", "service"]) == {"payment", "restaurant", "loyalty"}


def test_consequences_of_a_failed_delivery_reach_every_compensation_and_no_happy_step(catalog):
    edges = consequences(catalog, "Delivery_Failed")
    assert ("service:payment", "event:Payment_Refunded") in edges
    assert ("service:loyalty", "event:Loyalty_Points_Reverted") in edges
    assert ("event:Payment_Refunded", "service:order") in edges
    assert not any("Delivery_Scheduled" in node or "Payment_Success" in node for edge in edges for node in edge)
    assert edges <= set(flow_graph(catalog).edges)


def test_order_outcomes_match_what_the_workload_meant_and_the_money_moved(run):
    outcomes = trace.order_outcomes(run, expected={o: "DELIVERY_SCHEDULED" for o in run.orders["order_id"]})
    cancelled = outcomes["status"] == "CANCELLED"
    assert cancelled.any() and (~cancelled).any()
    assert (outcomes.loc[cancelled, "charged"] == outcomes.loc[cancelled, "refunded"]).all()
    assert (outcomes.loc[~cancelled, "charged"] == outcomes.loc[~cancelled, "amount"]).all()
    assert (outcomes["as_expected"] == ~cancelled).all()


def test_deliveries_per_rule_lists_rules_that_received_nothing(run):
    table = trace.deliveries_per_rule(run)
    assert set(table.index) == set(run.info["rules"])
    assert table.loc["yafdp-payment-charges-order", "Order_Initiated"] == len(run.orders)


def test_percentiles_ms_is_per_group_in_milliseconds(run):
    hops = trace.hop_latency(run)
    table = trace.percentiles_ms(hops, "latency_s", by="service")
    assert table["count"].sum() == len(hops)
    assert table.loc["payment", "p50_ms"] == pytest.approx(hops[hops["service"] == "payment"]["latency_s"].median() * 1000)


def test_a_poisoned_run_fails_its_invariants_until_the_dead_letters_are_redriven(tmp_path):
    options = RunOptions(orders=60, seed=2, out=tmp_path, store="file", faults=Faults(poison_rate=0.03))
    bus = start_saga(options)
    bus.run()
    before = tables.invariants_table(check_run(tmp_path))
    letters = trace.dead_letter_messages(trace.load_run(tmp_path))
    # The deployed topology's DLQ: the service queue's, after maxReceiveCount receives, with SQS's attributes.
    assert len(letters) and set(letters["kind"]) == {"queue"} and set(letters["ApproximateReceiveCount"]) == {"5"}
    assert (before["verdict"] == "FAIL").any()
    assert before.loc["no event lost", "verdict"] == "pass"
    bus.faults = Faults()
    assert bus.redrive() == len(letters)
    bus.run()
    finish(bus, options, str(tmp_path), 1.0)
    assert (tables.invariants_table(check_run(tmp_path))["verdict"] != "FAIL").all()
    assert trace.dead_letter_messages(trace.load_run(tmp_path)).empty


def test_delivery_outcomes_always_has_every_outcome_column(run):
    assert list(trace.delivery_outcomes(run).columns) == list(trace.OUTCOMES)


def test_an_unknown_backend_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="'local', 'moto', 'aws'"):
        start_saga(RunOptions(orders=1, out=tmp_path, backend="gcp"))


def test_latency_figures_carry_units_and_percentiles(run):
    hops = trace.hop_latency(run)
    fig = figures.latency_distribution(hops["latency_s"] * 1000, title="hops")
    labels = [text.get_text() for ax in fig.axes for text in ax.get_legend().get_texts()]
    assert all("(ms)" in ax.get_xlabel() for ax in fig.axes)
    assert any(label.startswith("p99 = ") and label.endswith(" ms") for label in labels)
    ax = figures.cdf_by(hops, "processing_s", "service", title="handlers", xlabel="handler time (ms)")
    assert len(ax.get_lines()) == hops["service"].nunique()


def test_order_timeline_has_a_row_per_service_in_saga_order(run):
    order_id = run.orders["order_id"].iloc[0]
    ax = figures.order_timeline(trace.order_timeline(run, order_id), title="one order")
    rows = [label.get_text() for label in ax.get_yticklabels()]
    assert rows[:2] == ["order", "payment"] and "notification" in rows


def test_no_edge_count_is_printed_over_a_node(catalog, run):
    """The new-user review's case: in chapter 05's observed flow, counts printed over names ("pay287ent")."""
    graph = flow_graph(catalog)
    fig, ax = plt.subplots(figsize=(18, 9))  # as the chapters draw it
    figures.draw_flow_graph(graph, catalog.bus.start_event, title="observed", ax=ax, edge_counts=trace.observed_edges(run))
    fig.canvas.draw()
    names = {graph.nodes[n]["label"].replace("_", "\n", 1).replace("_", " ") for n in graph.nodes}
    texts = [t for t in ax.texts if t.get_text() in names]
    counts = [t for t in ax.texts if t.get_text().isdigit()]
    assert len(texts) == graph.number_of_nodes() and counts
    renderer = fig.canvas.get_renderer()
    for count in counts:
        box = count.get_window_extent(renderer)
        over = [t.get_text() for t in texts if box.overlaps(t.get_bbox_patch().get_window_extent(renderer))]
        assert not over, f"count {count.get_text()} is printed over {over}"
    plt.close(fig)


def test_flow_graph_panels_draw_one_panel_each_and_fade_what_is_not_highlighted(catalog):
    fig = figures.flow_graph_panels(flow_graph(catalog), catalog.bus.start_event, {
        "all": {}, "failed delivery": {"highlight": consequences(catalog, "Delivery_Failed")}}, columns=2)
    assert [ax.get_title() for ax in fig.axes] == ["all", "failed delivery"]
    edge_alphas = {round(arrow.get_edgecolor()[3], 2) for arrow in fig.axes[1].patches}
    assert edge_alphas == {figures.FADED, 1.0}
    # with nothing highlighted every edge is drawn, observers faint
    assert {round(arrow.get_edgecolor()[3], 2) for arrow in fig.axes[0].patches} == {figures.OBSERVE_ALPHA, 1.0}


@pytest.mark.parametrize("latency_model", [None, "aws-eu-west-1"], ids=["measured", "simulated"])
def test_a_handlers_events_are_published_after_it_ends(tmp_path, latency_model):
    """The outbox publishes after the handler's unit of work: a timeline's publish marker sits after its bar."""
    run_saga(RunOptions(orders=10, seed=1, out=tmp_path, latency_model=latency_model))
    run = trace.load_run(tmp_path)
    done = run.deliveries[run.deliveries["outcome"] == "ok"]
    ends = dict(zip(done["rule"] + "#" + done["event_id"], done["finished_at"]))
    published = run.events.dropna(subset=["published_by"])
    published = published[published["published_by"].isin(ends)]
    assert len(published) > 10
    assert (published["published_at"] >= published["published_by"].map(ends)).all()
