"""The hybrid design run: events between services, and the Restaurant's review of a paid order as a workflow inside
the service. Nobody else changes, every order ends as it does with the shipped Restaurant, and yafdp check holds."""

from collections import Counter

from yafdp.analysis import compare
from yafdp.analysis.check import check_run
from yafdp.analysis.trace import load_run
from yafdp.backends.local.sync_execution import start_sync_execution
from yafdp.catalog import load_catalog
from yafdp.runs import RunOptions, run_saga
from yafdp.analysis.hybrid import WorkflowRestaurant, with_workflow_restaurant

RUN = dict(orders=120, seed=3, latency_model="aws-eu-west-1", rates={"restaurant_reject": 0.4})


def test_the_workflow_restaurant_decides_every_order_as_the_shipped_one_and_the_saga_holds(tmp_path):
    restaurant = WorkflowRestaurant(start_sync_execution)
    hybrid = with_workflow_restaurant(load_catalog(), restaurant)
    run_saga(RunOptions(out=tmp_path / "hybrid", catalog=hybrid, **RUN))
    run_saga(RunOptions(out=tmp_path / "choreography", **RUN))
    assert all(r.passed for r in check_run(tmp_path / "hybrid"))
    ended = {name: load_run(tmp_path / name).orders.set_index("order_id")["status"].to_dict()
             for name in ("hybrid", "choreography")}
    assert ended["hybrid"] == ended["choreography"]
    paths = Counter(tuple(e.states) for e in restaurant.executions)
    assert paths[("Is the kitchen open?", "Are the items available?", "Book a kitchen slot", "Confirm")] > 0
    assert paths[("Is the kitchen open?", "Closed", "Reject")] > 0  # a closed kitchen: caught, then rejected
    assert paths[("Is the kitchen open?", "Are the items available?", "Sold out", "Reject")] > 0
    rejected = load_run(tmp_path / "hybrid").events.query("detail_type == 'Restaurant_Rejected_Order'")
    assert len(rejected) == paths[("Is the kitchen open?", "Closed", "Reject")] + paths[
        ("Is the kitchen open?", "Are the items available?", "Sold out", "Reject")]
    table = compare.designs({"choreography": tmp_path / "choreography", "hybrid": tmp_path / "hybrid"},
                            {"hybrid": restaurant.executions})
    assert table.loc["Step Functions executions per order", "choreography"] == 0
    assert table.loc["Step Functions executions per order", "hybrid"] == round(len(restaurant.executions) / 120, 2)
    assert table.loc["events published per order", "hybrid"] == table.loc["events published per order", "choreography"]
    assert table.loc["Lambda invocations per order", "hybrid"] > table.loc["Lambda invocations per order", "choreography"]
