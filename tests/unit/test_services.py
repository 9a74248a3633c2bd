"""Each service on its own: plain handlers over a fake store, idempotent and tolerant of any event order."""

import pytest

from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.services import delivery, loyalty, notification, order, payment, restaurant
from yafdp.services.order import OrderRejectedError, validate_order
from yafdp.runtime.unit_of_work import BufferedUnitOfWork

WORLD = load_marketplace()
SAGA = load_catalog().saga  # the statuses the Order service keeps, as the catalog declares them


class FakeStore:
    """A service's store as a dict; ``commit`` applies a unit of work like the bus does."""

    def __init__(self):
        self.items = {}
        self.published = []

    def get(self, kind, key):
        return self.items.get((kind, key))

    def handle(self, service, handler, detail_type, detail):
        uow = BufferedUnitOfWork(service, self, WORLD, now=lambda: 0.0, saga=SAGA)
        handler({"id": f"evt-{len(self.published)}", "detail-type": detail_type, "detail": detail}, uow)
        self.items.update(uow.writes)
        self.published += [(t, d) for _, t, d in uow.outbox]
        return [t for _, t, _ in uow.outbox]


REQUEST = {"order_id": "ord-s-1", "customer_id": "cus-7", "restaurant_id": "res-napoli",
           "items": [{"item_id": "margherita", "quantity": 2, "unit_price": 8.5}], "amount": 17.0,
           "payment_token": "tok_visa_4242", "delivery_zone": "zone-centre"}


def placed(store=None) -> FakeStore:
    store = store or FakeStore()
    uow = BufferedUnitOfWork("order", store, WORLD, now=lambda: 0.0, saga=SAGA)
    order.place_order(REQUEST, uow)
    store.items.update(uow.writes)
    return store


def test_place_order_stores_it_placed_and_publishes_order_initiated():
    uow = BufferedUnitOfWork("order", FakeStore(), WORLD, now=lambda: 1.5, saga=SAGA)
    assert order.place_order(REQUEST, uow) == "ord-s-1"
    assert uow.writes[("order", "ord-s-1")]["status"] == "PLACED"
    [(_, detail_type, detail)] = uow.outbox
    assert detail_type == "Order_Initiated" and detail["amount"] == 17.0


@pytest.mark.parametrize("change, field", [
    (lambda r: r.pop("customer_id"), "customer_id"),
    (lambda r: r.update(amount=-5), "amount"),
    (lambda r: r.update(amount=17_000_000), "amount"),
    (lambda r: r.update(amount="17"), "amount"),
    (lambda r: r.update(amount=float("nan")), "amount"),
    (lambda r: r.update(amount=16.0), "amount"),
    (lambda r: r.update(restaurant_id="res-unknown"), "restaurant_id"),
    (lambda r: r.update(restaurant_id=42), "restaurant_id"),
    (lambda r: r.update(delivery_zone="zone-moon"), "delivery_zone"),
    (lambda r: r.update(payment_token="4242 4242 4242 4242"), "payment_token"),
    (lambda r: r.update(items=[]), "items"),
    (lambda r: r.update(items="margherita"), "items"),
    (lambda r: r["items"][0].update(item_id="sushi"), "items[0].item_id"),
    (lambda r: r["items"][0].update(quantity=0), "items[0].quantity"),
    (lambda r: r["items"][0].update(quantity=2.5), "items[0].quantity"),
    (lambda r: r["items"][0].update(unit_price=0.01), "items[0].unit_price"),
    (lambda r: r.update(currency="USD"), "currency"),
])
def test_bad_order_is_refused_naming_the_field(change, field):
    request = {**REQUEST, "items": [dict(i) for i in REQUEST["items"]]}
    change(request)
    with pytest.raises(OrderRejectedError) as info:
        validate_order(request, WORLD)
    assert info.value.field == field
    assert str(info.value).startswith(f"order refused: {field}: ")


def test_bad_order_stores_and_publishes_nothing():
    uow = BufferedUnitOfWork("order", FakeStore(), WORLD, now=lambda: 0.0, saga=SAGA)
    with pytest.raises(OrderRejectedError):
        order.place_order({**REQUEST, "amount": -1}, uow)
    assert uow.writes == {} and uow.outbox == []


def test_order_status_never_moves_backwards():
    store = placed()
    for detail_type in ["Payment_Success", "Delivery_Scheduled", "Restaurant_Confirmed_Order", "Payment_Success"]:
        store.handle("order", order.track_status, detail_type, {"order_id": "ord-s-1"})
    record = store.get("order", "ord-s-1")
    assert record["status"] == "DELIVERY_SCHEDULED"
    assert [moved for _, _, moved in record["history"]] == ["moved", "moved", "kept", "kept"]


def test_refund_that_overtakes_the_rejection_still_ends_cancelled():
    store = placed()
    store.handle("order", order.track_status, "Payment_Refunded", {"order_id": "ord-s-1"})
    store.handle("order", order.track_status, "Restaurant_Rejected_Order", {"order_id": "ord-s-1"})
    assert store.get("order", "ord-s-1")["status"] == "CANCELLED"


def order_initiated(token="tok_visa_4242"):
    return {**validate_order({**REQUEST, "payment_token": token}, WORLD)}


