"""An event as the Custom Event Bus stores it: its three parts (``Data``, ``Metadata``, ``SystemMetadata``) and
the facts the bus keeps beside them (sequence, ingestion time, event group).

"Every delivered event has three top-level parts, and filters, transformers and target-parameter expressions
all address them the same way" (UG "Addressing event data",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-addressing.html). ``SystemMetadata``
is written by EventBridge, except ``EventGroupId`` and ``DeduplicationId``, which echo the publisher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

CONTENT_TYPE_EVENTBRIDGE = "application/eventbridge+json"


@dataclass(frozen=True)
class StoredEvent:
    """One accepted event: ``seq`` is its position on the bus (``aws:SequenceNumber`` grows with it),
    ``ingested_at`` epoch seconds, ``group`` the event group's identity ``(publisher account, EventGroupId)``
    or None, ``data`` the ``Data`` part (for PutEvents, the EventBridge envelope), ``size`` the entry's bytes."""

    seq: int
    event_id: str
    ingested_at: float
    account: str
    group_id: str | None
    deduplication_id: str | None
    data: dict
    source: str
    detail_type: str
    size: int
    sequence_number: str
    metadata: dict = field(default_factory=dict)

    @property
    def group(self) -> tuple[str, str] | None:
        return None if self.group_id is None else (self.account, self.group_id)

    def system_metadata(self, delivery_type: str = "LIVE") -> dict:
        """The ``SystemMetadata`` part as a filter, a transformer or a target parameter sees it.

        ``EventGroupId``/``DeduplicationId`` appear only when the publisher gave them (UG addressing and
        transform say a field with no value is omitted); ``aws:DeliveryType`` is ``LIVE`` or ``REPLAY``."""
        meta = {"aws:EventId": self.event_id, "aws:Source": self.source, "aws:DetailType": self.detail_type,
                "aws:DeliveryType": delivery_type, "ContentType": CONTENT_TYPE_EVENTBRIDGE,
                "aws:IngestionTime": ingestion_time(self.ingested_at), "aws:SequenceNumber": self.sequence_number}
        if self.group_id is not None:
            meta["EventGroupId"] = self.group_id
        if self.deduplication_id is not None:
            meta["DeduplicationId"] = self.deduplication_id
        return meta

    def parts(self, delivery_type: str = "LIVE") -> dict:
        """``{"Data", "Metadata", "SystemMetadata"}``: what a ``WITH_METADATA`` transformer delivers and what
        ``$events`` is for one event in a JSONata expression (UG transform)."""
        return {"Data": self.data, "Metadata": dict(self.metadata), "SystemMetadata": self.system_metadata(delivery_type)}


def ingestion_time(epoch_seconds: float) -> str:
    """``aws:IngestionTime`` as the user guide's example writes it (``2026-09-23T18:00:00Z``): UTC, whole seconds."""
    return _whole_second(int(epoch_seconds))


@lru_cache(maxsize=64)  # every event of a second, and each delivery of it, asks for the same one
def _whole_second(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timestamp(epoch_seconds: float) -> datetime:
    """A timestamp member of an API answer (what botocore gives its caller): an aware UTC ``datetime``."""
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
