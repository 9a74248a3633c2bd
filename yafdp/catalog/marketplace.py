"""The world the services live in: restaurants and menus, delivery zones and couriers, payment test tokens.

Business outcomes come from this data (a closed restaurant, a sold-out item, a zone without couriers, a
declined token), so the services stay deterministic and the workload decides what happens by what it orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from yafdp.catalog.loader import DEFAULT_DATA_DIR, read_json
from yafdp.catalog.model import CatalogError


@dataclass(frozen=True)
class Marketplace:
    """Restaurants (with menus), delivery zones (with couriers) and the payment provider's declined tokens."""

    currency: str
    restaurants: Mapping[str, Mapping[str, Any]]
    zones: Mapping[str, Mapping[str, Any]]
    declined_prefixes: Mapping[str, str]

    def decline_reason(self, payment_token: str) -> str | None:
        """Why the payment provider declines this token, or None when it accepts it."""
        for prefix, reason in self.declined_prefixes.items():
            if payment_token.startswith(prefix):
                return reason
        return None


def load_marketplace(path: Path | str | None = None) -> Marketplace:
    """Load ``marketplace.json`` from a data folder (default: the shipped ``data/``)."""
    file = Path(path if path is not None else DEFAULT_DATA_DIR)
    if file.is_dir():
        file = file / "marketplace.json"
    doc = read_json(file)
    for key in ("currency", "restaurants", "zones", "payment_tokens"):
        if key not in doc:
            raise CatalogError(file, key, "is missing")
    for rid, restaurant in doc["restaurants"].items():
        for field in ("name", "open", "prep_minutes", "menu"):
            if field not in restaurant:
                raise CatalogError(file, f"restaurants.{rid}.{field}", "is missing")
    for zid, zone in doc["zones"].items():
        if not isinstance(zone.get("couriers"), list):
            raise CatalogError(file, f"zones.{zid}.couriers", "must be a list of courier ids")
    return Marketplace(
        currency=doc["currency"],
        restaurants=doc["restaurants"],
        zones=doc["zones"],
        declined_prefixes=doc["payment_tokens"]["declined_prefixes"],
    )
