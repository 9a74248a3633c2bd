"""What a run would cost on AWS: usage counted from its ``run.db``, priced with ``data/prices.json`` (each price from
AWS's own pages, quoted where a copy shows it).

Usage is what the run did (events published, deliveries and their attempts, handler time, items read and written,
state transitions); the few things a run cannot show are parameters with stated defaults (function memory,
SQS requests per message). Free tiers are ignored: the figures are per million orders. What the cost table leaves
out (the lines that do not scale with orders, or that the project does not price) is :func:`lines_left_out`'s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from yafdp.errors import ConfigurationError, RefusedError, RunFolderError
from yafdp.runtime import rundb
from yafdp.catalog.loader import read_json
from yafdp.shipped import PRICES_FILE

CHUNK_BYTES = 64 * 1024  # EventBridge and SQS bill each 64 KB of a message as one event or request
TRANSACTIONAL_WRITE_UNITS = 2  # DynamoDB: an item (up to 1 KB) written in a transaction costs two write units


@dataclass(frozen=True)
class Usage:
    """What one run used on AWS (or would have), in the units AWS bills."""

    orders: int
    eventbridge_events: float = 0
    sqs_requests: float = 0
    lambda_requests: float = 0
    lambda_gb_seconds: float = 0
    dynamodb_write_units: float = 0
    dynamodb_read_units: float = 0
    step_functions_standard_transitions: float = 0
    step_functions_express_requests: float = 0
    step_functions_express_gb_seconds: float = 0

    def per_order(self) -> dict[str, float]:
        return {k: v / self.orders for k, v in asdict(self).items() if k != "orders"} if self.orders else {}


def usage_from_run(path: str | Path, *, lambda_memory_mb: int = 256, express_memory_mb: int = 64) -> Usage:
    """Count a run's billable usage from its ``run.db`` (a choreography or an orchestrated run).

    Choreography: one EventBridge event per 64 KB of each published event; per delivered message one SQS
    SendMessage, a ReceiveMessage per attempt and a DeleteMessage when done. Both styles: one Lambda request
    per handler attempt and per order placed, handler time (rounded up to the millisecond) times
    ``lambda_memory_mb``, two DynamoDB write units per item written (each handler writes its items and its
    idempotency record in one transaction) and one read unit per item a handler read (the deployed functions read
    with ``ConsistentRead``: one unit up to 4 KB; a run that did not count its reads, such as one exported from
    AWS, has none). Orchestration: Standard workflows' state transitions (every state entered and every retry),
    or Express workflows' executions and billed duration at ``express_memory_mb``.

    (Run in ``tests/integration/test_documented_examples.py``: a simulated run is priced and fitted.)
    """
    with rundb.open_run(path) as db:
        info = rundb.get_info(db)
        summary = info.get("summary")
        if summary is None:
            raise RunFolderError(f"{path} is from a run that did not finish (run_info has no summary)")
        orders = summary["orders"]["placed"]
        chunks = sum(max(1, math.ceil(size / CHUNK_BYTES)) for (size,) in
                     db.execute("SELECT LENGTH(detail) + LENGTH(source) + LENGTH(detail_type) FROM events"))
        attempts, finished, messages = db.execute(
            "SELECT COUNT(*), SUM(outcome != 'failed'), COUNT(DISTINCT event_id || ' ' || rule) FROM deliveries").fetchone()
        milliseconds = db.execute("SELECT COALESCE(SUM(MAX(1, CAST(CEIL((finished_at - delivered_at) * 1000) AS INTEGER))), 0)"
                                  " FROM deliveries").fetchone()[0]
        markers = db.execute("SELECT COUNT(*) FROM deliveries WHERE outcome = 'ok'").fetchone()[0]  # processed markers
    writes = TRANSACTIONAL_WRITE_UNITS * (summary.get("state_writes", 0) + markers)
    common = dict(orders=orders, lambda_requests=attempts + orders,
                  lambda_gb_seconds=milliseconds / 1000 * lambda_memory_mb / 1024, dynamodb_write_units=writes,
                  dynamodb_read_units=summary.get("state_reads", 0))
    if info.get("style", "choreography") == "choreography":
        return Usage(eventbridge_events=chunks, sqs_requests=messages + attempts + (finished or 0), **common)
    orchestration = summary.get("orchestration", {})
    if info.get("workflow") == "express":
        return Usage(step_functions_express_requests=orchestration.get("executions", 0),
                     step_functions_express_gb_seconds=orchestration.get("express_billed_seconds", 0) * express_memory_mb / 1024,
                     **common)
    return Usage(step_functions_standard_transitions=orchestration.get("state_transitions", 0), **common)


SOURCE_KEYS = ("page", "region", "read", "quote", "quote_url")


def load_prices(path: str | Path | None = None) -> dict:
    """The price list: ``{name: {"usd", "per", "unit", "source"}}`` from ``data/prices.json``; each source names
    AWS's ``page``, the ``region`` the price is for, when it was ``read``, and the ``quote`` that states it on an
    AWS page (``quote_url``), or None where no copy of the page showed the rate.

    Raises :class:`~yafdp.errors.ConfigurationError` naming the file and key of a price that lacks one of them.

    Examples
    --------
    >>> price = load_prices()["step_functions_standard_transition"]
    >>> price["usd"], price["per"], price["source"]["region"]
    (0.025, 1000, 'eu-west-1')
    """
    file = Path(path) if path is not None else PRICES_FILE
    document = read_json(file)
    for name, price in document["prices"].items():
        if not {"usd", "per", "unit", "source"} <= set(price):
            raise ConfigurationError(f"{file}: prices.{name} needs usd, per, unit and source")
        missing = [key for key in SOURCE_KEYS if key not in price["source"]]
        if missing:
            raise ConfigurationError(f"{file}: prices.{name}.source needs {', '.join(missing)}")
    return document["prices"]


def verified(price: dict) -> bool:
    """Whether a price was read on AWS's page (its source quotes the words that state it)."""
    return bool(price["source"].get("quote"))


