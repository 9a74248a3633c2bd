"""The record a subscriber sends to its on-failure queue when it gives up on events: it points to the events,
it does not contain them.

Record format and attributes from UG "Retrying event delivery"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-retry.html): one record per failed batch,
``failedMessages`` listing only the failed events; the same values as SQS message attributes ``ERROR_CODE``,
``ERROR_MESSAGE``, ``SUBSCRIBER_ARN``, ``TARGET_ARN``, ``BUS_ARN``, ``EXHAUSTED_RETRY_CONDITION``,
``RETRY_ATTEMPTS``; ``errorMessage`` cut at 1,024 characters. On a FIFO queue "EventBridge sets each record's
MessageGroupId from the events' EventGroupId". A redrive replays the events from the bus by their ids (UG retry,
"Redriving"): the DLQ holds references, the bus holds the events for its retention period.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from yafdp.custom_event_bus.events import ingestion_time
from yafdp.custom_event_bus.limits import MAX_DLQ_ERROR_MESSAGE
from yafdp.custom_event_bus.targets import DeliveryItem


@dataclass(frozen=True)
class DeadLetterRecord:
    """A record for the on-failure queue: ``body`` (the JSON document), ``attributes`` (SQS message
    attributes, name -> string), ``group_id`` (the ``MessageGroupId`` on a FIFO queue) and
    ``deduplication_id`` (a hash of the record: which one AWS uses is not documented, SPEC A.13)."""

    body: dict
    attributes: dict
    group_id: str | None
    deduplication_id: str

    def text(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


def record(*, bus_arn: str, subscriber_arn: str, target_arn: str, code: str, message: str, exhausted: str,
           retries: int, items: list[DeliveryItem], request_ids: list[str] | None = None) -> DeadLetterRecord:
    """The on-failure record for ``items`` (events of one batch that ran out of retries). ``exhausted``:
    ``MaximumRetryAttempts`` or ``MaximumEventAgeInSeconds``; ``retries``: how many retries were made."""
    message = message[:MAX_DLQ_ERROR_MESSAGE]
    failed = [{"eventId": item.event.event_id, "eventGroupId": item.event.group_id,
               "deduplicationId": item.event.deduplication_id,
               "timestamp": ingestion_time(item.event.ingested_at),
               "targetRequestId": (request_ids or [None] * len(items))[i]}
              for i, item in enumerate(items)]
    body = {"version": "1.0", "busArn": bus_arn, "subscriberArn": subscriber_arn, "targetArn": target_arn,
            "errorCode": code, "errorMessage": message, "exhaustedRetryCondition": exhausted,
            "retryAttempts": retries, "failedMessages": failed}
    attributes = {"ERROR_CODE": code, "ERROR_MESSAGE": message, "SUBSCRIBER_ARN": subscriber_arn,
                  "TARGET_ARN": target_arn, "BUS_ARN": bus_arn, "EXHAUSTED_RETRY_CONDITION": exhausted,
                  "RETRY_ATTEMPTS": str(retries)}
    group = next((item.event.group_id for item in items if item.event.group_id is not None), None)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:64]
    return DeadLetterRecord(body, attributes, group, digest)
