"""Deduplication at publish: a copy of an accepted entry, published again within 5 minutes, is answered
``DEDUPLICATED`` and not stored a second time.

Two modes: ``CONTENT_BASED`` (the request's ``DeduplicationConfiguration``; a SHA-256 hash of the content) or an
explicit ``SystemMetadata.DeduplicationId`` per entry. The scope is the publishing account, and the event group
when the entry has one: "The same key from another account, or in another group, is a different event". The
window is 300 s and fixed (UG "Ordering and deduplication",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html; UG quotas).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict

from yafdp.custom_event_bus.choices import Choices
from yafdp.custom_event_bus.events import StoredEvent
from yafdp.custom_event_bus.limits import DEDUPLICATION_WINDOW_SECONDS

# (bus, publisher account, EventGroupId or None, key): a key is "id:<DeduplicationId>" or "sha256:<hash>".
DeduplicationKey = tuple[str, str, "str | None", str]


def content_hash(entry: dict, choices: Choices) -> str:
    """The SHA-256 of a PutEvents entry's content as the publisher supplied it (the fields
    ``choices.content_hash_fields`` names; which fields AWS hashes is not documented, SPEC A.7).

    Examples
    --------
    >>> a = {"Source": "s", "DetailType": "t", "Detail": '{"a": 1}'}
    >>> content_hash(a, Choices()) == content_hash(dict(a), Choices())
    True
    """
    material = {name: entry[name] for name in choices.content_hash_fields if entry.get(name) is not None}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


class DeduplicationWindow:
    """The keys of entries accepted in the last 300 seconds, each with the event it stored.

    Examples
    --------
    >>> window = DeduplicationWindow(Choices())
    >>> key = ("bus", "111122223333", "ord-1", "id:charge-1")
    >>> window.original(key, now=10.0) is None
    True
    """

    def __init__(self, choices: Choices, seconds: float = DEDUPLICATION_WINDOW_SECONDS):
        self.choices, self.seconds = choices, seconds
        self._seen: OrderedDict[DeduplicationKey, tuple[float, StoredEvent]] = OrderedDict()

    def key(self, bus: str, account: str, entry: dict, content_based: bool) -> DeduplicationKey | None:
        """The entry's deduplication key, or None when it asks for none (no DeduplicationId, no CONTENT_BASED).
        With both, the explicit id wins (SPEC A.6, a setting)."""
        system = entry.get("SystemMetadata") or {}
        explicit = system.get("DeduplicationId")
        group = system.get("EventGroupId")
        if explicit is not None and (self.choices.explicit_id_over_content or not content_based):
            return (bus, account, group, "id:" + explicit)
        if content_based:
            return (bus, account, group, "sha256:" + content_hash(entry, self.choices))
        return None

    def original(self, key: DeduplicationKey, now: float) -> StoredEvent | None:
        """The event an entry with ``key`` repeats, if it was accepted less than 300 s ago."""
        self._forget(now)
        found = self._seen.get(key)
        if found is None:
            return None
        if self.choices.sliding_deduplication_window:
            self._seen[key] = (now, found[1])
            self._seen.move_to_end(key)
        return found[1]

    def remember(self, key: DeduplicationKey, event: StoredEvent, now: float) -> None:
        self._seen[key] = (now, event)

    def _forget(self, now: float) -> None:
        seen, horizon = self._seen, now - self.seconds
        while seen:
            key, (at, _) = next(iter(seen.items()))
            if at > horizon:
                break
            del seen[key]

    def __len__(self) -> int:
        return len(self._seen)
