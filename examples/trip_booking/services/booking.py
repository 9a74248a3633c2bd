"""What the Flight, Hotel and Car services share: hold something for a trip, or give it back.

Each keeps one ``booking`` item per trip (the business key), so a duplicate or replayed event books nothing twice,
and a cancellation that comes again cancels nothing twice.
"""

from __future__ import annotations


def book(event, uow, *, booked: str, unavailable: str, prefix: str, offer) -> None:
    """Hold what ``offer(trip) -> (price, reason)`` offers for the trip of ``event`` (``reason``: why there is
    none, or None) and publish ``booked`` (with the trip's total so far) or ``unavailable``."""
    trip = event["detail"]
    trip_id = trip["trip_id"]
    if uow.get("booking", trip_id) is not None:
        return  # decided already: the outcome was published then
    price, reason = offer(trip)
    who = {"trip_id": trip_id, "traveller_id": trip["traveller_id"]}
    if reason is not None:
        uow.put("booking", trip_id, {**who, "status": "unavailable", "reason": reason})
        uow.publish(unavailable, {**who, "reason": reason})
        return
    reference = f"{prefix}-{trip_id.removeprefix('trip-')}"
    total = round(trip.get("total", 0.0) + price, 2)
    uow.put("booking", trip_id, {**who, "status": "held", "reference": reference, "price": price})
    uow.publish(booked, {**who, "destination": trip["destination"], "nights": trip["nights"], "reference": reference,
                         "price": price, "total": total})


def at_destination(uow, table: str, daily: str, available: str, what: str):
    """An ``offer`` for something at the trip's destination, priced per night or day: ``uow.world[table][city]``
    with its ``daily`` price and its ``available`` flag."""
    def offer(trip):
        spec = uow.world[table].get(trip["destination"])
        if spec is None or not spec[available]:
            return 0.0, f"no {what} in {trip['destination']}"
        return round(spec[daily] * trip["nights"], 2), None
    return offer


def cancel(event, uow, *, cancelled: str) -> None:
    """Give back the trip's booking because a later step failed (``event``), and publish ``cancelled`` once."""
    trip_id = event["detail"]["trip_id"]
    booking = uow.get("booking", trip_id)
    if booking is None:
        # Causally impossible (every failure that reaches here follows this booking); fail loudly so the event is
        # retried and, if it really has no booking, ends in the dead-letter queue with this reason.
        raise LookupError(f"no booking for trip {trip_id}: nothing to give back")
    if booking["status"] != "held":
        return
    uow.put("booking", trip_id, {**booking, "status": "cancelled", "cancelled_by": event["detail-type"]})
    uow.publish(cancelled, {"trip_id": trip_id, "reference": booking["reference"], "reason": event["detail-type"]})
