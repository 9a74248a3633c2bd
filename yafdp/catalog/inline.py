"""Add a service to a catalog from a notebook cell: its document and its handler functions, in memory.

A learner writes a handler in a cell and subscribes it to events in a few lines, without a file in ``data/``
or in the package::

    def ask_for_review(event, uow):
        uow.publish("Rating_Requested", {"order_id": event["detail"]["order_id"]})

    catalog = add_service(load_catalog(), RATING_SPEC, {"ask_for_review": ask_for_review})
    run_saga(RunOptions(orders=20, catalog=catalog, out="build/runs/rating"))

The document is checked exactly as the loader checks ``data/services/<name>.json``, and against the rest of
the catalog (rule names, the events it subscribes to). The handlers are found the one way every handler is
found (:mod:`yafdp.catalog.code`): the functions given in memory come first. A service the catalog already has
(from a file) cannot be replaced this way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from yafdp.catalog.loader import _check_cross_references, service_from_document
from yafdp.catalog.model import Catalog, CatalogError


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
    >>> callable(extended.handler("rating", "ask_for_review"))
    True
    """
    where = f"<in memory: service {document.get('service', '?')!r}>"
    name = document.get("service")
    own = f"services/{name}.json"
    if name in catalog.services and own not in catalog.in_memory:
        raise CatalogError(where, "service", f"{name!r} is a service of the catalog ({catalog.services[name].file}); "
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
    for handler_name, function in handlers.items():
        if not callable(function):
            raise CatalogError(where, f"handlers.{handler_name}", "is not a function")
    services = {**base.services, service.name: service}
    all_events = {**base.events, **events}
    _check_cross_references(services, all_events, base.bus, where)
    return Catalog(catalog.path, catalog.bus, MappingProxyType(services), MappingProxyType(all_events),
                   MappingProxyType({**base.documents, own: document}), base.in_memory | {own},
                   MappingProxyType({**base.inline_handlers, service.name: MappingProxyType(dict(handlers))}))


def example_document(name: str = "rating", catalog: Catalog | None = None) -> dict:
    """A small service document to start from: a Rating service that asks for a review once a saga of
    ``catalog`` (default: the shipped one) has completed (the events after which its tracker holds a completed
    outcome) and announces it with ``Rating_Requested``, whose detail names the saga.

    Examples
    --------
    >>> example_document()["subscriptions"][0]["pattern"]["detail-type"]
    ['Delivery_Scheduled']
    """
    if catalog is None:
        from yafdp.catalog.loader import load_catalog

        catalog = load_catalog()
    saga = catalog.saga
    done = sorted(e for status in saga.completed for e in saga.leads_to(status))
    id_field = saga.id_field
    return {
        "service": name,
        "source": f"{catalog.bus.source_prefix}{name}",
        "description": "Asks the customer for a review once the saga has completed.",
        "origin": "extension",
        "events": {
            "Rating_Requested": {
                "description": "The customer was asked to rate the saga's outcome.",
                "origin": "extension", "kind": "happy", "terminal": True,
                "schema": {"type": "object", "required": [id_field], "properties": {id_field: {"type": "string"}}},
            },
        },
        "subscriptions": [{
            "rule": f"{name}-asks-for-review",
            "handler": "ask_for_review",
            "purpose": "ask for a review once the saga has completed",
            "path": "happy",
            "pattern": {"source": sorted({catalog.events[e].source for e in done}), "detail-type": done},
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
    document = json.loads(json.dumps(catalog.documents[f"services/{service}.json"]))  # a copy to change
    document["service"], document["source"] = name, f"{catalog.bus.source_prefix}{name}"
    for subscription in document.get("subscriptions", []):
        rule = subscription["rule"]
        subscription["rule"] = name + rule[len(service):] if rule.startswith(service) else f"{name}-{rule}"
    return document
