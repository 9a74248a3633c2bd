"""What this emulator does where AWS's documentation of the Custom Event Bus is silent: every choice a setting.

``shared/custom-event-bus/SPEC.md`` (Appendix A) lists the behaviours the user guide, the API reference and the
service model leave open. Each is a field of :class:`Choices` with its default, the reasoning, and the
section of the spec that discusses it; a test per field (``tests/unit/test_custom_bus_choices.py``) shows what
was chosen. Pass another :class:`Choices` to :class:`~yafdp.custom_event_bus.service.CustomEventBusService` to
try the alternative.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choices:
    """The emulator's answers to what AWS does not document (SPEC.md Appendix A, numbered as there)."""

    # A.1: Type, State and StartingPosition left out of CreateSubscriber. The agent toolkit [secondary] says
    # LATEST; UNORDERED is the type without extra promises; RUNNING is the state that delivers.
    default_type: str = "UNORDERED"
    default_state: str = "RUNNING"
    default_starting_position: str = "LATEST"
    # Not in Appendix A: LambdaParameters.InvocationType left out. The parameters "are forwarded to the Lambda
    # Invoke API" (API Reference, LambdaParameters), whose own default is RequestResponse.
    default_lambda_invocation_type: str = "REQUEST_RESPONSE"
    # A.2: a FIFO subscriber's event without EventGroupId is a group of its own (Serverless Land [secondary]).
    ungrouped_is_own_group: bool = True
    # A.3: after a FIFO event's terminal failure (dead-lettered, or dropped) the group moves on to its next
    # event; the consumer sees a hole ("for as long as it is retried", UG retry).
    advance_group_after_terminal_failure: bool = True
    # A.4: at most one delivery in flight per (subscriber, event group); one event per group in a batch, so a
    # partially failed batch can never let a later event of a group overtake an earlier one.
    events_per_group_per_batch: int = 1
    # A.5: a DEDUPLICATED entry answers the original event's EventId and SequenceNumber.
    deduplicated_returns_original: bool = True
    # A.6: the window counts from the accepted original (not sliding); with both CONTENT_BASED and a
    # DeduplicationId, the explicit DeduplicationId is the key.
    sliding_deduplication_window: bool = False
    explicit_id_over_content: bool = True
    # A.7: what a PutEvents entry's content hash covers (the entry as the publisher supplied it).
    content_hash_fields: tuple[str, ...] = ("Source", "DetailType", "Resources", "Time", "Detail")
    # A.8: every entry-level validation failure answers ErrorCode VALIDATION_ERROR; a rate limit is a
    # request-level ThrottlingException.
    entry_error_code: str = "VALIDATION_ERROR"
    # A.10: MaxEventAgeInSeconds counts from the first delivery attempt (a replayed old event is not expired at
    # once); retries back off exponentially from 1 s, doubling, capped at 60 s, with equal jitter.
    event_age_from_first_attempt: bool = True
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 60.0
    # A.11: at EndPoint the subscriber stays RUNNING and idle; StartingPoint is inclusive, EndPoint exclusive.
    stop_at_end_point: bool = False
    # A.12: an event that expires from retention while the subscriber is STOPPED is skipped without a record.
    # A.13: a dead-letter record's failedMessages[].timestamp is the event's ingestion time.
    # A.14: the PutEvents envelope: version "0", id = aws:EventId, account = the publisher, region = the bus's.
    envelope_version: str = "0"
    # A.15: replay start-up and subscriber activation delays, and how long a new bus stays CREATING (seconds).
    replay_start_delay_seconds: float = 0.0
    bus_creating_seconds: float = 0.0
    bus_deleting_seconds: float = 0.0
    # Not in Appendix A: "Only one subscriber create or delete runs at a time per bus ... a concurrent one fails
    # with ConcurrentModificationException" (UG subscribers; UG quotas). How long one runs is not documented:
    # here a create or delete holds its bus for this many seconds (0: the call is over when it answers).
    subscriber_change_seconds: float = 0.0
    # A.16: an UNORDERED subscriber delivers at least once (an injected duplicate hand-off is possible).
    # Not in Appendix A: whether a backlog delivered after STOPPED -> RUNNING is LIVE or REPLAY. "REPLAY (read
    # from retained history)" (UG replay): an event ingested before the subscriber existed is REPLAY; a backlog
    # the subscriber accumulated while it existed is LIVE.
    backlog_is_replay: bool = False
    # Not documented: SequenceNumber's format (a bus-wide counter, UG addressing) - a 20-digit decimal string
    # that sorts as text in the order it counts.
    sequence_digits: int = 20


DEFAULT_CHOICES = Choices()
