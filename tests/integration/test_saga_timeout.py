"""The saga's timeout: a restaurant that never answers is given up on at the deadline, a one-time EventBridge
Scheduler schedule per order, with its compensation; the run passes `yafdp check`. Locally on both buses and with the
orchestration; on moto, the schedule is created for an order and deleted when the order ends."""

import json

import pytest

from yafdp.analysis.check import check_run
from yafdp.analysis.trace import load_run
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs import RunOptions, finish, start_saga

WORLD = load_marketplace()
SILENT = {"order_id": "ord-silent-1", "customer_id": "cus-ada", "restaurant_id": "res-silent",
          "items": [{"item_id": "lasagne", "quantity": 1, "unit_price": 12.0}], "amount": 12.0, "currency": "EUR",
          "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}
FINE = {**SILENT, "order_id": "ord-fine-1", "restaurant_id": "res-napoli",
        "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}], "amount": 17.0}


def _run(tmp_path, **options):
    options = RunOptions(orders=0, seed=4, out=tmp_path / "run", latency_model="aws-eu-west-1", **options)
    bus = start_saga(options)
    for request in (SILENT, FINE):
        bus.call("order", "place_order", request)
    bus.run()
    report = bus.services.schedules.report()
    finish(bus, options, options.out, 0.0)
    return load_run(options.out), report


@pytest.mark.parametrize("bus", ["classic", "custom"])
def test_the_deadline_fires_for_the_order_nobody_answers_and_its_compensation_follows(tmp_path, bus):
    run, report = _run(tmp_path, bus=bus)
    statuses = run.orders.set_index("order_id")["status"].to_dict()
    assert statuses == {"ord-silent-1": "CANCELLED", "ord-fine-1": "DELIVERY_SCHEDULED"}
    events = run.events.set_index("detail_type")
    timed_out = run.events[run.events["detail_type"] == "Order_Timed_Out"]
    assert list(timed_out["order_id"]) == ["ord-silent-1"] and list(timed_out["published_by"]) == ["schedule#deadline-ord-silent-1"]
    placed = run.events[(run.events["detail_type"] == "Order_Initiated") & (run.events["order_id"] == "ord-silent-1")]
    assert float(timed_out["published_at"].iloc[0] - placed["published_at"].iloc[0]) == pytest.approx(
        WORLD.saga_timeout_seconds, abs=1.0)  # at() has whole seconds
    rejected = json.loads(events.loc["Restaurant_Rejected_Order", "detail"])
    assert rejected["reason"] == "no_answer"
    assert "Payment_Refunded" in set(run.events.loc[run.events["order_id"] == "ord-silent-1", "detail_type"])
    assert report == {"schedules_created": 2, "schedules_deleted": 1, "schedules_invoked": 1}
    assert all(result.passed for result in check_run(run.path)), [r.name for r in check_run(run.path) if not r.passed]


def test_without_a_restaurant_that_never_answers_no_deadline_fires_and_the_run_ends_with_its_orders(tmp_path):
    options = RunOptions(orders=30, seed=2, out=tmp_path / "run", latency_model="aws-eu-west-1")
    bus = start_saga(options)
    bus.run()
    assert bus.services.schedules.report() == {"schedules_created": 30, "schedules_deleted": 30, "schedules_invoked": 0}
    assert bus.vt < 60  # the deadlines were called off: nothing waited for them
    finish(bus, options, options.out, 0.0)
    assert "Order_Timed_Out" not in set(load_run(options.out).events["detail_type"])


def test_the_orchestration_calls_the_deadlines_off_too(tmp_path):
    options = RunOptions(orders=10, seed=2, out=tmp_path / "run", style="orchestration")
    bus = start_saga(options)
    bus.run()
    assert bus.services.schedules.report() == {"schedules_created": 10, "schedules_deleted": 10, "schedules_invoked": 0}
    finish(bus, options, options.out, 0.0)


def test_a_deadline_schedule_is_created_on_aws_for_an_order_and_deleted_when_it_ends(clients, tmp_path):
    from yafdp.backends.aws.deployment import deploy
    from yafdp.backends.aws.function import FunctionConfig, ServiceFunction
    from yafdp.backends.aws.teardown import destroy

    catalog = load_catalog()
    plan = deploy(clients, catalog, backend="moto", prefix="tmo", echo=lambda line: None)
    try:
        order = ServiceFunction(FunctionConfig.for_service(plan, "order"), catalog, plan, WORLD, clients.events,
                                clients.dynamodb, scheduler=clients.scheduler)
        order.call("place_order", FINE)
        schedule = clients.scheduler.get_schedule(Name="deadline-ord-fine-1", GroupName="tmo-deadlines")
        assert schedule["ScheduleExpression"].startswith("at(") and schedule["ActionAfterCompletion"] == "DELETE"
        target = schedule["Target"]
        assert target["Arn"] == plan.bus_arn() and target["RoleArn"] == plan.role_arn("tmo-scheduler")
        assert target["EventBridgeParameters"] == {"DetailType": "Order_Timed_Out", "Source": "yafdp.order"}
        assert json.loads(target["Input"])["order_id"] == "ord-fine-1"
        delivered = {"id": "e-1", "detail-type": "Delivery_Scheduled", "source": "yafdp.delivery",
                     "detail": {"order_id": "ord-fine-1"}, "time": "2026-01-01T00:00:00Z", "version": "0",
                     "account": plan.account, "region": plan.region, "resources": []}
        order.handle_message({"messageId": "m-1", "attributes": {},
                              "body": json.dumps({"rule": plan.rule("order-tracks-status").name, "event": delivered})})
        with pytest.raises(clients.scheduler.exceptions.ResourceNotFoundException):
            clients.scheduler.get_schedule(Name="deadline-ord-fine-1", GroupName="tmo-deadlines")
    finally:
        destroy(clients, "tmo", echo=lambda line: None)
    assert not clients.scheduler.list_schedule_groups(NamePrefix="tmo-")["ScheduleGroups"]
