"""The blog's claim, checked: the Loyalty service joined by subscribing, and nothing else changed.

No other service's catalog entry, rule, target, queue or policy differs with Loyalty deployed; no other
service's code mentions it; the same orders end the same way with or without it; and its points are taken
back when a confirmed order cannot be delivered, whichever of the two events reaches it first.
"""

import pytest

from yafdp.catalog import load_catalog
from yafdp.analysis.extension import diff_catalogs, diff_plans, modules_mentioning
from yafdp.runtime.faults import Faults
from yafdp.plan import build_plan
from yafdp.runs import RunOptions, run_saga
from yafdp.services import loyalty
from yafdp.analysis.trace import load_run, order_outcomes, service_items
from yafdp.runtime.unit_of_work import BufferedUnitOfWork


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_adding_loyalty_adds_only_loyalty_resources_and_changes_no_existing_one(catalog):
    changes = diff_plans(build_plan(catalog.without("loyalty")), build_plan(catalog))
    touched = {(c.kind, c.name, c.service, c.change) for c in changes if c.change != "unchanged"}
    assert touched, "the plan with Loyalty should add Loyalty's resources"
    assert {(service, change) for _, _, service, change in touched} == {("loyalty", "added")}
    assert {kind for kind, *_ in touched} >= {"rule", "target", "queue", "dead-letter queue", "function", "role"}


def test_every_other_service_keeps_identical_rules_targets_and_policies(catalog):
    before, after = build_plan(catalog.without("loyalty")), build_plan(catalog)
    for rule in before.rules:
        assert after.rule(rule.name) == rule
    for service in before.services:
        assert after.service(service.name) == service


def test_adding_loyalty_changes_no_other_catalog_entry(catalog):
    changes = diff_catalogs(catalog.without("loyalty"), catalog)
    assert {(c.service, c.change) for c in changes if c.change != "unchanged"} == {("loyalty", "added")}


def test_plan_diff_reports_a_rule_whose_pattern_changed(catalog_copy):
    catalog_copy.edit("payment", lambda doc: doc["subscriptions"][0]["pattern"].update({"detail": {"amount": [{"exists": True}]}}))
    changes = diff_plans(build_plan(load_catalog()), build_plan(load_catalog(catalog_copy.root)))
    assert [(c.kind, c.name) for c in changes if c.change == "changed"] == [("rule", "yafdp-payment-charges-order")]


def test_no_service_module_but_loyalty_mentions_loyalty():
    assert set(modules_mentioning("loyalty")) == {"loyalty"}


def test_same_orders_end_the_same_way_with_or_without_loyalty(tmp_path):
    decisions = {}
    for name, excluded in {"without": ("loyalty",), "with": ()}.items():
        out = tmp_path / name
        run_saga(RunOptions(orders=60, seed=4, out=out, exclude_services=excluded,
                            rates={"payment_failure": 0.1, "restaurant_reject": 0.1, "delivery_failure": 0.2}, faults=Faults(reorder_rate=0.5)))
        run = load_run(out)
        decisions[name] = (order_outcomes(run)[["status", "charged", "refunded"]],
                           run.payments[["order_id", "kind", "amount"]].reset_index(drop=True))
    assert decisions["with"][0].equals(decisions["without"][0])
    assert decisions["with"][1].equals(decisions["without"][1])
    assert (decisions["with"][0]["status"] == "CANCELLED").any()


class _Store:
    """Loyalty's state between handler calls: what a committed unit of work leaves behind."""

    def __init__(self):
        self.items = {}

    def get(self, kind, key):
        return self.items.get((kind, key))

    def handle(self, handler, detail_type, detail):
        uow = BufferedUnitOfWork("loyalty", self, world=None, now=lambda: 0.0)
        handler({"id": f"evt-{len(self.items)}", "detail-type": detail_type, "detail": detail}, uow)
        self.items.update(uow.writes)
        return [published for _, published, _ in uow.outbox]

    def points(self, order_id):
        return sum(item["points"] for (kind, key), item in self.items.items()
                   if kind == "entry" and key.startswith(order_id))


CONFIRMED = {"order_id": "ord-1", "customer_id": "cus-1", "restaurant_id": "res-napoli", "amount": 17.5,
             "currency": "EUR", "delivery_zone": "zone-outskirts", "ready_in_minutes": 20}
FAILED = {"order_id": "ord-1", "customer_id": "cus-1", "restaurant_id": "res-napoli", "reason": "no_courier_available"}


def test_points_are_reverted_when_delivery_fails_after_the_award():
    store = _Store()
    assert store.handle(loyalty.award_points, "Restaurant_Confirmed_Order", CONFIRMED) == ["Loyalty_Points_Added"]
    assert store.points("ord-1") == 17
    assert store.handle(loyalty.revert_points, "Delivery_Failed", FAILED) == ["Loyalty_Points_Reverted"]
    assert store.points("ord-1") == 0


def test_no_points_when_the_delivery_failure_arrives_before_the_confirmation():
    store = _Store()
    assert store.handle(loyalty.revert_points, "Delivery_Failed", FAILED) == []
    assert store.handle(loyalty.award_points, "Restaurant_Confirmed_Order", CONFIRMED) == []
    assert store.points("ord-1") == 0


def test_a_reordered_run_leaves_tombstones_and_loyalty_nets_out(tmp_path):
    run_saga(RunOptions(orders=120, seed=21, out=tmp_path, rates={"delivery_failure": 0.2},
                        faults=Faults(reorder_rate=0.5)))
    run = load_run(tmp_path)
    states = service_items(run, "loyalty", "order")["state"].value_counts()
    assert states.get("failed_before_award", 0) > 0
    outcomes = order_outcomes(run)
    delivered = outcomes["status"] == "DELIVERY_SCHEDULED"
    assert (outcomes.loc[~delivered, "loyalty_points"] == 0).all()
    assert (outcomes.loc[delivered, "loyalty_points"] == outcomes.loc[delivered, "amount"].astype(int)).all()