def test_payment_charges_once_and_refunds_once():
    store = FakeStore()
    assert store.handle("payment", payment.charge_order, "Order_Initiated", order_initiated()) == ["Payment_Success"]
    assert store.handle("payment", payment.charge_order, "Order_Initiated", order_initiated()) == []
    rejected = {"order_id": "ord-s-1", "restaurant_id": "res-napoli", "customer_id": "cus-7", "reason": "restaurant_closed"}
    assert store.handle("payment", payment.refund_order, "Restaurant_Rejected_Order", rejected) == ["Payment_Refunded"]
    assert store.handle("payment", payment.refund_order, "Delivery_Failed", rejected) == []
    assert store.get("refund", "ord-s-1")["amount"] == 17.0


def test_payment_never_stores_the_token():
    store = FakeStore()
    store.handle("payment", payment.charge_order, "Order_Initiated", order_initiated("tok_visa_secret123"))
    assert "tok_visa_secret123" not in repr(store.items)


def test_declined_token_fails_the_payment_and_charges_nothing():
    store = FakeStore()
    assert store.handle("payment", payment.charge_order, "Order_Initiated", order_initiated("tok_declined_0001")) == ["Payment_Failed"]
    assert store.get("charge", "ord-s-1") is None


def test_refund_without_a_charge_fails_loudly():
    with pytest.raises(LookupError, match="no charge"):
        FakeStore().handle("payment", payment.refund_order, "Delivery_Failed", {"order_id": "ord-s-1"})


def test_restaurant_rejects_a_closed_restaurant_and_sold_out_items():
    paid = {"order_id": "ord-s-1", "customer_id": "cus-7", "restaurant_id": "res-night-owl", "amount": 10.5,
            "currency": "EUR", "delivery_zone": "zone-centre", "items": [{"item_id": "cheeseburger", "quantity": 1, "unit_price": 10.5}]}
    store = FakeStore()
    assert store.handle("restaurant", restaurant.review_order, "Payment_Success", paid) == ["Restaurant_Rejected_Order"]
    sold_out = {**paid, "order_id": "ord-s-2", "restaurant_id": "res-napoli",
                "items": [{"item_id": "tiramisu", "quantity": 1, "unit_price": 5.0}]}
    store.handle("restaurant", restaurant.review_order, "Payment_Success", sold_out)
    assert store.published[-1][1]["reason"] == "item_unavailable"


def test_delivery_fails_in_a_zone_without_couriers():
    confirmed = {"order_id": "ord-s-1", "customer_id": "cus-7", "restaurant_id": "res-napoli", "amount": 17.0,
                 "currency": "EUR", "delivery_zone": "zone-outskirts", "ready_in_minutes": 15}
    assert FakeStore().handle("delivery", delivery.schedule_delivery, "Restaurant_Confirmed_Order", confirmed) == ["Delivery_Failed"]


CONFIRMED = {"order_id": "ord-s-1", "customer_id": "cus-7", "restaurant_id": "res-napoli", "amount": 17.9,
             "currency": "EUR", "delivery_zone": "zone-centre", "ready_in_minutes": 15}
FAILED = {"order_id": "ord-s-1", "customer_id": "cus-7", "restaurant_id": "res-napoli", "reason": "no_courier_available"}


def net_points(store) -> int:
    return sum(item["points"] for (kind, _), item in store.items.items() if kind == "entry")


def test_loyalty_awards_then_reverts():
    store = FakeStore()
    assert store.handle("loyalty", loyalty.award_points, "Restaurant_Confirmed_Order", CONFIRMED) == ["Loyalty_Points_Added"]
    assert net_points(store) == 17
    assert store.handle("loyalty", loyalty.revert_points, "Delivery_Failed", FAILED) == ["Loyalty_Points_Reverted"]
    assert store.handle("loyalty", loyalty.revert_points, "Delivery_Failed", FAILED) == []
    assert net_points(store) == 0


def test_loyalty_failure_arriving_before_the_confirmation_awards_nothing():
    store = FakeStore()
    assert store.handle("loyalty", loyalty.revert_points, "Delivery_Failed", FAILED) == []
    assert store.handle("loyalty", loyalty.award_points, "Restaurant_Confirmed_Order", CONFIRMED) == []
    assert net_points(store) == 0


def test_notification_sends_one_message_per_step():
    store = FakeStore()
    for _ in range(3):
        store.handle("notification", notification.notify_customer, "Restaurant_Confirmed_Order", CONFIRMED)
    messages = [item for (kind, _), item in store.items.items() if kind == "message"]
    assert len(messages) == 1 and "15 min" in messages[0]["text"]


def test_every_handler_named_in_the_catalog_exists():
    from yafdp.catalog import load_catalog

    catalog = load_catalog()
    assert catalog.code.check() == []
    for sub in catalog.subscriptions:
        assert callable(catalog.handler(sub.service, sub.handler))


def test_missing_handler_says_what_is_missing():
    from yafdp.catalog import CatalogError, load_catalog

    with pytest.raises(CatalogError, match="yafdp/services/payment.py: has no function 'teleport'"):
        load_catalog().handler("payment", "teleport")
