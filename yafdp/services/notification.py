"""The Notification service: one message to the customer per saga step, however often the event arrives."""

from __future__ import annotations

from yafdp.runtime.unit_of_work import Envelope, UnitOfWork

MESSAGES = {
    "Order_Initiated": "We received your order {order_id}.",
    "Payment_Success": "Payment of {amount} {currency} accepted.",
    "Payment_Failed": "Your payment was declined ({reason}); the order is cancelled.",
    "Payment_Refunded": "We refunded {amount} {currency}.",
    "Restaurant_Confirmed_Order": "The restaurant is cooking; ready in {ready_in_minutes} min.",
    "Restaurant_Rejected_Order": "The restaurant cannot take your order ({reason}); you will be refunded.",
    "Delivery_Scheduled": "A courier is on the way; expected in {eta_minutes} min.",
    "Delivery_Failed": "No courier is available; your order is cancelled and refunded.",
}


def notify_customer(event: Envelope, uow: UnitOfWork) -> None:
    detail, detail_type = event["detail"], event["detail-type"]
    template = MESSAGES.get(detail_type, "Update on your order {order_id}: " + detail_type)
    uow.add("message", f"{detail['order_id']}#{detail_type}", {
        "order_id": detail["order_id"], "customer_id": detail.get("customer_id"),
        "detail_type": detail_type, "text": template.format_map(detail),
    })
