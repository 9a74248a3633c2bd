"""The Payment service: charges the trip's total once the flight, the room and the car are held (the pivot).

It keeps the traveller's card token from ``Trip_Requested``: a ``Car_Booked`` that arrives before it (events arrive
in any order) fails and comes back after the queue's visibility timeout, when the token is there.
"""

from __future__ import annotations


def keep_card(event, uow) -> None:
    trip = event["detail"]
    uow.add("card", trip["trip_id"], {"trip_id": trip["trip_id"], "card_token": trip["card_token"]})


def charge_trip(event, uow) -> None:
    booked = event["detail"]
    trip_id = booked["trip_id"]
    if uow.get("charge", trip_id) or uow.get("decline", trip_id):
        return  # decided already
    card = uow.get("card", trip_id)
    if card is None:
        raise LookupError(f"trip {trip_id}: its card is not known yet (Trip_Requested has not reached Payment)")
    who = {"trip_id": trip_id, "traveller_id": booked["traveller_id"]}
    reason = next((why for prefix, why in uow.world["cards"]["declined_prefixes"].items()
                   if card["card_token"].startswith(prefix)), None)
    if reason:
        uow.put("decline", trip_id, {**who, "reason": reason})
        uow.publish("Payment_Declined", {**who, "reason": reason})
        return
    charge = {**who, "amount": booked["total"], "currency": uow.world["currency"],
              "payment_id": f"pay-{trip_id.removeprefix('trip-')}"}
    uow.put("charge", trip_id, charge)
    uow.publish("Payment_Charged", charge)
