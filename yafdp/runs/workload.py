"""A seeded stream of customers' orders whose business outcomes follow configurable rates.

The generator never tells a service what to do: it orders what leads there. A declined card is a token the
provider declines, a rejection is a closed restaurant or a sold-out item, a failed delivery is an address in
a zone without couriers.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from yafdp.catalog.marketplace import Marketplace
from yafdp.errors import ConfigurationError, RefusedError


@dataclass(frozen=True)
class OutcomeRates:
    """Probabilities at each step, for the orders that reach it.

    payment_failure: the card is declined. restaurant_reject: a paid order is rejected (closed restaurant
    or sold-out item). delivery_failure: a confirmed order is in a zone no courier serves.
    """

    payment_failure: float = 0.05
    restaurant_reject: float = 0.05
    delivery_failure: float = 0.05

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise RefusedError(f"{name} rate must be between 0 and 1, got {value}")


@dataclass(frozen=True)
class PlannedOrder:
    """One order of a generated workload: when it arrives, the request, and what it should end as."""

    at: float  # seconds after the run starts, on the run's virtual clock
    request: dict
    expected: str  # what the order should end as: DELIVERY_SCHEDULED or CANCELLED, and why


def generate_orders(count: int, seed: int, world: Marketplace, rates: OutcomeRates = OutcomeRates(),
                    arrival_rate: float = 50.0) -> list[PlannedOrder]:
    """``count`` orders arriving as a Poisson stream of ``arrival_rate`` orders per second.

    Examples
    --------
    >>> from yafdp.catalog.marketplace import load_marketplace
    >>> orders = generate_orders(3, seed=7, world=load_marketplace())
    >>> [o.request["order_id"] for o in orders]
    ['ord-7-000001', 'ord-7-000002', 'ord-7-000003']
    """
    return list(iter_orders(count, seed, world, rates, arrival_rate))


def iter_orders(count: int, seed: int, world: Marketplace, rates: OutcomeRates = OutcomeRates(),
                arrival_rate: float = 50.0) -> Iterator[PlannedOrder]:
    """The orders of :func:`generate_orders`, one at a time (a long workload never sits in memory)."""
    if count < 0:
        raise RefusedError(f"the number of orders must not be negative, got {count}")
    if arrival_rate <= 0:
        raise RefusedError(f"arrival_rate must be positive, got {arrival_rate}")
    rng = random.Random(f"{seed}:workload")
    choices = _Choices(world, rates)
    at = 0.0
    for n in range(1, count + 1):
        at += rng.expovariate(arrival_rate)
        declined = rng.random() < rates.payment_failure
        rejected = rng.random() < rates.restaurant_reject
        undeliverable = rng.random() < rates.delivery_failure
        restaurant_id, items = choices.basket(rng, rejected)
        zone = rng.choice(choices.dead_zones if undeliverable else choices.live_zones)
        if declined:
            token = rng.choice(choices.declined_prefixes) + f"{rng.randrange(10**6):06d}"
        else:
            token = f"tok_visa_{rng.randrange(10**4):04d}"
        amount = round(sum(i["quantity"] * i["unit_price"] for i in items), 2)
        expected = ("CANCELLED: payment declined" if declined else "CANCELLED: restaurant rejected" if rejected
                    else "CANCELLED: no courier" if undeliverable else "DELIVERY_SCHEDULED")
        yield PlannedOrder(at, {
            "order_id": f"ord-{abs(seed)}-{n:06d}", "customer_id": f"cus-{rng.randrange(1, 1000):04d}",
            "restaurant_id": restaurant_id, "items": items, "amount": amount, "currency": world.currency,
            "payment_token": token, "delivery_zone": zone,
        }, expected)


class _Choices:
    """What the marketplace offers to reach each outcome, checked once."""

    def __init__(self, world: Marketplace, rates: OutcomeRates):
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
        if rates.restaurant_reject and not (self.closed or self.sold_out):
            missing.append("a closed restaurant or a sold-out item (for restaurant_reject > 0)")
        if rates.delivery_failure and not self.dead_zones:
            missing.append("a zone without couriers (for delivery_failure > 0)")
        if rates.payment_failure and not self.declined_prefixes:
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


def load_order_requests(path: Path) -> list:
    """Order requests from a JSON file (a list of objects, as a client would send them to ``place_order``).

    Each request is validated when it is placed, so one bad order is refused on its own, naming its field.
    Raises :class:`~yafdp.errors.RefusedError` naming the file when it cannot be read or is not a JSON list.
    """
    try:
        requests = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RefusedError(f"cannot read orders file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RefusedError(f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(requests, list):
        raise RefusedError(f"{path}: must hold a JSON list of order requests, not a {type(requests).__name__}")
    return requests


def arrivals(world: Marketplace, *, orders: int, seed: int, rates: OutcomeRates, arrival_rate: float,
             orders_file: Path | None = None) -> Iterator[tuple[float, object]]:
    """When each order of a run's workload arrives (seconds after the start) and its request, in time
    order: from ``orders_file`` at the arrival rate (orders per second), or generated from the seed and rates."""
    if orders_file is not None:
        requests = load_order_requests(Path(orders_file))
        return (((n + 1) / arrival_rate, request) for n, request in enumerate(requests))
    return ((p.at, p.request) for p in iter_orders(orders, seed, world, rates, arrival_rate))
