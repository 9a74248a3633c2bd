"""The world the services live in: restaurants and menus, delivery zones and couriers, payment test tokens.

Business outcomes come from this data (a closed restaurant, a sold-out item, a zone without couriers, a
declined token), so the services stay deterministic and the workload decides what happens by what it orders.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import fastjsonschema

from yafdp.catalog.loader import DEFAULT_DATA_DIR, read_json, shape_check


@dataclass(frozen=True)
class Marketplace:
    """Restaurants (with menus; one whose ``answers`` is false never answers an order), delivery zones (with couriers),
    the payment provider's declined tokens, and ``saga_timeout_seconds``: how long an order may take to be decided
    before the saga gives up on it (the Order service's deadline; 0 sets none, e.g. for a test of a few hops of the
    saga that never ends an order)."""

    currency: str
    restaurants: Mapping[str, Mapping[str, Any]]
    zones: Mapping[str, Mapping[str, Any]]
    declined_prefixes: Mapping[str, str]
    saga_timeout_seconds: float = 900.0

    def payment_method(self, payment_token: str) -> str:
        """The payment provider's reference for the card behind a customer's single-use ``payment_token``, as a
        provider's API exchanges a token for a reusable payment method id (``pm_…``) that only a holder of the
        merchant's provider credentials (here: the Payment service) can charge. The Order service publishes this,
        never the token. Emulated without storage: ``pm_<class>_<16 hex digits of the token's SHA-256>``, the
        class being the token's test class (``declined``, ``nofunds``...) or ``accepted``; a real provider issues a
        random id and keeps the card in its vault.

        Examples
        --------
        >>> world = load_marketplace()
        >>> world.payment_method("tok_declined_0001")[:12], world.decline_reason(world.payment_method("tok_declined_0001"))
        ('pm_declined_', 'card_declined')
        >>> world.decline_reason(world.payment_method("tok_visa_4242")) is None
        True
        """
        kind = next((_class_of(prefix) for prefix in self.declined_prefixes if payment_token.startswith(prefix)),
                    ACCEPTED)
        return f"pm_{kind}_{hashlib.sha256(payment_token.encode()).hexdigest()[:16]}"

    def decline_reason(self, payment_method: str) -> str | None:
        """Why the payment provider declines to charge this payment method (:meth:`payment_method`), or None when
        it accepts it."""
        kind = payment_method.removeprefix("pm_").rpartition("_")[0]
        return next((reason for prefix, reason in self.declined_prefixes.items() if _class_of(prefix) == kind), None)


ACCEPTED = "accepted"  # the class of a payment method the provider charges


@lru_cache(maxsize=64)  # a marketplace has a few declined prefixes; every order's payment method asks
def _class_of(prefix: str) -> str:
    """A declined token prefix's class, as a payment method reference spells it: ``tok_nofunds_`` -> ``nofunds``."""
    return re.sub(r"[^a-z0-9]", "", prefix.removeprefix("tok_").lower())[:32] or "declined"


_MONEY = {"type": "number", "exclusiveMinimum": 0, "maximum": 500}
_MINUTES = {"type": "number", "minimum": 0, "maximum": 1440}
_SHAPE = fastjsonschema.compile({
    "type": "object",
    "required": ["currency", "restaurants", "zones", "payment_tokens"],
    "properties": {
        "description": {"type": "string"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "saga_timeout_seconds": {"type": "number", "minimum": 60, "maximum": 86400},
        "restaurants": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object",
            "required": ["name", "open", "prep_minutes", "menu"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "open": {"type": "boolean"},
                "answers": {"type": "boolean"},
                "prep_minutes": _MINUTES,
                "menu": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "required": ["price", "available"],
                    "properties": {"price": _MONEY, "available": {"type": "boolean"}},
                }},
            },
        }},
        "zones": {"type": "object", "minProperties": 1, "additionalProperties": {
            "type": "object",
            "required": ["couriers", "travel_minutes"],
            "properties": {"couriers": {"type": "array", "items": {"type": "string"}}, "travel_minutes": _MINUTES},
        }},
        "payment_tokens": {
            "type": "object",
            "required": ["declined_prefixes"],
            "properties": {"description": {"type": "string"},
                           "declined_prefixes": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
    },
})


def load_marketplace(path: Path | str | None = None) -> Marketplace:
    """Load ``marketplace.json`` from a data folder (default: the shipped ``data/``).

    Raises :class:`~yafdp.catalog.model.CatalogError` naming the file and the key of the first problem.
    """
    file = Path(path if path is not None else DEFAULT_DATA_DIR)
    if file.is_dir():
        file = file / "marketplace.json"
    doc = read_json(file)
    shape_check(file, doc, _SHAPE)
    return Marketplace(
        currency=doc["currency"],
        restaurants=doc["restaurants"],
        zones=doc["zones"],
        declined_prefixes=doc["payment_tokens"]["declined_prefixes"],
        saga_timeout_seconds=float(doc.get("saga_timeout_seconds", 900)),
    )
