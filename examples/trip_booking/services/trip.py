"""The Trip service: takes the traveller's request, keeps each trip's status from the events it hears, and issues
the itinerary once the trip is paid.

``request_trip`` is the API entry point: it refuses a bad request, naming the field, before anything is stored or
published. ``track_status`` moves a trip's status forward, never backwards, as the catalog's saga says
(``uow.saga``), so events may arrive in any order and any number of times.
"""

from __future__ import annotations

import re

from yafdp.errors import RequestRefusedError, unknown_field

TRIP_ID = re.compile(r"^trip-[A-Za-z0-9-]{1,60}$")
TRAVELLER_ID = re.compile(r"^trv-[A-Za-z0-9-]{1,60}$")
CITY = re.compile(r"^[A-Z]{3}$")
CARD = re.compile(r"^card_[A-Za-z0-9_]{4,64}$")
MAX_NIGHTS = 21
REQUEST_FIELDS = ("trip_id", "traveller_id", "origin", "destination", "nights", "card_token")  # all, none other


def request_trip(request, uow) -> str:
    trip = validate(request)
    trip_id = trip["trip_id"]
    if uow.get("trip", trip_id) is not None:
        return trip_id
    uow.put("trip", trip_id, {"trip_id": trip_id, "status": uow.saga.initial_status,
                              **{k: trip[k] for k in ("traveller_id", "origin", "destination", "nights")},
                              "requested_at": uow.now(), "history": []})
    uow.publish("Trip_Requested", trip)
    return trip_id


def track_status(event, uow) -> None:
    detail_type, trip_id = event["detail-type"], event["detail"]["trip_id"]
    trip = uow.get("trip", trip_id)
    if trip is None:
        raise LookupError(f"{detail_type} for trip {trip_id}, which was never requested")
    after = uow.saga.moves(trip["status"], detail_type)  # forward only: a late event changes nothing
    uow.put("trip", trip_id, {**trip, "status": after or trip["status"],
                              "history": trip["history"] + [[detail_type, event["id"], "moved" if after else "kept"]]})


def issue_itinerary(event, uow) -> None:
    paid = event["detail"]
    if uow.add("itinerary", paid["trip_id"], {"trip_id": paid["trip_id"], "payment_id": paid["payment_id"]}):
        uow.publish("Itinerary_Issued", {"trip_id": paid["trip_id"], "traveller_id": paid["traveller_id"],
                                         "references": [paid["payment_id"]]})


def validate(request) -> dict:
    """The ``Trip_Requested`` detail of a valid request; ``RequestRefusedError`` naming the field otherwise."""
    if not isinstance(request, dict):
        raise RequestRefusedError("(trip)", f"must be a JSON object, not {type(request).__name__}")
    unknown = unknown_field(request, REQUEST_FIELDS)  # refused, not dropped (yafdp.errors.unknown_field says why)
    if unknown:
        raise RequestRefusedError(*unknown)
    for field, pattern in (("trip_id", TRIP_ID), ("traveller_id", TRAVELLER_ID), ("origin", CITY),
                           ("destination", CITY), ("card_token", CARD)):
        value = request.get(field)
        if not isinstance(value, str) or not pattern.match(value):
            raise RequestRefusedError(field, "is missing" if value is None else f"{value!r} does not match {pattern.pattern}")
    nights = request.get("nights")
    if type(nights) is not int or not 1 <= nights <= MAX_NIGHTS:
        raise RequestRefusedError("nights", f"must be a whole number from 1 to {MAX_NIGHTS}, got {nights!r}")
    if request["origin"] == request["destination"]:
        raise RequestRefusedError("destination", "must differ from the origin")
    return {k: request[k] for k in REQUEST_FIELDS}
