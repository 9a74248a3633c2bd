"""The Loyalty service, added later without touching any other service: one point per whole euro of a
confirmed order, taken back if no courier can deliver it.

Each award and each reversal is its own ledger entry, keyed by the event that caused it (a second award
would be stored, and seen, beside the first). Events can arrive in any order: if the delivery failure comes
first, the order is remembered as failed and the late confirmation awards nothing.
"""

from __future__ import annotations

from yafdp.runtime.unit_of_work import Envelope, UnitOfWork


def award_points(event: Envelope, uow: UnitOfWork) -> None:
    confirmed = event["detail"]
    order_id = confirmed["order_id"]
    if uow.get("order", order_id):
        return  # awarded already, or the order failed before its confirmation reached us
    points = int(confirmed["amount"])
    who = {"order_id": order_id, "customer_id": confirmed["customer_id"]}
    uow.put("entry", f"{order_id}#award#{event['id']}", {**who, "points": points})
    uow.put("order", order_id, {**who, "state": "awarded", "points": points})
    uow.publish("Loyalty_Points_Added", {**who, "points": points})


def revert_points(event: Envelope, uow: UnitOfWork) -> None:
    failed = event["detail"]
    order_id = failed["order_id"]
    who = {"order_id": order_id, "customer_id": failed["customer_id"]}
    standing = uow.get("order", order_id)
    if standing is None:
        uow.put("order", order_id, {**who, "state": "failed_before_award", "points": 0})
        return
    if standing["state"] != "awarded":
        return
    points = standing["points"]
    uow.put("entry", f"{order_id}#revert#{event['id']}", {**who, "points": -points})
    uow.put("order", order_id, {**standing, "state": "reverted"})
    uow.publish("Loyalty_Points_Reverted", {**who, "points": points})
