"""The Restaurant service: accepts or rejects paid orders, and stops cooking those no courier can take."""

from __future__ import annotations

from yafdp.runtime.unit_of_work import Envelope, UnitOfWork


def review_order(event: Envelope, uow: UnitOfWork) -> None:
    paid = event["detail"]
    order_id, restaurant_id = paid["order_id"], paid["restaurant_id"]
    if uow.get("order", order_id):
        return
    restaurant = uow.world.restaurants[restaurant_id]
    unavailable = [i["item_id"] for i in paid["items"] if not restaurant["menu"][i["item_id"]]["available"]]
    reason = "restaurant_closed" if not restaurant["open"] else ("item_unavailable" if unavailable else None)
    who = {"order_id": order_id, "restaurant_id": restaurant_id, "customer_id": paid["customer_id"]}
    if reason:
        uow.put("order", order_id, {**who, "status": "rejected", "reason": reason, "unavailable": unavailable})
        uow.publish("Restaurant_Rejected_Order", {**who, "reason": reason})
        return
    uow.put("order", order_id, {**who, "status": "confirmed"})
    uow.publish("Restaurant_Confirmed_Order", {
        **who, "amount": paid["amount"], "currency": paid["currency"],
        "delivery_zone": paid["delivery_zone"], "ready_in_minutes": restaurant["prep_minutes"],
    })


def cancel_order(event: Envelope, uow: UnitOfWork) -> None:
    order_id = event["detail"]["order_id"]
    order = uow.get("order", order_id)
    if order is None:
        raise LookupError(f"order {order_id} was never confirmed here: nothing to cancel")
    if order["status"] != "confirmed":
        return
    uow.put("order", order_id, {**order, "status": "cancelled"})
    uow.publish("Restaurant_Cancelled_Order", {
        "order_id": order_id, "restaurant_id": order["restaurant_id"],
        "customer_id": order["customer_id"], "reason": event["detail-type"],
    })