# What a learner is told about a price AWS's page was not seen to state (data/prices.json's note says why).
ASSUMED = "this workbook's assumption: check it on AWS's page, change it in data/prices.json"


def price_region(price: dict) -> str:
    """The Region a price is for, as a learner reads it ("not stated" in data/prices.json: AWS's page names none)."""
    region = price["source"]["region"]
    return "no Region named" if region == "not stated" else region


def describe_price(price: dict) -> str:
    """A price as a reader says it, with its Region and whether AWS's page was seen to state it (each said once).

    Examples
    --------
    >>> describe_price(load_prices()["step_functions_standard_transition"])
    "$0.025 per 1,000 (eu-west-1, quoted from AWS's page)"
    """
    basis = ", quoted from AWS's page" if verified(price) else f"; {ASSUMED}"
    return f"${price['usd']:g} per {price['per']:,} ({price_region(price)}{basis})"


# Which price each usage is billed at.
PRICED_AS = {
    "eventbridge_events": "eventbridge_custom_event",
    "sqs_requests": "sqs_standard_request",
    "lambda_requests": "lambda_request",
    "lambda_gb_seconds": "lambda_gb_second_x86",
    "dynamodb_write_units": "dynamodb_write_request_unit",
    "dynamodb_read_units": "dynamodb_read_request_unit",
    "step_functions_standard_transitions": "step_functions_standard_transition",
    "step_functions_express_requests": "step_functions_express_request",
    "step_functions_express_gb_seconds": "step_functions_express_gb_second",
}


def cost_per_million_orders(usage: Usage, prices: dict | None = None) -> dict[str, float]:
    """US dollars per million orders, by line item (the usage's names), for a run's usage.

    Examples
    --------
    >>> cost = cost_per_million_orders(Usage(orders=2, eventbridge_events=10, lambda_requests=20))
    >>> cost["eventbridge_events"], cost["lambda_requests"]
    (5.0, 2.0)
    """
    prices = prices if prices is not None else load_prices()
    if not usage.orders:
        raise RefusedError("the run placed no orders: there is nothing to price per order")
    scale = 1_000_000 / usage.orders
    costs = {}
    for name, amount in asdict(usage).items():
        if name == "orders":
            continue
        price = prices[PRICED_AS[name]]
        costs[name] = round(amount * scale * price["usd"] / price["per"], 4)
    return costs
