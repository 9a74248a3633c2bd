"""The catalog, the single source of truth: services, events and subscriptions (``model``), read and checked
from ``data/`` (``loader``), and the world the services live in (``marketplace``)."""

from yafdp.catalog.loader import DEFAULT_DATA_DIR, load_catalog
from yafdp.catalog.model import (Bus, Catalog, CatalogError, Entrypoint, EventType, Service, Subscription,
                                 detail_type_literals, envelope_pattern)

__all__ = ["DEFAULT_DATA_DIR", "Bus", "Catalog", "CatalogError", "Entrypoint", "EventType", "Service", "Subscription",
           "detail_type_literals", "envelope_pattern", "load_catalog"]
