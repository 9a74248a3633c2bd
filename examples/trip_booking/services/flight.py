"""The Flight service: holds a seat on the route of a requested trip, gives it back if the trip fails later."""

from __future__ import annotations

from .booking import book, cancel


def book_flight(event, uow) -> None:
    def offer(trip):
        flight = uow.world["flights"].get(f"{trip['origin']}-{trip['destination']}")
        if flight is None or not flight["seats"]:
            return 0.0, f"no seat from {trip['origin']} to {trip['destination']}"
        return flight["price"], None
    book(event, uow, booked="Flight_Booked", unavailable="Flight_Unavailable", prefix="flt", offer=offer)


def cancel_flight(event, uow) -> None:
    cancel(event, uow, cancelled="Flight_Cancelled")
