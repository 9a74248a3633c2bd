"""The Hotel service: holds a room at the destination for the trip's nights, releases it if the trip fails later."""

from __future__ import annotations

from .booking import at_destination, book, cancel


def book_hotel(event, uow) -> None:
    book(event, uow, booked="Hotel_Booked", unavailable="Hotel_Unavailable", prefix="htl",
         offer=at_destination(uow, "hotels", "per_night", "rooms", "room"))


def cancel_hotel(event, uow) -> None:
    cancel(event, uow, cancelled="Hotel_Cancelled")
