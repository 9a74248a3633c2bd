"""What a message on a service's queue holds, on either kind of bus: the rule (or subscriber) it came through, the
event, and how it was delivered.

On a Classic bus the rule's input transformer wraps the event with the rule's name: the body is ``{"rule": name,
"event": <the event>}`` (:attr:`yafdp.plan.model.RulePlan.input_template`). On a Custom Event Bus a subscriber
hands the event as its transformer shapes it (``RAW``: the envelope; ``WITH_METADATA``: ``{"Data", "Metadata",
"SystemMetadata"}``, UG "Transforming events",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-transform.html), and its ``SqsParameters``
add message attributes naming the subscriber (``subscriber``) and ``aws:DeliveryType`` (``delivery_type``,
:meth:`yafdp.plan.custom_bus.SubscriberPlan.request`). Message attributes come as ``ReceiveMessage`` gives them
(``StringValue``) or as Lambda's SQS event does (``stringValue``): both are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SUBSCRIBER = "subscriber"  # the message attribute naming the Custom Event Bus subscriber
DELIVERY_TYPE = "delivery_type"  # the message attribute holding aws:DeliveryType (LIVE or REPLAY)


@dataclass(frozen=True)
class QueueMessage:
    """``route``: the rule or subscriber (None when the message names none); ``event``: the event envelope (with
    ``id``); ``delivery_type``: ``LIVE``/``REPLAY`` on a Custom Event Bus when known, else None."""

    route: str | None
    event: dict
    delivery_type: str | None = None

    @property
    def event_id(self) -> str | None:
        return self.event.get("id") if isinstance(self.event, dict) else None


def attribute(attributes: dict | None, name: str) -> str | None:
    """A string message attribute, in ReceiveMessage's form or Lambda's."""
    value = (attributes or {}).get(name)
    if not isinstance(value, dict):
        return None
    return value.get("StringValue", value.get("stringValue"))


def read(body: str, attributes: dict | None = None) -> QueueMessage:
    """A queue message's body and message attributes, read; :class:`ValueError` for a body that is not JSON.

    Examples
    --------
    >>> read('{"rule": "demo-payment-charges-order", "event": {"id": "e-1"}}').route
    'demo-payment-charges-order'
    >>> message = read('{"id": "e-2", "detail": {}}', {"subscriber": {"StringValue": "demo-order-tracks"},
    ...                                                 "delivery_type": {"stringValue": "REPLAY"}})
    >>> message.route, message.event_id, message.delivery_type
    ('demo-order-tracks', 'e-2', 'REPLAY')
    """
    document = json.loads(body)
    subscriber = attribute(attributes, SUBSCRIBER)
    if subscriber is not None:
        event = document.get("Data", document) if isinstance(document, dict) else document
        delivery = attribute(attributes, DELIVERY_TYPE)
        if delivery is None and isinstance(document, dict):
            delivery = (document.get("SystemMetadata") or {}).get("aws:DeliveryType")
        return QueueMessage(subscriber, event if isinstance(event, dict) else {}, delivery)
    if isinstance(document, dict) and "rule" in document:
        return QueueMessage(document.get("rule"), document.get("event") or {})
    return QueueMessage(None, document if isinstance(document, dict) else {})
