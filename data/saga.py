"""YAFDP's saga hook (see :mod:`yafdp.catalog.code`): the world its services live in, the marketplace, and its
customers, a seeded stream of orders whose business outcomes follow configurable rates.

The generator never tells a service what to do: it orders what leads there. A declined card is a token the
provider declines, a rejection is a closed restaurant or a sold-out item, a failed delivery is an address in
a zone without couriers.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator

from yafdp.catalog.marketplace import Marketplace, load_marketplace
from yafdp.errors import ConfigurationError

FILES = ("marketplace.json",)  # what world() reads: shipped in the Lambda package, recorded with every run
# Probabilities at each step, for the orders that reach it: the card is declined; a paid order is rejected (a
# closed restaurant or a sold-out item); a confirmed order is in a zone no courier serves.
OUTCOME_RATES = {"payment_failure": 0.05, "restaurant_reject": 0.05, "delivery_failure": 0.05}


def world(folder: Path) -> Marketplace:
    """The marketplace the services read (``uow.world``): restaurants and menus, zones and couriers, tokens."""
    return load_marketplace(folder)


def requests(world: Marketplace, *, count: int, seed: int, rates: dict, arrival_rate: float
             ) -> Iterator[tuple[float, dict, str]]:
    """``count`` orders arriving as a Poisson stream of ``arrival_rate`` orders per second: ``(at, request,
    expected)``, ``expected`` being what the order should end as (``DELIVERY_SCHEDULED``, or ``CANCELLED`` and why).

    Raises :class:`~yafdp.errors.ConfigurationError` when the marketplace lacks what a rate above zero needs.
    """
    rng = random.Random(f"{seed}:workload")
    choices = _Choices(world, rates)
    at = 0.0
    for n in range(1, count + 1):
        at += rng.expovariate(arrival_rate)
        declined = rng.random() < rates["payment_failure"]
        rejected = rng.random() < rates["restaurant_reject"]
        undeliverable = rng.random() < rates["delivery_failure"]
        restaurant_id, items = choices.basket(rng, rejected)
        zone = rng.choice(choices.dead_zones if undeliverable else choices.live_zones)
        if declined:
            token = rng.choice(choices.declined_prefixes) + f"{rng.randrange(10**6):06d}"
        else:
            token = f"tok_visa_{rng.randrange(10**4):04d}"
        amount = round(sum(i["quantity"] * i["unit_price"] for i in items), 2)
        expected = ("CANCELLED: payment declined" if declined else "CANCELLED: restaurant rejected" if rejected
                    else "CANCELLED: no courier" if undeliverable else "DELIVERY_SCHEDULED")
        yield at, {
            "order_id": f"ord-{abs(seed)}-{n:06d}", "customer_id": f"cus-{rng.randrange(1, 1000):04d}",
            "restaurant_id": restaurant_id, "items": items, "amount": amount, "currency": world.currency,
            "payment_token": token, "delivery_zone": zone,
        }, expected


def summary(db) -> dict:
    """The money a run moved and the loyalty points it left, for ``summary.json``."""
    money = dict(db.execute("SELECT kind, ROUND(SUM(amount), 2) FROM payments GROUP BY kind"))
    return {"charged": money.get("charge", 0.0), "refunded": money.get("refund", 0.0),
            "loyalty_points": db.execute("SELECT COALESCE(SUM(points), 0) FROM loyalty").fetchone()[0]}


class _Choices:
    """What the marketplace offers to reach each outcome, checked once."""

    def __init__(self, world: Marketplace, rates: dict):
        self.open = sorted(r for r, spec in world.restaurants.items()
                           if spec["open"] and any(m["available"] for m in spec["menu"].values()))
        self.closed = sorted(r for r, spec in world.restaurants.items() if not spec["open"])
        self.sold_out = sorted(r for r in self.open if not all(m["available"] for m in world.restaurants[r]["menu"].values()))
        self.live_zones = sorted(z for z, spec in world.zones.items() if spec["couriers"])
        self.dead_zones = sorted(z for z, spec in world.zones.items() if not spec["couriers"])
        self.declined_prefixes = sorted(world.declined_prefixes)
        self.world = world
        missing = []
        if not self.open or not self.live_zones:
            missing.append("an open restaurant and a zone with couriers (for orders that succeed)")
        if rates["restaurant_reject"] and not (self.closed or self.sold_out):
            missing.append("a closed restaurant or a sold-out item (for restaurant_reject > 0)")
        if rates["delivery_failure"] and not self.dead_zones:
            missing.append("a zone without couriers (for delivery_failure > 0)")
        if rates["payment_failure"] and not self.declined_prefixes:
            missing.append("declined payment token prefixes (for payment_failure > 0)")
        if missing:
            raise ConfigurationError("the marketplace lacks " + "; ".join(missing))

    def basket(self, rng: random.Random, rejected: bool) -> tuple[str, list[dict]]:
        if rejected and self.closed and (not self.sold_out or rng.random() < 0.5):
            restaurant_id = rng.choice(self.closed)
        else:
            restaurant_id = rng.choice(self.sold_out if rejected else self.open)
        menu = self.world.restaurants[restaurant_id]["menu"]
        available = sorted(i for i, m in menu.items() if m["available"])
        picks = rng.sample(available, k=min(len(available), rng.randint(1, 3)))
        if rejected and restaurant_id in self.sold_out:
            picks.append(rng.choice(sorted(i for i, m in menu.items() if not m["available"])))
        return restaurant_id, [{"item_id": i, "quantity": rng.randint(1, 3), "unit_price": menu[i]["price"]} for i in picks]
