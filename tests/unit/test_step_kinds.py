"""The kinds of step (compensatable, pivot, retriable) as the saga literature names them, computed from the catalog:
the shipped saga's, and what moving Loyalty's award after the pivot changes."""

from yafdp.analysis.tables import step_kinds
from yafdp.catalog import load_catalog


def test_the_shipped_steps_in_saga_order():
    table = step_kinds(load_catalog())
    assert list(table["step"]) == ["payment.charge_order", "restaurant.review_order", "delivery.schedule_delivery",
                                   "loyalty.award_points"]
    kinds = table.set_index("step")["kind"]
    assert kinds["delivery.schedule_delivery"] == "pivot"
    assert kinds["payment.charge_order"] == kinds["loyalty.award_points"] == "compensatable"
    assert "refund_order on Delivery_Failed" in table.set_index("step").loc["payment.charge_order", "undone by"]


def _award_on_delivery(document, *, keep_revert: bool):
    award = document["subscriptions"][0]
    award["pattern"] = {"source": ["yafdp.delivery"], "detail-type": ["Delivery_Scheduled"]}
    if not keep_revert:
        document["subscriptions"] = [award]


def test_awarding_on_delivery_makes_loyalty_a_retriable_step_with_no_compensation(catalog_copy):
    catalog_copy.edit("loyalty", lambda d: _award_on_delivery(d, keep_revert=False))
    kinds = step_kinds(load_catalog(catalog_copy.root)).set_index("step")
    assert kinds.loc["loyalty.award_points", "kind"] == "retriable"
    assert kinds.loc["loyalty.award_points", "undone by"] == "—"


def test_a_step_before_the_pivot_with_no_compensation_is_neither(catalog_copy):
    catalog_copy.edit("loyalty", lambda d: d.update(subscriptions=d["subscriptions"][:1]))
    kinds = step_kinds(load_catalog(catalog_copy.root)).set_index("step")
    assert kinds.loc["loyalty.award_points", "kind"] == "neither"
