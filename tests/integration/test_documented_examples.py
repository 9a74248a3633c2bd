"""The examples the docstrings describe that start a moto server or run a whole saga: run here, as
integration tests, so the docs cannot drift from working code (the small pure examples stay doctests)."""

import os

import boto3
from moto import mock_aws

from yafdp.analysis.check import check_run
from yafdp.analysis.costs import usage_from_run
from yafdp.analysis.trace import load_run
from yafdp.backends.aws.clients import make_clients
from yafdp.backends.aws.deployer import Change, apply
from yafdp.backends.aws.deployment import deploy
from yafdp.backends.aws.dynamo_state import ATTRIBUTES, KEY_SCHEMA, DynamoState
from yafdp.backends.aws.moto_server import MotoServer
from yafdp.backends.aws.package import build_package
from yafdp.backends.aws.step_functions import deploy_state_machine
from yafdp.backends.aws.teardown import destroy, inventory
from yafdp.catalog import load_catalog
from yafdp.plan import build_plan
from yafdp.runs import RunOptions, run_saga
from yafdp.simulation.fitting import fit_profile


def test_a_moto_server_listens_on_a_loopback_port():
    with MotoServer() as url:
        assert url.startswith("http://127.0.0.1:")


def test_applying_a_plan_twice_changes_nothing_the_second_time(moto_url):
    clients = make_clients(moto_url)
    plan = build_plan(load_catalog(), "doc-apply", account=clients.account(), run_id="doc-apply")
    first = apply(plan, clients, build_package(), run_functions=False, echo=lambda line: None)
    again = apply(plan, clients, build_package(), run_functions=False, echo=print)
    destroy(clients, "doc-apply", echo=lambda line: None)
    assert first[0] == Change(action="create", kind="event bus", name="doc-apply-saga") and again == []


def test_destroy_removes_everything_the_inventory_found_archive_included(moto_url):
    clients = make_clients(moto_url)
    deploy(clients, load_catalog(), backend="moto", prefix="doc-inv", echo=lambda line: None)
    found = inventory(clients, "doc-inv")
    assert [str(r) for r in found[:2]] == ["event source mapping doc-inv-delivery → doc-inv-delivery",
                                           "event source mapping doc-inv-loyalty → doc-inv-loyalty"]
    assert "archive doc-inv-saga-all-events" in {str(r) for r in found}  # bus.json names it saga-all-events
    deleted = destroy(clients, "doc-inv", echo=lambda line: None)
    assert len(deleted) == len(found) and inventory(clients, "doc-inv") == []
    assert not [a for a in clients.events.list_archives(NamePrefix="doc-inv-").get("Archives", [])]


def test_a_delivery_commits_once_whatever_a_second_commit_of_it_carries(moto_url):
    dynamodb = make_clients(moto_url).dynamodb
    dynamodb.create_table(TableName="doc-state", KeySchema=KEY_SCHEMA, AttributeDefinitions=ATTRIBUTES,
                          BillingMode="PAY_PER_REQUEST")
    state = DynamoState(dynamodb, "doc-state")
    first = state.commit({("charge", "ord-1"): {"amount": 17.0}}, marker="charges#ev-1", outbox_key="charges#ev-1",
                         outbox=[], trace=[])
    again = state.commit({("charge", "ord-1"): {"amount": 99.0}}, marker="charges#ev-1", outbox_key="charges#ev-1",
                         outbox=[], trace=[])
    assert (first, again, state.get("charge", "ord-1")) == (True, False, {"amount": 17.0})


def test_the_state_machine_deploys_under_the_plans_name(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, os.environ.get(key, "testing"))
    with mock_aws():
        catalog = load_catalog()
        arn = deploy_state_machine(boto3.client("stepfunctions"), boto3.client("iam"), catalog, build_plan(catalog))
    assert arn.endswith(":stateMachine:yafdp-order-saga")


def test_a_small_run_places_every_order_and_ends_them_all(tmp_path):
    summary = run_saga(RunOptions(orders=5, seed=1, out=tmp_path))
    assert (summary["orders"]["placed"], summary["orders"]["not_terminal"]) == (5, 0)
    assert all(i.passed for i in check_run(tmp_path))
    assert load_run(tmp_path).orders["status"].isin(load_catalog().saga.terminal).all()


def test_a_simulated_run_is_priced_and_fitted(tmp_path):
    run_saga(RunOptions(orders=30, seed=2, out=tmp_path, latency_model="aws-eu-west-1"))
    usage = usage_from_run(tmp_path)
    assert usage.orders == 30 and usage.eventbridge_events > 4 * usage.orders
    assert sorted(fit_profile(tmp_path / "run.db")["handler_by_service"])[:2] == ["delivery", "loyalty"]


def test_the_explorer_follows_one_order_and_tells_the_customer_in_order(tmp_path):
    from yafdp.analysis import trace
    from yafdp.analysis.explorer import order_steps
    from yafdp.services.notification import MESSAGES

    run_saga(RunOptions(orders=12, seed=1, out=tmp_path))
    run = trace.load_run(tmp_path)
    for order_id in run.orders["order_id"]:
        steps = order_steps(run, order_id)
        assert steps["status"].iloc[0] == "PLACED" and steps["status"].iloc[-1] in load_catalog().saga.terminal
        told = steps[(steps["what"] == "delivered") & (steps["by"] == "notification") & (steps["outcome"] == "ok")]
        for _, step in told.iterrows():  # each message is the one for the event just delivered, never a later one
            template = MESSAGES[step["event"]]
            assert step["customer told"].startswith(template.split("{")[0]), (order_id, step["event"])


def test_the_readmes_orders_file_places_its_order(tmp_path):
    """README, Running the saga: the `my-orders.json` example places one order that ends DELIVERY_SCHEDULED."""
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = re.search(r"`my-orders.json` holding\s*```json\n(.*?)```", readme, flags=re.S).group(1)
    (tmp_path / "my-orders.json").write_text(example)
    summary = run_saga(RunOptions(orders_file=tmp_path / "my-orders.json", out=tmp_path / "run"))
    assert json.loads(example)[0]["order_id"] == "ord-mine-1"
    assert summary["orders"]["by_status"] == {"DELIVERY_SCHEDULED": 1} and summary["orders"]["refused"] == 0
