"""The catalog as an AsyncAPI 3.0 document: the bus is one channel, every event a message with its schema."""

from __future__ import annotations

from yafdp import __version__
from yafdp.catalog import Catalog


def asyncapi_document(catalog: Catalog) -> dict:
    """An AsyncAPI 3.0.0 document: one channel (the bus), a message per event, a send operation per event
    producer and a receive operation per subscription rule.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> doc = asyncapi_document(load_catalog())
    >>> doc["asyncapi"], sorted(doc["components"]["messages"])[0]
    ('3.0.0', 'Delivery_Failed')
    """
    channel = catalog.bus.name
    messages = {}
    for name, event in catalog.events.items():
        messages[name] = {
            "name": name,
            "title": name.replace("_", " "),
            "summary": event.description,
            "contentType": "application/json",
            "payload": dict(event.schema),
            "tags": [{"name": event.service}, {"name": event.kind}, {"name": event.origin}],
            "x-eventbridge": {"source": event.source, "detail-type": name, "terminal": event.terminal},
        }
    operations = {}
    for service in catalog.services.values():
        for name in sorted(service.may_emit()):
            operations[f"{service.name}.send.{name}"] = {
                "action": "send",
                "title": f"{service.name} publishes {name}",
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
                "tags": [{"name": service.name}],
            }
        for sub in service.subscriptions:
            operations[sub.rule] = {
                "action": "receive",
                "title": f"{service.name} runs {sub.handler}",
                "summary": sub.purpose,
                "channel": {"$ref": f"#/channels/{channel}"},
                "messages": [{"$ref": f"#/channels/{channel}/messages/{e}"} for e in catalog.matched_events(sub)],
                "tags": [{"name": service.name}, {"name": sub.path}],
                "x-eventbridge-pattern": dict(sub.pattern),
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "YAFDP order saga",
            "version": __version__,
            "description": "The events of Yet Another Food Delivery Platform's choreography saga on Amazon EventBridge.",
        },
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
