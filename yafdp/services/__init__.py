"""The platform's services: one module per service, each a handful of plain handler functions.

A handler is ``handler(event, uow)``: ``event`` is the EventBridge envelope, ``uow`` a
:class:`~yafdp.runtime.unit_of_work.UnitOfWork` over the service's own state. Which handler serves which rule is
written in the catalog (``data/services/<service>.json``), so adding a service touches no other module here.
"""

from __future__ import annotations

import importlib
from typing import Callable

from yafdp.catalog import Catalog, CatalogError


def resolve_handler(service: str, name: str) -> Callable:
    """The function ``name`` of module ``yafdp.services.<service>``, with an error that says what is missing."""
    try:
        module = importlib.import_module(f"{__name__}.{service}")
    except ModuleNotFoundError as exc:
        raise LookupError(f"service {service!r} has no module yafdp/services/{service}.py") from exc
    handler = getattr(module, name, None)
    if not callable(handler):
        raise LookupError(f"yafdp/services/{service}.py has no handler function {name!r}")
    return handler


def check_handlers(catalog: Catalog) -> None:
    """Every rule's handler and every entry point of ``catalog`` is a function of its service's module
    (``yafdp/services/<service>.py``, or one a notebook installed).

    Raises
    ------
    CatalogError
        naming the service file and the key of the first handler that does not exist.
    """
    for service in catalog.services.values():
        named = [(f"subscriptions[{i}].handler", sub.handler) for i, sub in enumerate(service.subscriptions)]
        named += [(f"entrypoints[{i}].name", point.name) for i, point in enumerate(service.entrypoints)]
        for key, handler in named:
            try:
                resolve_handler(service.name, handler)
            except LookupError as exc:
                raise CatalogError(service.file, key, str(exc)) from None
