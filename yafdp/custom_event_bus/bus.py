"""One Custom Event Bus: it takes events (``PutEvents``), deduplicates them, retains them, and hands each to
every subscriber whose filters match.

"PutEvents is a convenience layer over PutRawEvents: EventBridge turns the entry into a JSON envelope, stores it
with content type application/eventbridge+json" (UG "Publishing",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-publish.html). Entries succeed or fail
independently; ``DEDUPLICATED`` is a success; a request over 1 MB is refused whole (M ``PutEvents``). A group may
take 1,500 events + KB per second and a bus 500,000 events per second (UG quotas,
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html#eb-custom-bus-quotas); a local run leaves
that to its timing model, the served endpoint enforces it (``enforce_quotas``).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import deque
from dataclasses import replace
from datetime import datetime

from yafdp.custom_event_bus.choices import Choices
from yafdp.custom_event_bus.dead_letters import DeadLetterRecord
from yafdp.custom_event_bus.deduplication import DeduplicationWindow
from yafdp.custom_event_bus.errors import ApiError, invalid
from yafdp.custom_event_bus.events import StoredEvent, ingestion_time, timestamp
from yafdp.custom_event_bus.limits import (BUS_EVENTS_PER_SECOND, GROUP_EVENTS_PLUS_KB_PER_SECOND,
                                          MAX_DEDUPLICATION_ID_LENGTH, MAX_DETAIL_TYPE_LENGTH, MAX_ENTRIES,
                                          MAX_GROUP_ID_LENGTH, MAX_REQUEST_BYTES, MAX_RESOURCES, MAX_SOURCE_LENGTH)
from yafdp.custom_event_bus.retention import EventStore
from yafdp.custom_event_bus.subscriber import Subscriber
from yafdp.patterns import RuleSet


class EventBus:
    """A bus of ``service`` (a :class:`~yafdp.custom_event_bus.service.CustomEventBusService`): its state (``CREATING``,
    ``ACTIVE``, ``DELETING``, ...), retained events (:attr:`store`), deduplication window and subscribers."""

    def __init__(self, service, name: str, arn: str, created_at: float, retention_days: int,
                 description: str | None, tags: dict, encryption: dict | None):
        self.service, self.name, self.arn = service, name, arn
        self.created_at = self.last_modified = created_at
        self.description, self.tags, self.encryption = description, tags, encryption
        self.state, self.state_reason = "CREATING", None
        self.store = EventStore(created_at, retention_days)
        self.dedup = DeduplicationWindow(service.choices)
        self.subscribers: dict[str, Subscriber] = {}
        self._data_rules = RuleSet()
        self._rng = random.Random(f"{service.seed}:{arn}:ids")
        self._group_window: dict[tuple, deque] = {}
        self._bus_window: deque = deque()

    # what a subscriber uses of its bus
    @property
    def clock(self):
        return self.service.clock

    @property
    def choices(self) -> Choices:
        return self.service.choices

    @property
    def observer(self):
        return self.service.observer

    def target(self, arn: str):
        return self.service.targets(arn)

    def dead_letter(self, queue_arn: str, record: DeadLetterRecord) -> bool:
        """Send an on-failure record; False when the queue cannot take it."""
        return self.service.dead_letter_queues(queue_arn, record)

    def replace_state(self, subscriber: Subscriber, state: str):
        request = {**subscriber.config.request, "State": state}
        return replace(subscriber.config, state=state, request=request)

    # ---------------------------------------------------------------- subscribers

    def add_subscriber(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber.name] = subscriber
        self.refilter(subscriber)

    def refilter(self, subscriber: Subscriber) -> None:
        """(Re)register the subscriber's ``DATA`` pattern in the bus's rule set (live events are matched against
        every subscriber's ``DATA`` filter in one pass)."""
        if subscriber.name in self._data_rules:
            self._data_rules.remove(subscriber.name)
        data = subscriber.config.filter.data
        if data is not None:
            self._data_rules.add(subscriber.name, data)

    def remove_subscriber(self, subscriber: Subscriber) -> None:
        subscriber.delete()
        self.subscribers.pop(subscriber.name, None)
        if subscriber.name in self._data_rules:
            self._data_rules.remove(subscriber.name)

    # ---------------------------------------------------------------- publishing

    def put_events(self, entries, deduplication: dict | None, account: str) -> dict:
        """Answer a ``PutEvents`` request (``Entries``, ``DeduplicationConfiguration``) published by ``account``:
        ``{"FailedEntryCount", "Entries": [{"EventId", "SequenceNumber", "SuccessCode"} | {"ErrorCode",
        "ErrorMessage"}]}`` in request order.

        Raises ``InvalidStateException`` when the bus is not ``ACTIVE``, ``InvalidInputException`` for a request
        that is wrong as a whole (no entries, more than 100, over 1 MB, an unknown deduplication type), and
        ``ThrottlingException`` when the service enforces quotas and a group or the bus is over its rate.
        """
        if self.state not in ("ACTIVE", "UPDATING"):
            raise ApiError("InvalidStateException", f"the bus {self.arn} is {self.state}: it takes events once ACTIVE")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
            raise invalid("Entries", f"must list 1 to {MAX_ENTRIES} entries, got "
                          f"{len(entries) if isinstance(entries, list) else type(entries).__name__}")
        content_based = False
        if deduplication is not None:
            kind = deduplication.get("DeduplicationType") if isinstance(deduplication, dict) else None
            if kind != "CONTENT_BASED":
                raise invalid("DeduplicationConfiguration.DeduplicationType", f"must be CONTENT_BASED, got {kind!r}")
            content_based = True
        sizes = [entry_size(e) for e in entries]
        if sum(sizes) > MAX_REQUEST_BYTES:
            raise invalid("Entries", f"the request is {sum(sizes):,} bytes; a PutEvents request may be at most "
                          f"{MAX_REQUEST_BYTES:,} (1 MB), and nothing of it was published")
        now = self.clock.now()
        self.store.expire(now)  # what is past the retention period is gone before anything new is kept
        if self.service.enforce_quotas:
            self._admit(entries, sizes, account, now)
        results, failed = [], 0
        for entry, size in zip(entries, sizes):
            problem = _entry_problem(entry)
            if problem:
                failed += 1
                results.append({"ErrorCode": self.choices.entry_error_code, "ErrorMessage": problem})
                continue
            key = self.dedup.key(self.arn, account, entry, content_based)
            original = self.dedup.original(key, now) if key is not None else None
            if original is not None:
                results.append({"EventId": original.event_id, "SequenceNumber": original.sequence_number,
                                "SuccessCode": "DEDUPLICATED"})
                continue
            event = self._ingest(entry, size, account, now)
            if key is not None:
                self.dedup.remember(key, event, now)
            results.append({"EventId": event.event_id, "SequenceNumber": event.sequence_number,
                            "SuccessCode": "PUBLISHED"})
        return {"FailedEntryCount": failed, "Entries": results}

    def _ingest(self, entry: dict, size: int, account: str, now: float) -> StoredEvent:
        seq = self.store.next_seq
        event_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        system = entry.get("SystemMetadata") or {}
        time = entry.get("Time")
        stamp = (time.timestamp() if isinstance(time, datetime) else float(time)) if time is not None else now
        detail = json.loads(entry["Detail"]) if entry.get("Detail") is not None else {}
        data = {"version": self.choices.envelope_version, "id": event_id, "detail-type": entry["DetailType"],
                "source": entry["Source"], "account": account, "time": ingestion_time(stamp), "region": self.service.region,
                "resources": list(entry.get("Resources") or []), "detail": detail}
        event = StoredEvent(seq, event_id, now, account, system.get("EventGroupId"), system.get("DeduplicationId"),
                            data, entry["Source"], entry["DetailType"], size,
                            str(seq + 1).zfill(self.choices.sequence_digits))
        self.store.append(event)
        matched = set(self._data_rules.matching(data)) if len(self._data_rules) else set()
        for subscriber in list(self.subscribers.values()):
            has_data = subscriber.config.filter.data is not None
            subscriber.offer(event, (subscriber.name in matched) if has_data else None)
        self.service.observer_published(self, event)
        return event

    def _admit(self, entries: list, sizes: list[int], account: str, now: float) -> None:
        """Refuse the request with ``ThrottlingException`` when it would take a group or the bus over its rate in
        the last second (SPEC A.8: a rate limit is request-level)."""
        horizon = now - 1.0
        bus = self._bus_window
        while bus and bus[0][0] <= horizon:
            bus.popleft()
        if len(bus) + len(entries) > BUS_EVENTS_PER_SECOND:
            raise ApiError("ThrottlingException", f"the bus takes at most {BUS_EVENTS_PER_SECOND:,} events per second")
        wanted: dict[tuple, float] = {}
        for entry, size in zip(entries, sizes):
            group = ((entry.get("SystemMetadata") or {}).get("EventGroupId")) if isinstance(entry, dict) else None
            if group is not None:
                # events + their total size in KB (how KB are rounded is not documented: not at all here)
                wanted[(account, group)] = wanted.get((account, group), 0) + 1 + size / 1024
        for key, weight in wanted.items():
            window = self._group_window.setdefault(key, deque())
            while window and window[0][0] <= horizon:
                window.popleft()
            if sum(w for _, w in window) + weight > GROUP_EVENTS_PLUS_KB_PER_SECOND:
                raise ApiError("ThrottlingException", f"event group {key[1]!r} is over {GROUP_EVENTS_PLUS_KB_PER_SECOND:,} "
                               "events + KB per second")
        for key, weight in wanted.items():
            self._group_window[key].append((now, weight))
        bus.extend((now,) for _ in entries)

    def describe(self) -> dict:
        self.store.expire(self.clock.now())  # RetentionWindowStartTime: the oldest instant still readable
        return {"EventBusArn": self.arn, "Name": self.name, "State": self.state,
                **({"Description": self.description} if self.description else {}),
                **({"EncryptionConfiguration": self.encryption} if self.encryption else {}),
                **({"StateReason": self.state_reason} if self.state_reason else {}),
                "StorageConfiguration": {"RetentionPeriodInDays": self.store.retention_days,
                                         "RetentionWindowStartTime": timestamp(self.store.window_start)},
                "CreationTime": timestamp(self.created_at), "LastModifiedTime": timestamp(self.last_modified)}




def entry_size(entry) -> int:
    """An entry's bytes toward the 1 MB request limit: its strings' UTF-8 bytes (and 14 for a ``Time``), as
    Classic's documented formula counts them (UG "Calculating PutEvents event entry size",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html), plus the SystemMetadata values."""
    if not isinstance(entry, dict):
        return 0
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        value = entry.get(name)
        size += len(value.encode()) if isinstance(value, str) else 0
    size += sum(len(r.encode()) for r in entry.get("Resources") or [] if isinstance(r, str))
    system = entry.get("SystemMetadata") or {}
    if isinstance(system, dict):
        size += sum(len(v.encode()) for v in system.values() if isinstance(v, str))
    return size


def _entry_problem(entry) -> str | None:
    """What is wrong with one entry (its error message), or None."""
    if not isinstance(entry, dict):
        return "an entry must be a structure"
    source, detail_type, detail = entry.get("Source"), entry.get("DetailType"), entry.get("Detail")
    if not isinstance(source, str) or not 1 <= len(source) <= MAX_SOURCE_LENGTH:
        return f"Source is required, 1 to {MAX_SOURCE_LENGTH} characters"
    if source.startswith("aws."):
        return "Source values starting with 'aws.' are reserved for AWS services"
    if not isinstance(detail_type, str) or not 1 <= len(detail_type) <= MAX_DETAIL_TYPE_LENGTH:
        return f"DetailType is required, 1 to {MAX_DETAIL_TYPE_LENGTH} characters"
    if detail is not None:
        if not isinstance(detail, str):
            return "Detail must be JSON text"
        try:
            json.loads(detail)
        except ValueError:
            return "Detail is not valid JSON"
    resources = entry.get("Resources")
    if resources is not None and (not isinstance(resources, list) or len(resources) > MAX_RESOURCES
                                  or not all(isinstance(r, str) and len(r) <= 2048 for r in resources)):
        return f"Resources must list at most {MAX_RESOURCES} strings of at most 2048 characters"
    time = entry.get("Time")
    if time is not None and not isinstance(time, (datetime, int, float)):
        return "Time must be a timestamp"
    system = entry.get("SystemMetadata")
    if system is not None:
        if not isinstance(system, dict):
            return "SystemMetadata must be a structure"
        group, dedup = system.get("EventGroupId"), system.get("DeduplicationId")
        if group is not None and (not isinstance(group, str) or not 1 <= len(group) <= MAX_GROUP_ID_LENGTH):
            return f"SystemMetadata.EventGroupId must be 1 to {MAX_GROUP_ID_LENGTH} characters"
        if dedup is not None and (not isinstance(dedup, str) or not 1 <= len(dedup) <= MAX_DEDUPLICATION_ID_LENGTH
                                  or not dedup.strip()):
            return (f"SystemMetadata.DeduplicationId must be 1 to {MAX_DEDUPLICATION_ID_LENGTH} characters with at "
                    "least one that is not white space")
        unknown = sorted(set(system) - {"EventGroupId", "DeduplicationId"})
        if unknown:
            return f"SystemMetadata has no member {unknown[0]!r} (PutEvents takes EventGroupId and DeduplicationId)"
    return None
