"""The Payment service: charges an order's payment token, and refunds the charge if the order fails later.

It never sees a card number, nor the customer's token: ``Order_Initiated`` carries the payment provider's
reference for the payment method (``payment_method``, see :meth:`yafdp.catalog.marketplace.Marketplace.payment_method`),
which the service charges with the provider's credentials; the provider's answer depends only on it. Whether an order was charged or refunded is kept by order id (the business key), so
each happens at most once; every charge and refund made is also written to the service's ledger as its own
item, keyed by the event that caused it, so that a second one could never hide behind the first.
"""

from __future__ import annotations

from yafdp.runtime.unit_of_work import Envelope, UnitOfWork


def charge_order(event: Envelope, uow: UnitOfWork) -> None:
    order = event["detail"]
    order_id = order["order_id"]
    if uow.get("charge", order_id) or uow.get("decline", order_id):
        return  # decided already (a replayed Order_Initiated): the outcome was published then
    reason = uow.world.decline_reason(order["payment_method"])
    customer = {"order_id": order_id, "customer_id": order["customer_id"],
                "amount": order["amount"], "currency": order["currency"]}
    if reason:
        uow.put("decline", order_id, {**customer, "reason": reason})
        uow.publish("Payment_Failed", {**customer, "reason": reason})
        return
    payment_id = "pay-" + order_id.removeprefix("ord-")
    uow.put("charge", order_id, {**customer, "kind": "charge", "payment_id": payment_id,
                                 "payment_method": order["payment_method"]})
    _ledger(uow, event, {**customer, "kind": "charge", "reference": payment_id})
    uow.publish("Payment_Success", {
        **customer, "payment_id": payment_id, "restaurant_id": order["restaurant_id"],
        "items": order["items"], "delivery_zone": order["delivery_zone"],
    })


def refund_order(event: Envelope, uow: UnitOfWork) -> None:
    order_id = event["detail"]["order_id"]
    charge = uow.get("charge", order_id)
    if charge is None:
        # Causally impossible (the restaurant and delivery steps follow a charge); fail loudly so the
        # event is retried and, if it really has no charge, ends in the dead-letter queue with this reason.
        raise LookupError(f"no charge recorded for order {order_id}: nothing to refund")
    if uow.get("refund", order_id):
        return
    refund = {"order_id": order_id, "customer_id": charge["customer_id"], "kind": "refund",
              "refund_id": "ref-" + order_id.removeprefix("ord-"), "amount": charge["amount"],
              "currency": charge["currency"], "reason": event["detail-type"]}
    uow.put("refund", order_id, refund)
    _ledger(uow, event, {k: refund[k] for k in ("order_id", "customer_id", "kind", "amount", "currency")}
            | {"reference": refund["refund_id"]})
    uow.publish("Payment_Refunded", {k: refund[k] for k in
                                     ("order_id", "customer_id", "refund_id", "amount", "currency", "reason")})


def _ledger(uow, event: dict, entry: dict) -> None:
    """Write one money movement to the ledger (``run.db``'s ``ledger`` view), keyed by the event that caused it."""
    uow.put("ledger", f"{entry['order_id']}#{entry['kind']}#{event['id']}",
            {**entry, "event_id": event["id"], "at": uow.now()})
