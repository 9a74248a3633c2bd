"""The Restaurant service: accepts or rejects paid orders, stops cooking those no courier can take, and rejects at the
saga's deadline an order its restaurant never answered.

A restaurant whose ``answers`` is false (the marketplace's) never answers: its paid orders wait, ``awaiting_answer``,
until ``Order_Timed_Out`` comes. The Restaurant service decides what the deadline means, because it alone knows whether
its step is done: an order still waiting is rejected (``no_answer``, and Payment refunds it as any rejection), one
confirmed or rejected already is left as it is, and one not paid yet is remembered (``timed_out``) so that its late
payment is rejected when it arrives.
"""

from __future__ import annotations

from yafdp.runtime.unit_of_work import Envelope, UnitOfWork


def review_order(event: Envelope, uow: UnitOfWork) -> None:
    reviewing = paid_order_to_review(event, uow)
    if reviewing is None:
        return
    paid, who, restaurant = reviewing
    unavailable = [i["item_id"] for i in paid["items"] if not restaurant["menu"][i["item_id"]]["available"]]
    reason = "restaurant_closed" if not restaurant["open"] else ("item_unavailable" if unavailable else None)
    if reason:
        reject(uow, who, reason, unavailable=unavailable)
        return
    confirm(uow, who, paid, restaurant["prep_minutes"])


def paid_order_to_review(event: Envelope, uow: UnitOfWork) -> tuple[dict, dict, dict] | None:
    """``(paid, who, restaurant)`` for a ``Payment_Success`` the restaurant must now decide on: its detail, the
    order's ids, and the marketplace's restaurant. None when there is nothing to decide: decided already (a late
    payment of an order whose deadline passed is rejected here), or the restaurant never answers (the order is
    recorded as waiting, for the deadline to close)."""
    paid = event["detail"]
    order_id, restaurant_id = paid["order_id"], paid["restaurant_id"]
    who = {"order_id": order_id, "restaurant_id": restaurant_id, "customer_id": paid["customer_id"]}
    known = uow.get("order", order_id)
    if known is not None:
        if known["status"] == "timed_out":  # the deadline passed before the payment arrived: too late now
            reject(uow, who, "no_answer")
        return None
    restaurant = uow.world.restaurants[restaurant_id]
    if not restaurant.get("answers", True):  # the restaurant's tablet is off: nobody will ever answer
        uow.put("order", order_id, {**who, "status": "awaiting_answer"})
        return None
    return paid, who, restaurant


def confirm(uow: UnitOfWork, who: dict, paid: dict, ready_in_minutes: int) -> None:
    """Record the paid order as confirmed and publish ``Restaurant_Confirmed_Order``."""
    uow.put("order", who["order_id"], {**who, "status": "confirmed"})
    uow.publish("Restaurant_Confirmed_Order", {
        **who, "amount": paid["amount"], "currency": paid["currency"],
        "delivery_zone": paid["delivery_zone"], "ready_in_minutes": ready_in_minutes,
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


def time_out_order(event: Envelope, uow: UnitOfWork) -> None:
    """The saga's deadline passed (``Order_Timed_Out``): reject the order if the restaurant never answered it, remember
    it if it was not paid yet, leave it alone if it was decided."""
    late = event["detail"]
    order_id = late["order_id"]
    order = uow.get("order", order_id)
    # The orchestration's human step times out on the paid order it waited for (its Task passes Payment_Success on):
    # paid, never answered, whatever the restaurant's table holds.
    paid = event["detail-type"] == "Payment_Success"
    if order is None and not paid:  # not paid yet: its Payment_Success, if it comes, is rejected then
        uow.put("order", order_id, {"order_id": order_id, "restaurant_id": late["restaurant_id"],
                                    "customer_id": late["customer_id"], "status": "timed_out"})
        return
    if order is None or order["status"] == "awaiting_answer":
        reject(uow, {k: late[k] for k in ("order_id", "restaurant_id", "customer_id")}, "no_answer")


def reject(uow: UnitOfWork, who: dict, reason: str, unavailable: list | None = None) -> None:
    """Record the paid order as rejected (``reason``, the items ``unavailable``) and publish ``Restaurant_Rejected_Order``."""
    uow.put("order", who["order_id"], {**who, "status": "rejected", "reason": reason, "unavailable": unavailable or []})
    uow.publish("Restaurant_Rejected_Order", {**who, "reason": reason})
