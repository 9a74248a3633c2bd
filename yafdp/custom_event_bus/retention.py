"""The bus's retained events: every accepted event kept for the bus's retention period, readable from any
position, so a subscriber can start in the past, pause and resume.

"Every accepted event is kept for StorageConfiguration.RetentionPeriodInDays, 1-365 days, default 1 day";
``RetentionWindowStartTime`` is the earliest readable instant, on a new bus its creation time (UG "Replaying
events", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-replay.html; UG create).
"""

from __future__ import annotations

import bisect

from yafdp.custom_event_bus.events import StoredEvent

DAY_SECONDS = 86_400


class EventStore:
    """Events in ingestion order, by sequence (0, 1, 2, ... over the bus's life); the oldest expire.

    ``window_start`` is ``RetentionWindowStartTime`` (epoch seconds): the bus's creation at first, then the
    ingestion time of the oldest event still kept once older ones expired.

    Examples
    --------
    >>> store = EventStore(created_at=0.0, retention_days=1)
    >>> store.next_seq, store.first_seq
    (0, 0)
    """

    def __init__(self, created_at: float, retention_days: int):
        self.retention_days = retention_days
        self.window_start = created_at
        self._events: list[StoredEvent] = []
        self._times: list[float] = []
        self._offset = 0  # seq of _events[0]

    @property
    def next_seq(self) -> int:
        """The sequence the next accepted event gets."""
        return self._offset + len(self._events)

    @property
    def first_seq(self) -> int:
        """The sequence of the oldest retained event (``next_seq`` when none is)."""
        return self._offset

    def append(self, event: StoredEvent) -> None:
        self._events.append(event)
        self._times.append(event.ingested_at)

    def get(self, seq: int) -> StoredEvent | None:
        """The event at ``seq``, or None when it expired or does not exist yet."""
        index = seq - self._offset
        return self._events[index] if 0 <= index < len(self._events) else None

    def seq_at(self, epoch_seconds: float) -> int:
        """The first retained sequence ingested at or after ``epoch_seconds`` (a ``TIMESTAMP`` start point,
        inclusive)."""
        return self._offset + bisect.bisect_left(self._times, epoch_seconds)

    def expire(self, now: float) -> int:
        """Forget events older than the retention period; returns how many. They are no longer readable: a
        subscriber behind them skips them (SPEC A.12)."""
        cutoff = now - self.retention_days * DAY_SECONDS
        gone = bisect.bisect_left(self._times, cutoff)
        if gone:
            del self._events[:gone], self._times[:gone]
            self._offset += gone
            self.window_start = max(self.window_start, cutoff)
        return gone

    def __len__(self) -> int:
        return len(self._events)
