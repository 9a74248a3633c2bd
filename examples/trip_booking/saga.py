"""The trip saga's hook (see ``yafdp.catalog.code``): the world its services live in, read from ``inventory.json``,
and its travellers, a seeded stream of trip requests whose outcomes follow the outcome rates.

Like YAFDP's, the generator never tells a service what to do: it asks for what leads there. An unavailable flight
is a route without seats, an unavailable hotel a destination without rooms, an unavailable car one without cars,
a declined payment a card the issuer declines.
"""

from __future__ import annotations

import random
from pathlib import Path

import fastjsonschema

from yafdp.catalog.loader import read_json, shape_check

FILES = ("inventory.json",)
OUTCOME_RATES = {"flight_unavailable": 0.05, "hotel_unavailable": 0.05, "car_unavailable": 0.05,
                 "payment_declined": 0.05}
ORIGINS = ("LHR", "CDG")

_PRICE = {"type": "number", "exclusiveMinimum": 0, "maximum": 5000}
_SHAPE = fastjsonschema.compile({
    "type": "object",
    "required": ["currency", "flights", "hotels", "cars", "cards"],
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "flights": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": "^[A-Z]{3}-[A-Z]{3}$"},
                    "additionalProperties": {"type": "object", "required": ["price", "seats"],
                                             "properties": {"price": _PRICE, "seats": {"type": "boolean"}}}},
        "hotels": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["per_night", "rooms"],
            "properties": {"per_night": _PRICE, "rooms": {"type": "boolean"}}}},
        "cars": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["per_day", "cars"],
            "properties": {"per_day": _PRICE, "cars": {"type": "boolean"}}}},
        "cards": {"type": "object", "required": ["declined_prefixes"],
                  "properties": {"declined_prefixes": {"type": "object",
                                                       "additionalProperties": {"type": "string"}}}},
    },
})


def world(folder: Path) -> dict:
    """The inventory the handlers read (``uow.world``); a ``CatalogError`` naming the key when it is malformed."""
    file = Path(folder) / "inventory.json"
    inventory = read_json(file)
    shape_check(file, inventory, _SHAPE)
    return inventory


def requests(world: dict, *, count: int, seed: int, rates: dict, arrival_rate: float):
    """``count`` trip requests arriving as a Poisson stream of ``arrival_rate`` a second: ``(at, request,
    expected)``, ``expected`` being what the trip should end as (``CONFIRMED``, or ``CANCELLED`` and why)."""
    rng = random.Random(f"{seed}:travellers")
    routes = _Routes(world, rates)
    at = 0.0
    for n in range(1, count + 1):
        at += rng.expovariate(arrival_rate)
        fate = next((name for name in ("flight_unavailable", "hotel_unavailable", "car_unavailable")
                     if rng.random() < rates[name]), None)
        declined = fate is None and rng.random() < rates["payment_declined"]
        origin, destination = rng.choice(routes.leading_to[fate])
        card = (rng.choice(routes.declined) + f"{rng.randrange(10**6):06d}" if declined
                else f"card_ok_{rng.randrange(10**4):04d}")
        expected = (f"CANCELLED: {fate.replace('_', ' ')}" if fate else "CANCELLED: payment declined" if declined
                    else "CONFIRMED")
        yield at, {"trip_id": f"trip-{abs(seed)}-{n:06d}", "traveller_id": f"trv-{rng.randrange(1, 500):04d}",
                   "origin": origin, "destination": destination, "nights": rng.randint(1, 7), "card_token": card}, expected


def summary(db) -> dict:
    """What the trips cost the travellers, for ``summary.json``."""
    charged = db.execute("SELECT ROUND(COALESCE(SUM(json_extract(item, '$.amount')), 0), 2) FROM state"
                         " WHERE service = 'payment' AND kind = 'charge'").fetchone()[0]
    return {"charged": charged}


class _Routes:
    """Which routes lead to each outcome, checked once against the inventory."""

    def __init__(self, world: dict, rates: dict):
        def route(flight: bool, hotel: bool, car: bool) -> list[tuple[str, str]]:
            return sorted((o, d) for key, spec in world["flights"].items() for o, d in [key.split("-")]
                          if o in ORIGINS and spec["seats"] == flight and (not flight or (
                              world["hotels"].get(d, {}).get("rooms", False) == hotel
                              and (not hotel or world["cars"].get(d, {}).get("cars", False) == car))))
        self.leading_to = {None: route(True, True, True), "flight_unavailable": route(False, False, False),
                           "hotel_unavailable": route(True, False, False), "car_unavailable": route(True, True, False)}
        self.declined = sorted(world["cards"]["declined_prefixes"])
        missing = [name or "a trip that goes through" for name, routes in self.leading_to.items()
                   if not routes and (name is None or rates[name])]
        if rates["payment_declined"] and not self.declined:
            missing.append("payment_declined (no declined card prefixes)")
        if missing:
            from yafdp.errors import ConfigurationError

            raise ConfigurationError(f"the inventory has no route for {', '.join(missing)}")
