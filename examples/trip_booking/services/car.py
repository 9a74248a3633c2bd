"""The Car service: holds a rental car at the destination, returns it if the payment fails."""

from __future__ import annotations

from .booking import at_destination, book, cancel


def book_car(event, uow) -> None:
    book(event, uow, booked="Car_Booked", unavailable="Car_Unavailable", prefix="car",
         offer=at_destination(uow, "cars", "per_day", "cars", "car"))


def cancel_car(event, uow) -> None:
    cancel(event, uow, cancelled="Car_Cancelled")
