"""What a subscriber hands to its target: a batch of events, each shaped by the subscriber's transformer, with
the target's per-event parameters worked out; and the protocol a target implements.

The bus does not know how a target is reached: a local run wires its in-process queues and functions, the
served endpoint sends to SQS with boto3. "A batch closes at the first of: MaxBatchSize events, ... or the
target's request-size limit"; "Events in a batch are in publish order" (UG "Batching",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-batching.html). Per-event parameter
blocks (``SqsParameters``, ...) "read the original event, not the transformer output, and must return a string"
(UG "Transforming events", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-transform.html).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Protocol

from yafdp.custom_event_bus.configuration import SubscriberConfig
from yafdp.custom_event_bus.events import StoredEvent
from yafdp.custom_event_bus.expressions import TransformationError, parameter_value, transformed

# Failures a target reports for items of a batch, by index in the batch: (errorCode, errorMessage), with the
# error codes of the dead-letter record (UG "Retrying event delivery", errorCode table).
Failures = dict[int, tuple[str, str]]
PER_EVENT_BLOCK_KEYS = ("MessageGroupId", "MessageDeduplicationId", "DelaySeconds")
# Message attributes of an SQS or SNS target: each name "may be a literal or an expression resolved once per
# delivered event", and so may each StringValue (M MessageAttributeName, SqsMessageAttributeValue.StringValue).
ATTRIBUTE_BLOCKS = ("MessageAttributes", "MessageSystemAttributes")


@dataclass
class DeliveryItem:
    """One event of a batch: the event, its delivery type (``LIVE``/``REPLAY``), the attempt (1-based), the
    payload the target receives (after the transformer) and the per-event target parameters (e.g. an SQS
    target's ``MessageGroupId``)."""

    event: StoredEvent
    delivery_type: str
    attempt: int
    payload: object = None
    parameters: dict = field(default_factory=dict)

    def body(self) -> str:
        """The payload as text (an SQS message body): a string as it is, anything else as JSON."""
        return self.payload if isinstance(self.payload, str) else json.dumps(self.payload, separators=(",", ":"))


@dataclass
class Delivery:
    """One invocation of a subscriber's target: ``items`` in publish order."""

    subscriber: str
    subscriber_arn: str
    bus_arn: str
    config: SubscriberConfig
    items: list[DeliveryItem]

    @property
    def target_arn(self) -> str:
        return self.config.target_arn


class Target(Protocol):
    """Where a subscriber's events go. ``deliver`` invokes the target with a batch and, when the invocation is
    over (at once, or later on the bus's clock), calls ``done(failures)`` exactly once: an empty mapping when
    every item was accepted, else the failed items by index with their error code and message."""

    def deliver(self, delivery: Delivery, done: Callable[[Failures], None]) -> None: ...


def message_attributes(attributes, parts: dict) -> dict:
    """A ``MessageAttributes`` block for one event: names and ``StringValue`` s resolved
    (:func:`~yafdp.custom_event_bus.expressions.parameter_value`), the rest as given.

    Examples
    --------
    >>> parts = {"Data": {}, "Metadata": {}, "SystemMetadata": {"aws:DeliveryType": "LIVE"}}
    >>> message_attributes({"kind": {"DataType": "String", "StringValue": '{% $events.SystemMetadata."aws:DeliveryType" %}'}}, parts)
    {'kind': {'DataType': 'String', 'StringValue': 'LIVE'}}
    """
    if not isinstance(attributes, dict):
        return attributes
    resolved = {}
    for name, value in attributes.items():
        if isinstance(value, dict) and isinstance(value.get("StringValue"), str):
            value = {**value, "StringValue": parameter_value(value["StringValue"], parts)}
        resolved[parameter_value(name, parts) if isinstance(name, str) else name] = value
    return resolved


def shape(item: DeliveryItem, config: SubscriberConfig) -> tuple[str, str] | None:
    """Fill ``item.payload`` and ``item.parameters`` for ``config``'s transformer and target; returns the failure
    ``("INPUT_TRANSFORMATION_FAILURE", message)`` when an expression throws or yields nothing (it is retried and
    dead-lettered like any delivery failure, UG transform), else None."""
    event = item.event
    try:
        parts = None
        if config.transformer == "RAW":
            item.payload = event.data
        else:
            parts = event.parts(item.delivery_type)
            item.payload = parts if config.transformer == "WITH_METADATA" else transformed(config.expression, parts)
        if config.parameters and config.target_kind in ("sqs", "sns", "kinesis"):
            parts = parts or event.parts(item.delivery_type)
            item.parameters = {key: parameter_value(value, parts) if isinstance(value, str) else
                               message_attributes(value, parts) if key in ATTRIBUTE_BLOCKS else value
                               for key, value in config.parameters.items()}
    except TransformationError as exc:
        return "INPUT_TRANSFORMATION_FAILURE", str(exc)
    return None
