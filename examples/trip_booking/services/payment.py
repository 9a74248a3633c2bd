"""The Payment service: charges the trip's total once the flight, the room and the car are held (the pivot).

It needs two facts that arrive on two events in either order: the traveller's card, on ``Trip_Requested``, and the
trip's total, on ``Car_Booked``. Each handler records its fact on one item per trip and the one that finds both
charges (a join that does not depend on the order of delivery). Both write the same item, so two calls at once
cannot both miss the other: the second one's commit is refused (its item changed) and it runs again on fresh state.
"""

from __future__ import annotations


def keep_card(event, uow) -> None:
    requested = event["detail"]
    _join(uow, requested["trip_id"], card_token=requested["card_token"], traveller_id=requested["traveller_id"])


def charge_trip(event, uow) -> None:
    booked = event["detail"]
    _join(uow, booked["trip_id"], total=booked["total"], traveller_id=booked["traveller_id"])


def _join(uow, trip_id: str, **fact) -> None:
    trip = {"trip_id": trip_id, **(uow.get("trip", trip_id) or {}), **fact}
    if trip.get("decided") or "card_token" not in trip or "total" not in trip:
        uow.put("trip", trip_id, trip)
        return  # decided already, or still waiting for the other fact
    who = {"trip_id": trip_id, "traveller_id": trip["traveller_id"]}
    reason = next((why for prefix, why in uow.world["cards"]["declined_prefixes"].items()
                   if trip["card_token"].startswith(prefix)), None)
    uow.put("trip", trip_id, {**trip, "decided": "declined" if reason else "charged"})
    if reason:
        uow.put("decline", trip_id, {**who, "reason": reason})
        uow.publish("Payment_Declined", {**who, "reason": reason})
        return
    charge = {**who, "amount": trip["total"], "currency": uow.world["currency"],
              "payment_id": f"pay-{trip_id.removeprefix('trip-')}"}
    uow.put("charge", trip_id, charge)
    uow.publish("Payment_Charged", charge)
