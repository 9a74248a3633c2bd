"""The trip saga's own invariants (the checker's hook, see ``yafdp.analysis.check``): what the travellers paid and
what the Flight, Hotel and Car services still hold.

Each fact is read from every record that holds it: a booking is the service's own item and the event it announced;
a charge is the Payment service's record and ``Payment_Charged``; the price is what the bookings announced.
"""

from __future__ import annotations

from collections import defaultdict

from yafdp.analysis.check import CENT, Invariant, Run, money

BOOKINGS = {"flight": ("Flight_Booked", "Flight_Cancelled"), "hotel": ("Hotel_Booked", "Hotel_Cancelled"),
            "car": ("Car_Booked", "Car_Cancelled")}


def charged_once_the_trips_total(run: Run) -> Invariant:
    """A confirmed trip was charged once, the total its bookings announced; a cancelled trip was never charged.
    The Payment service's record and the event it announced must agree."""
    trips, records = run.sagas(), run.items("payment", "charge")
    charged: dict[str, dict] = defaultdict(dict)  # trip -> {announcement: detail}: an outbox again is one
    totals: dict[str, list] = defaultdict(list)
    for e in run.events_of("Payment_Charged", "Car_Booked"):
        if e["detail_type"] == "Car_Booked":
            totals[e["saga_id"]].append(e["detail"]["total"])
        elif not e["replay_name"]:
            charged[e["saga_id"]][e["published_by"] or e["event_id"]] = e["detail"]
    bad = []
    for trip_id, status in trips.items():
        announced, booked = charged.get(trip_id, {}), totals.get(trip_id, [])
        record = records.get(trip_id)
        if len(announced) > 1:
            bad.append(f"{trip_id} ({len(announced)} Payment_Charged events)")
        if (record is None) != (not announced):
            bad.append(f"{trip_id} (a charge {'recorded but never announced' if record else 'announced but not recorded'})")
        charge = record or next(iter(announced.values()), None)
        if status == "CONFIRMED" and charge is None:
            bad.append(f"{trip_id} (confirmed without a charge)")
        elif status == "CANCELLED" and charge is not None:
            bad.append(f"{trip_id} (cancelled, yet charged {money(charge['amount'], charge.get('currency'))})")
        elif charge is not None and (not booked or abs(charge["amount"] - booked[0]) > CENT):
            bad.append(f"{trip_id} (charged {charge['amount']:.2f}; its bookings came to "
                       f"{booked[0] if booked else 'nothing'})")
    return Invariant("charged once, the trip's total", "a confirmed trip is charged once, what its bookings cost; a "
                     "cancelled one never; the charge is recorded and announced alike", not bad, tuple(bad), len(trips))


def bookings_given_back(run: Run) -> Invariant:
    """A confirmed trip holds its flight, room and car; a cancelled one holds nothing: every booking it made was
    given back, once. Each service's own booking and the events it announced must agree."""
    trips = run.sagas()
    names = {trip_id: [t for t, _, replayed in history if not replayed] for trip_id, history in run.histories()}
    bad = []
    for service, (booked, cancelled) in BOOKINGS.items():
        items = run.items(service, "booking")
        for trip_id, status in trips.items():
            published = names.get(trip_id, [])
            item = items.get(trip_id)
            held_event, given_back = booked in published, published.count(cancelled)
            if (item is not None and item["status"] in ("held", "cancelled")) != held_event:
                bad.append(f"{trip_id} (the {service} service's booking and its {booked} event disagree)")
            if item is not None and (item["status"] == "cancelled") != bool(given_back):
                bad.append(f"{trip_id} (the {service} booking is {item['status']}, {given_back} {cancelled} event(s))")
            if status == "CONFIRMED" and (item is None or item["status"] != "held"):
                bad.append(f"{trip_id} (confirmed, but its {service} booking is {item and item['status']})")
            if status == "CANCELLED" and item is not None and item["status"] == "held":
                bad.append(f"{trip_id} (cancelled, but the {service} service still holds its booking)")
    return Invariant("bookings given back", "a confirmed trip holds its flight, room and car; a cancelled one gave back "
                     "everything it held, once; each booking is what its service announced", not bad, tuple(bad),
                     len(trips))


INVARIANTS = [charged_once_the_trips_total, bookings_given_back]
