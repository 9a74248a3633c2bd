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
from yafdp.reading import MAX_JSON_DEPTH, ORDERS_FILE_BYTES, nesting, read_bytes


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


class OutOfRange:
    """A number in an orders file that no order field can hold (more than 15 digits, beyond a float, NaN or
    Infinity): kept as its text, so the order holding it is refused on its own, naming the field."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        digits = sum(c.isdigit() for c in self.text)
        shown = self.text if len(self.text) <= 24 else f"{self.text[:10]}…{self.text[-4:]} ({digits} digits)"
        return f"{shown} (out of range)"

    __str__ = __repr__


def _integer(text: str):
    return int(text) if len(text) <= MAX_DIGITS + (text[0] == "-") else OutOfRange(text)


def _real(text: str):
    value = float(text)
    return value if value not in (float("inf"), float("-inf")) else OutOfRange(text)


# The longest a workload's arrivals may spread over (30 days, simulated or wall-clock): far beyond any run of this
# project, far inside what a timestamp holds (datetime ends in year 9999), so every event's time stays representable.
ARRIVAL_HORIZON_SECONDS = 30 * 86_400


def check_arrival_horizon(orders: int, arrival_rate: float) -> None:
    """Refuse an arrival rate so low that ``orders`` would arrive over more than :data:`ARRIVAL_HORIZON_SECONDS`
    (its mean arrival time of the last: ``orders / arrival_rate``)."""
    if orders and orders / arrival_rate > ARRIVAL_HORIZON_SECONDS:
        raise RefusedError(f"--arrival-rate {arrival_rate:g}: {orders:,} orders would arrive over about "
                           f"{orders / arrival_rate:.3g} s, beyond a run's horizon of {ARRIVAL_HORIZON_SECONDS:,} s "
                           f"(30 days); give at least {orders / ARRIVAL_HORIZON_SECONDS:.3g} orders per second")


MAX_DIGITS = 15  # a JSON number beyond this is not exact in a double, nor a price, a quantity or an amount


@dataclass(frozen=True)
class OrderRequest:
    """One request of a workload: its place (from 1), when the client sends it (seconds after the start), the
    request as JSON text, and the earlier identical request it merges with (then it is never sent)."""

    seq: int
    due: float
    order_id: str | None
    text: str
    same_as: int | None = None


def load_order_requests(path: Path) -> list:
    """Order requests from a JSON file (a list of objects, as a client would send them to ``place_order``).

    Each request is validated when it is placed, so one bad order is refused on its own, naming its field: a
    number no field can hold (a 400-digit amount, ``NaN``) stays in the request as :class:`OutOfRange`.
    Raises :class:`~yafdp.errors.RefusedError` naming the file when it cannot be read, is larger than
    :data:`~yafdp.reading.ORDERS_FILE_BYTES` (checked before reading, and while reading a device or a pipe), is not
    UTF-8 JSON, is nested too deeply, or is not a JSON list.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "orders.json"
    >>> _ = path.write_text('[{"order_id": "ord-1", "amount": 1' + '0' * 400 + '}]')
    >>> load_order_requests(path)[0]["amount"]
    1000000000…0000 (401 digits) (out of range)
    """
    try:
        data = read_bytes(path, ORDERS_FILE_BYTES, "an orders file")
    except OSError as exc:
        raise RefusedError(f"cannot read orders file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RefusedError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    try:
        requests = json.loads(text, parse_int=_integer, parse_float=_real, parse_constant=OutOfRange)
    except json.JSONDecodeError as exc:
        raise RefusedError(f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise RefusedError(f"{path}: nested too deeply to be an orders file (an order is a flat object)") from None
    if not isinstance(requests, list):
        raise RefusedError(f"{path}: must hold a JSON list of order requests, not a {type(requests).__name__}")
    if nesting(requests) > MAX_JSON_DEPTH:  # stored in run.db, whose readers refuse a record nested deeper
        raise RefusedError(f"{path}: nested too deeply to be an orders file (more than {MAX_JSON_DEPTH} levels; an "
                           "order is a flat object)")
    return requests


def workload(world: Marketplace, *, orders: int, seed: int, rates: OutcomeRates, arrival_rate: float,
             orders_file: Path | None = None) -> Iterator[OrderRequest]:
    """A run's workload in time order: the requests of ``orders_file`` at the arrival rate (orders per second),
    identical duplicates merged into the first, or ``orders`` generated from the seed and rates.

    What can be refused is refused before the first request is returned: the file is read whole here, and a
    generated workload checks its options and the marketplace when its first order is drawn.
    """
    if orders_file is None:
        check_arrival_horizon(orders, arrival_rate)
        generated = iter_orders(orders, seed, world, rates, arrival_rate)
        return (OrderRequest(n, p.at, p.request["order_id"], _dumps(p.request))
                for n, p in enumerate(generated, start=1))
    requests = load_order_requests(Path(orders_file))
    if not (isinstance(arrival_rate, (int, float)) and arrival_rate > 0):
        raise RefusedError(f"arrival_rate must be positive, got {arrival_rate}")
    check_arrival_horizon(len(requests), arrival_rate)
    return _merged(requests, arrival_rate)


def _merged(requests: list, arrival_rate: float) -> Iterator[OrderRequest]:
    first: dict[tuple[str, str], int] = {}
    for n, request in enumerate(requests, start=1):
        order_id = request.get("order_id") if isinstance(request, dict) else None
        order_id = order_id if isinstance(order_id, str) else None
        text = _dumps(request)
        same_as = first.setdefault((order_id, text), n) if order_id is not None else n
        yield OrderRequest(n, n / arrival_rate, order_id, text, same_as if same_as != n else None)


def _dumps(request) -> str:
    return json.dumps(request, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False)
