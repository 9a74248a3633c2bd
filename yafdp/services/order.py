"""The Order service: takes the customer's order, keeps its status from the events it hears, and holds the saga's
deadline.

``place_order`` is the API entry point: it refuses a bad order, naming the field, before anything is
stored or published, and sets the saga's deadline: a one-time schedule that puts ``Order_Timed_Out`` on the bus
``saga_timeout_seconds`` later (the marketplace's). ``track_status`` moves an order's status forward, never
backwards, so events may arrive in any order and any number of times; once the order ends, it deletes the
deadline's schedule. The statuses, which event moves an order to which, and which statuses end it are the
catalog's (``bus.json``'s ``saga``), which the unit of work carries (``uow.saga``).
"""

from __future__ import annotations

import re

from yafdp.errors import RequestRefusedError, unknown_field
from yafdp.quoting import excerpt
from yafdp.runtime.unit_of_work import Envelope, UnitOfWork

MAX_ITEMS, MAX_QUANTITY, MAX_AMOUNT = 50, 50, 2000.0
ORDER_ID = re.compile(r"^ord-[A-Za-z0-9-]{1,60}$")
CUSTOMER_ID = re.compile(r"^cus-[A-Za-z0-9-]{1,60}$")
TOKEN = re.compile(r"^tok_[A-Za-z0-9_]{4,64}$")
# What an order request may hold (currency is optional); any other field is refused, naming it.
REQUEST_FIELDS = ("order_id", "customer_id", "restaurant_id", "items", "amount", "currency", "payment_token",
                  "delivery_zone")
ITEM_FIELDS = ("item_id", "quantity", "unit_price")


class OrderRejectedError(RequestRefusedError):
    """The order was refused before anything was charged; ``field`` says which part of it is wrong."""

    def __init__(self, field: str, problem: str):
        super().__init__(field, problem, f"order refused: {field}: {problem}")


def place_order(request: dict, uow: UnitOfWork) -> str:
    """Validate a customer's order, store it as ``PLACED`` and publish ``Order_Initiated``.

    Placing the same ``order_id`` twice is harmless: the second call changes nothing.

    Raises
    ------
    OrderRejectedError
        naming the field that is missing or wrong; nothing is stored or published then.
    """
    detail = validate_order(request, uow.world)
    order_id = detail["order_id"]
    if uow.get("order", order_id) is not None:
        return order_id
    uow.put("order", order_id, {
        "order_id": order_id, "status": uow.saga.initial_status, "amount": detail["amount"], "currency": detail["currency"],
        "customer_id": detail["customer_id"], "restaurant_id": detail["restaurant_id"],
        "placed_at": uow.now(), "history": [],
    })
    uow.publish("Order_Initiated", detail)
    timeout = getattr(uow.world, "saga_timeout_seconds", None)
    if timeout:
        uow.schedule(deadline_name(order_id), timeout, "Order_Timed_Out", {
            "order_id": order_id, "customer_id": detail["customer_id"], "restaurant_id": detail["restaurant_id"],
            "deadline_seconds": timeout})
    return order_id


def deadline_name(order_id: str) -> str:
    """The name of an order's deadline schedule (EventBridge Scheduler names are 1 to 64 characters)."""
    return f"deadline-{order_id}"[:64]


def track_status(event: Envelope, uow: UnitOfWork) -> None:
    detail_type, order_id = event["detail-type"], event["detail"]["order_id"]
    order = uow.get("order", order_id)
    if order is None:
        raise LookupError(f"{detail_type} for order {order_id}, which was never placed")
    after = uow.saga.moves(order["status"], detail_type)  # forward only: a late event changes nothing
    if after in uow.saga.terminal:
        uow.cancel_schedule(deadline_name(order_id))  # the order ended: its deadline is called off
    uow.put("order", order_id, {
        **order,
        "status": after or order["status"],
        "history": order["history"] + [[detail_type, event["id"], "moved" if after else "kept"]],
    })


