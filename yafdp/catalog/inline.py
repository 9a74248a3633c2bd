"""Add a service to a catalog from a notebook cell: its document and its handler functions, in memory.

A learner writes a handler in a cell and subscribes it to events in a few lines, without a file in ``data/``
or in the package::

    def ask_for_review(event, uow):
        uow.publish("Rating_Requested", {"order_id": event["detail"]["order_id"]})

    catalog = add_service(load_catalog(), RATING_SPEC, {"ask_for_review": ask_for_review})
    run_saga(RunOptions(orders=20, catalog=catalog, out="build/runs/rating"))

The document is checked exactly as the loader checks ``data/services/<name>.json``, and against the rest of
the catalog (rule names, the events it subscribes to). The handlers are found the one way every handler is
found, :func:`yafdp.services.resolve_handler`: they become the module ``yafdp.services.<name>``, held in
memory. A service that has a module file in the package cannot be replaced this way.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from yafdp.catalog.loader import _check_cross_references, service_from_document
from yafdp.catalog.model import Catalog, CatalogError

SERVICES_PACKAGE = "yafdp.services"
SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"


def add_service(catalog: Catalog, document: dict, handlers: Mapping[str, Callable]) -> Catalog:
    """A new catalog: ``catalog`` and the service ``document`` describes, served by ``handlers``
    (``{handler name: function(event, uow)}``; every handler the document's subscriptions name must be there).

    Adding the same service again (a cell run twice) replaces the earlier in-memory version.

    Raises
    ------
    CatalogError
        naming the key of the document that is wrong, or the handler that is missing.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> document = example_document()
    >>> extended = add_service(load_catalog(), document, {"ask_for_review": lambda event, uow: None})
    >>> sorted(set(extended.services) - set(load_catalog().services))
    ['rating']
    >>> from yafdp.services import resolve_handler
    >>> callable(resolve_handler("rating", "ask_for_review"))
    True
    """
    where = f"<in memory: service {document.get('service', '?')!r}>"
    name = document.get("service")
    if isinstance(name, str) and (SERVICES_DIR / f"{name}.py").exists():
        raise CatalogError(where, "service", f"{name!r} is a service of the package (yafdp/services/{name}.py); "
                                             "give the new service a name of its own")
    base = catalog.without(name) if name in catalog.services else catalog
    service, events = service_from_document(where, document, base.bus)
    clash = sorted(set(events) & set(base.events))
    if clash:
        raise CatalogError(where, f"events.{clash[0]}", f"event {clash[0]!r} is already produced by "
                                                          f"service {base.events[clash[0]].service!r}")
    missing = sorted({s.handler for s in service.subscriptions} - set(handlers))
    if missing:
        raise CatalogError(where, "handlers", f"no function given for handler {missing[0]!r} "
                                              f"(pass {{{missing[0]!r}: your_function}})")
    services = {**base.services, service.name: service}
    all_events = {**base.events, **events}
    _check_cross_references(services, all_events, base.bus, where)
    install_handlers(service.name, handlers)
    return Catalog(catalog.path, catalog.bus, MappingProxyType(services), MappingProxyType(all_events))


def install_handlers(service: str, handlers: Mapping[str, Callable]) -> types.ModuleType:
    """Make ``handlers`` the module ``yafdp.services.<service>`` (in memory), where
    :func:`~yafdp.services.resolve_handler` finds them."""
    module = types.ModuleType(f"{SERVICES_PACKAGE}.{service}", f"Handlers of the in-memory service {service!r}.")
    for handler_name, function in handlers.items():
        if not callable(function):
            raise CatalogError(f"<in memory: service {service!r}>", f"handlers.{handler_name}", "is not a function")
        setattr(module, handler_name, function)
    sys.modules[module.__name__] = module
    return module


def example_document(name: str = "rating") -> dict:
    """A small service document to start from: a Rating service that asks for a review once a courier is
    booked (``Delivery_Scheduled``) and announces it with ``Rating_Requested``."""
    return {
        "service": name,
        "source": f"yafdp.{name}",
        "description": "Asks the customer to rate the order once a courier is booked.",
        "origin": "extension",
        "events": {
            "Rating_Requested": {
                "description": "The customer was asked to rate the order.",
                "origin": "extension", "kind": "happy", "terminal": True,
                "schema": {"type": "object", "required": ["order_id", "customer_id"],
                           "properties": {"order_id": {"type": "string"}, "customer_id": {"type": "string"}}},
            },
        },
        "subscriptions": [{
            "rule": f"{name}-asks-for-review",
            "handler": "ask_for_review",
            "purpose": "ask for a review once the order is on its way",
            "path": "happy",
            "pattern": {"source": ["yafdp.delivery"], "detail-type": ["Delivery_Scheduled"]},
            "emits": ["Rating_Requested"],
        }],
    }


def copy_of(catalog: Catalog, service: str, name: str) -> dict:
    """The document of ``catalog``'s ``service`` (its ``services/<service>.json``) as a new service ``name``, to try
    a variant of it in memory: its ``source`` becomes ``yafdp.<name>`` and each rule's name starts with ``name``
    instead; its events, patterns and handler names are kept. An event has one producer, so add it to
    ``catalog.without(service)``.

    Raises
    ------
    CatalogError
        when ``catalog`` has no such service.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> rewards = copy_of(load_catalog(), "loyalty", "rewards")
    >>> rewards["source"], [s["rule"] for s in rewards["subscriptions"]]
    ('yafdp.rewards', ['rewards-awards-confirmed-order', 'rewards-reverts-undeliverable-order'])
    """
    import json

    if service not in catalog.services:
        raise CatalogError(str(catalog.path), "services", f"there is no service {service!r} to copy")
    document = json.loads(Path(catalog.services[service].file).read_text(encoding="utf-8"))
    document["service"], document["source"] = name, f"{catalog.bus.source_prefix}{name}"
    for subscription in document.get("subscriptions", []):
        rule = subscription["rule"]
        subscription["rule"] = name + rule[len(service):] if rule.startswith(service) else f"{name}-{rule}"
    return document
