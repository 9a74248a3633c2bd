"""Chapter 06's comparison: one failing step, three topologies, three different ends."""

import json

from yafdp.analysis.dead_letters import dead_letter_paths
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.runs.workload import planned_requests
from yafdp.services.order import validate_order

WORLD = load_marketplace()


def _payment_success() -> dict:
    order = validate_order(planned_requests(load_catalog(), 1, seed=4, rates={"payment_failure": 0, "restaurant_reject": 0, "delivery_failure": 0})[0].request, WORLD)
    return {"order_id": order["order_id"], "payment_id": "pay-1", "customer_id": order["customer_id"],
            "restaurant_id": order["restaurant_id"], "items": order["items"], "amount": order["amount"],
            "currency": "EUR", "delivery_zone": order["delivery_zone"]}


def test_each_topology_ends_a_failing_step_in_its_own_place_with_its_own_attributes():
    table = dead_letter_paths(load_catalog(), WORLD, "Payment_Success", _payment_success(), "restaurant-reviews-paid-order")
    queue, direct, undeliverable = table.to_dict("records")
    assert queue["ends in"].startswith("the service queue's DLQ") and queue["handler or delivery attempts"] == 5
    assert "ApproximateReceiveCount" in queue["attributes of that dead-letter queue"]
    assert "ERROR_CODE" not in queue["attributes of that dead-letter queue"]
    assert direct["ends in"].startswith("nowhere: dropped") and direct["handler or delivery attempts"] == 3
    assert undeliverable["ends in"].startswith("the rule's DLQ") and "NO_PERMISSIONS" in undeliverable["error recorded"]
    assert "ERROR_CODE" in undeliverable["attributes of that dead-letter queue"]
    assert json.dumps(table.to_dict("records"))  # plain values, readable in a table
