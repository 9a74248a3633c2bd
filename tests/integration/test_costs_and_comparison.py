"""The cost model (cited prices, usage counted from runs) and the side-by-side tables of notebook 09."""

import json
from pathlib import Path

import pytest

from yafdp.catalog import load_catalog
from yafdp.analysis.compare import coupling, cost_table, latency_summary, loyalty_change, messages_per_order, quota_loads, saga_latency
from yafdp.analysis.costs import PRICED_AS, Usage, cost_per_million_orders, load_prices, usage_from_run
from yafdp.simulation.quotas import load_quotas
from yafdp.runs import RunOptions, run_saga

PRICES = Path(__file__).resolve().parents[2] / "data" / "prices.json"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("styles")
    paths = {}
    for label, style, workflow in (("choreography", "choreography", "standard"),
                                   ("standard", "orchestration", "standard"), ("express", "orchestration", "express")):
        paths[label] = root / label
        run_saga(RunOptions(orders=60, seed=2, out=paths[label], style=style, workflow=workflow,
                            latency_model="aws-eu-west-1"))
    return paths


def test_every_price_names_its_page_date_and_region():
    for name, price in json.loads(PRICES.read_text())["prices"].items():
        source = price["source"]
        assert source["page"].startswith("https://aws.amazon.com/") and source["date"] and source["region"], name
    assert set(PRICED_AS.values()) <= set(load_prices())


def test_cost_per_million_orders_multiplies_usage_by_the_listed_prices():
    usage = Usage(orders=4, eventbridge_events=20, step_functions_standard_transitions=80, dynamodb_write_units=40)
    cost = cost_per_million_orders(usage)
    assert cost["eventbridge_events"] == 5.0  # 5 events an order, $1 per million
    assert cost["step_functions_standard_transitions"] == 500.0  # 20 transitions an order, $0.025 per thousand
    assert cost["dynamodb_write_units"] == 6.25
    assert cost_per_million_orders(Usage(orders=1, lambda_gb_seconds=1), arm=True)["lambda_gb_seconds"] \
        < cost_per_million_orders(Usage(orders=1, lambda_gb_seconds=1))["lambda_gb_seconds"]


def test_usage_is_counted_by_what_each_style_uses(runs):
    chor, standard, express = (usage_from_run(runs[k]) for k in ("choreography", "standard", "express"))
    assert chor.eventbridge_events > 4 * chor.orders and chor.sqs_requests >= 3 * chor.eventbridge_events
    assert chor.step_functions_standard_transitions == 0
    assert standard.eventbridge_events == standard.sqs_requests == 0
    assert standard.step_functions_standard_transitions > 10 * standard.orders
    assert express.step_functions_express_requests == express.orders and express.step_functions_express_gb_seconds > 0
    assert chor.lambda_requests == pytest.approx(standard.lambda_requests, rel=0.05)


def test_the_cost_table_has_a_total_per_style(runs):
    table = cost_table(runs)
    assert list(table.columns) == ["choreography", "standard", "express"]
    assert table.loc["total"].tolist() == pytest.approx(table.drop("total").sum().tolist(), abs=0.05)
    assert table.loc["total", "standard"] > table.loc["total", "express"]


def test_latency_and_messages_tables_cover_every_style(runs):
    summary = latency_summary(saga_latency(runs))
    assert list(summary.index) == ["choreography", "standard", "express"]
    assert (summary["p99_ms"] >= summary["p50_ms"]).all()
    messages = messages_per_order(runs)
    assert messages.loc["Step Functions state transitions", "choreography"] == 0
    assert messages.loc["SQS requests", "standard"] == 0


def test_only_the_state_machine_names_other_services_when_orchestrated():
    table = coupling(load_catalog())
    orchestrated = table[table["style"] == "orchestration"].set_index("participant")
    assert orchestrated.loc["state machine", "services it names"] == 6
    assert orchestrated.drop("state machine")["services it names"].eq(0).all()
    assert table[table["style"] == "choreography"].set_index("participant").loc["delivery", "services it names"] == 1


def test_adding_loyalty_touches_no_other_file_in_choreography_but_edits_the_shared_definition():
    table = loyalty_change().set_index("style")
    assert table.loc["choreography", "other services' files changed"] == 0
    assert table.loc["choreography", "existing states changed"] == 0
    assert table.loc["orchestration", "existing states changed"] >= 2  # the Parallel states loyalty joins
    assert table.loc["orchestration", "lines added"] > 0


def test_quota_loads_come_from_what_one_order_uses(runs):
    quotas = load_quotas()
    loads = quota_loads(runs["choreography"], quotas)
    assert 1_000 < loads["EventBridge invocations quota"] < loads["PutEvents quota"]
    standard = quota_loads(runs["standard"], quotas)
    assert standard["state transitions quota (Standard)"] < standard["StartExecution quota (Standard)"]