def validate_order(request, world) -> dict:
    """The ``Order_Initiated`` detail for a valid request; ``OrderRejectedError`` naming the field otherwise (a
    field the request may not hold, :data:`REQUEST_FIELDS` and :data:`ITEM_FIELDS`, too).

    The request's ``payment_token`` (the customer's single-use token from the payment provider) does not travel:
    the detail carries the provider's payment method reference for it (:meth:`Marketplace.payment_method`), which
    only the Payment service, holding the provider's credentials, can charge. Every subscriber of
    ``Order_Initiated``, its queue, its dead-letter queue and the event archive (kept indefinitely by default)
    would otherwise hold a means of payment (chapter 03 says why it matters)."""
    if not isinstance(request, dict):
        raise OrderRejectedError("(order)", f"must be a JSON object, not {type(request).__name__}")
    unknown = unknown_field(request, REQUEST_FIELDS)  # refused, not dropped: see yafdp.errors.unknown_field
    if unknown:
        raise OrderRejectedError(*unknown)
    _text(request, "order_id", ORDER_ID)
    _text(request, "customer_id", CUSTOMER_ID)
    _text(request, "payment_token", TOKEN, secret=True)  # a card number typed here is quoted nowhere
    restaurant_id = _text(request, "restaurant_id")
    restaurant = world.restaurants.get(restaurant_id)
    if restaurant is None:
        raise OrderRejectedError("restaurant_id", f"unknown restaurant {excerpt(restaurant_id)}")
    zone = _text(request, "delivery_zone")
    if zone not in world.zones:
        raise OrderRejectedError("delivery_zone", f"unknown delivery zone {excerpt(zone)} (we deliver to {', '.join(world.zones)})")
    items = request.get("items")
    if not isinstance(items, list) or not items:
        raise OrderRejectedError("items", "must be a non-empty list of {item_id, quantity, unit_price}")
    if len(items) > MAX_ITEMS:
        raise OrderRejectedError("items", f"at most {MAX_ITEMS} lines per order, got {len(items)}")
    lines, total = [], 0.0
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, dict):
            raise OrderRejectedError(where, "must be an object {item_id, quantity, unit_price}")
        unknown = unknown_field(item, ITEM_FIELDS, where)
        if unknown:
            raise OrderRejectedError(*unknown)
        item_id = _text(item, "item_id", where=where)
        menu_entry = restaurant["menu"].get(item_id)
        if menu_entry is None:
            raise OrderRejectedError(f"{where}.item_id", f"{excerpt(item_id)} is not on the menu of {restaurant_id}")
        quantity = item.get("quantity")
        if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
            raise OrderRejectedError(f"{where}.quantity", f"must be a whole number from 1 to {MAX_QUANTITY}, got {excerpt(quantity)}")
        price = _number(item, "unit_price", where)
        if abs(price - menu_entry["price"]) > 0.005:
            raise OrderRejectedError(f"{where}.unit_price", f"is {excerpt(price)}, but {item_id} costs {menu_entry['price']}")
        lines.append({"item_id": item_id, "quantity": quantity, "unit_price": menu_entry["price"]})
        total += quantity * menu_entry["price"]
    amount = _number(request, "amount")
    if amount <= 0 or amount > MAX_AMOUNT:
        raise OrderRejectedError("amount", f"must be more than 0 and at most {MAX_AMOUNT:.0f}, got {excerpt(amount)}")
    if abs(amount - round(total, 2)) > 0.005:
        raise OrderRejectedError("amount", f"is {excerpt(amount)}, but the items add up to {round(total, 2)}")
    currency = request.get("currency", world.currency)
    if currency != world.currency:
        raise OrderRejectedError("currency", f"must be {world.currency!r}, got {excerpt(currency)}")
    return {"order_id": request["order_id"], "customer_id": request["customer_id"], "restaurant_id": restaurant_id,
            "items": lines, "amount": round(total, 2), "currency": currency,
            "payment_method": world.payment_method(request["payment_token"]), "delivery_zone": zone}


def _text(obj: dict, field: str, pattern: re.Pattern | None = None, where: str = "", secret: bool = False) -> str:
    """``obj[field]``, a string matching ``pattern``; a refusal quotes at most an excerpt of it (none of a ``secret``)."""
    name = f"{where}.{field}" if where else field
    if field not in obj:
        raise OrderRejectedError(name, "is missing")
    value = obj[field]
    if not isinstance(value, str):
        raise OrderRejectedError(name, f"must be a string, got {type(value).__name__}")
    if pattern is not None and not pattern.match(value):
        raise OrderRejectedError(name, f"{excerpt(value, secret=secret)} does not match {pattern.pattern}")
    return value


def _number(obj: dict, field: str, where: str = "") -> float:
    name = f"{where}.{field}" if where else field
    if field not in obj:
        raise OrderRejectedError(name, "is missing")
    value = obj[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise OrderRejectedError(name, f"must be a number, got {excerpt(value)}")
    return float(value)
