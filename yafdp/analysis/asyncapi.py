"""The catalog as AsyncAPI 3.1 documents: the whole platform in one, or one per service, as EventCatalog imports
them (``yafdp catalog --format asyncapi [--per-service DIR]``).

The bus is the one channel; every event is a message with its JSON Schema as payload; each event a service
publishes is a ``send`` operation, each of its subscription rules a ``receive`` operation of the events the rule
matches. 3.1.0 is the version the official parser (``@asyncapi/parser`` 3.6) recommends: it parses 3.0.0 too,
with the remark "The latest version of AsyncAPI is not used. It is recommended update to the "3.1.0" version".

A service's own document holds the messages it sends and those it receives. EventCatalog's AsyncAPI generator
(``@eventcatalog/generator-asyncapi``, one file per service: https://www.eventcatalog.dev/docs/development/plugins/async-api/features)
writes a message's contract from the document whose ``x-eventcatalog-role`` is ``provider`` (its default) and
skips it where the role is ``consumer``: so each message is ``provider`` in its producer's document and
``consumer`` in the others', and no consumer overwrites its producer's contract. ``x-eventcatalog-message-type``
says each is an ``event``.
"""

from __future__ import annotations

from yafdp import __version__
from yafdp.catalog import Catalog

ASYNCAPI_VERSION = "3.1.0"


def asyncapi_document(catalog: Catalog) -> dict:
    """The whole platform as one AsyncAPI 3.1.0 document: one channel (the bus), a message per event, a send
    operation per event a service publishes and a receive operation per subscription rule.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> doc = asyncapi_document(load_catalog())
    >>> doc["asyncapi"], sorted(doc["components"]["messages"])[0]
    ('3.1.0', 'Delivery_Failed')
    """
    return _document(catalog, catalog.services.values(), "YAFDP order saga",
                     "The events of Yet Another Food Delivery Platform's choreography saga on Amazon EventBridge.")


def service_documents(catalog: Catalog) -> dict[str, dict]:
    """One AsyncAPI 3.1.0 document per service, ``{service name: document}``: the messages it sends (its
    contracts: ``x-eventcatalog-role`` ``provider``) and receives (another's: ``consumer``), and its operations.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> payment = service_documents(load_catalog())["payment"]
    >>> payment["info"]["title"], payment["components"]["messages"]["Payment_Success"]["x-eventcatalog-role"]
    ('payment', 'provider')
    >>> payment["components"]["messages"]["Order_Initiated"]["x-eventcatalog-role"]
    'consumer'
    """
    return {name: _document(catalog, [service], name, service.description)
            for name, service in sorted(catalog.services.items())}


def _document(catalog: Catalog, services, title: str, description: str) -> dict:
    """The AsyncAPI document of ``services`` (all of the catalog's, or one): their operations and the messages
    those name, each marked as its producer's (``provider``) or another service's (``consumer``)."""
    channel = catalog.bus.name
    ref = lambda name: {"$ref": f"#/channels/{channel}/messages/{name}"}  # noqa: E731
    operations, named = {}, set()
    for service in services:
        for name in sorted(service.may_emit()):
            named.add(name)
            operations[f"{service.name}.send.{name}"] = {
                "action": "send", "title": f"{service.name} publishes {name}",
                "channel": {"$ref": f"#/channels/{channel}"}, "messages": [ref(name)], "tags": [{"name": service.name}],
            }
        for sub in service.subscriptions:
            matched = catalog.matched_events(sub)
            named.update(matched)
            operations[sub.rule] = {
                "action": "receive", "title": f"{service.name} runs {sub.handler}", "summary": sub.purpose,
                "channel": {"$ref": f"#/channels/{channel}"}, "messages": [ref(e) for e in matched],
                "tags": [{"name": service.name}, {"name": sub.path}], "x-eventbridge-pattern": dict(sub.pattern),
            }
    owners = {service.name for service in services}
    messages = {name: _message(catalog, name, event.service in owners) for name, event in catalog.events.items()
                if name in named}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": __version__, "description": description},
        "defaultContentType": "application/json",
        "channels": {
            channel: {
                "address": channel,
                "description": "The custom EventBridge bus every service publishes to and subscribes on.",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
            }
        },
        "operations": operations,
        "components": {"messages": messages},
    }


def _message(catalog: Catalog, name: str, provided: bool) -> dict:
    """An event as an AsyncAPI message: its schema as payload, its EventBridge source and detail-type, and whose
    contract it is for EventCatalog."""
    event = catalog.events[name]
    return {
        "name": name,
        "title": name.replace("_", " "),
        "summary": event.description,
        "contentType": "application/json",
        "payload": dict(event.schema),
        "tags": [{"name": event.service}, {"name": event.kind}, {"name": event.origin}],
        "x-eventbridge": {"source": event.source, "detail-type": name, "terminal": event.terminal},
        "x-eventcatalog-message-type": "event",
        "x-eventcatalog-role": "provider" if provided else "consumer",
    }
