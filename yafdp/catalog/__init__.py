"""The catalog, the single source of truth: services, events and subscriptions (``model``), read and checked
from ``data/`` (``loader``), and the world the services live in (``marketplace``)."""

__all__ = ["DEFAULT_DATA_DIR", "Bus", "Catalog", "CatalogError", "Entrypoint", "EventType", "Service", "Subscription",
           "detail_type_literals", "envelope_pattern", "load_catalog"]


def __getattr__(name: str):
    """The names above, imported from their modules when first used: importing one module of the package (its
    errors, say) does not import the loader and its schemas."""
    if name == "CatalogError":
        from yafdp.catalog.errors import CatalogError

        return CatalogError
    if name in ("DEFAULT_DATA_DIR", "load_catalog"):
        from yafdp.catalog import loader

        return getattr(loader, name)
    if name in __all__:
        from yafdp.catalog import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
