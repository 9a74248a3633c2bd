"""The event bus as the latency model sees it, one class per kind of bus: when a producer's PutEvents call is
accepted, when the bus invokes a rule's target, how long the event then takes to reach it, and when the bus
gives up on it.

:class:`EventBusModel` is the seam: :class:`~yafdp.simulation.timing.SimulatedTiming` (and through it both the
full simulation and the replay, :mod:`yafdp.simulation.replay`) asks a bus model these questions and acts on
the answers, so a kind of bus with other limits is one more class here. :class:`ClassicEventBus` is the bus
this project deploys by default: "Custom Event Bus - Classic", the EventBridge bus that routes with rules and
targets. A bus whose limits are per event group (the new Custom Event Bus: a limit per group, FIFO per group, its
own retry defaults) gets each call's ``group`` and ``size`` for that; until it has its model, a run on it takes
:class:`UnlimitedBus`. :func:`yafdp.runs.bootstrap.timing_for` chooses the model by the run's kind of bus, and
:func:`yafdp.simulation.replay.replay` takes one through ``bus``.

Every answer is a time in virtual seconds, or None when the bus refuses: the caller then does what AWS
does with a refusal (the producer's delivery fails and its queue delivers it again; the event goes to the
rule's dead-letter queue, or is dropped).
"""

from __future__ import annotations

import random
from typing import Protocol, runtime_checkable

from yafdp.runtime.envelope import MAX_ENTRIES_PER_PUT
from yafdp.runtime.publishing import PUBLISH_ATTEMPTS, PUBLISH_BACKOFF_SECONDS
from yafdp.simulation.profiles import Distribution
from yafdp.simulation.quotas import Quotas, TokenBucket


@runtime_checkable
class EventBusModel(Protocol):
    """What the latency model asks of a kind of event bus.

    ``name`` names the kind; ``delivery`` is the latency from the bus invoking a target to the event being
    there (for a queue target, the SQS event source mapping's poll comes on top).
    """

    name: str
    delivery: Distribution

    def put_events(self, at: float, entries: int, group: object = None, size: int = 0) -> float | None:
        """When a producer's PutEvents of ``entries`` entries (``size`` bytes in all, as PutEvents counts them;
        all of event group ``group``, or None), first tried at ``at``, is accepted, its retries included; None
        when the producer gives up (its retries ran out while the bus refused it)."""

    def invoke(self, at: float, retry_policy, group: object = None) -> float | None:
        """When the bus invokes a rule's target for an event it accepted at ``at``; None when it gives up on the
        event first (``retry_policy``: the target's ``maximum_retry_attempts`` and ``maximum_event_age_seconds``),
        so the event goes to the rule's dead-letter queue or is dropped."""

    def report(self) -> dict:
        """What the bus did: requests throttled and refused, invocations delayed and given up on."""


class ClassicEventBus:
    """EventBridge's Custom Event Bus - Classic (rules and targets), at an account's quotas.

    **PutEvents** is limited per account and Region ("PutEvents throttle limit in transactions per second",
    Amazon EventBridge quotas, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html): a
    token bucket of ``quotas.eventbridge_put_events_per_second``, one token per request of up to 10 entries. A
    throttled request is retried by its producer after a backoff with full jitter, up to
    :data:`~yafdp.runtime.publishing.PUBLISH_ATTEMPTS` tries in all (the SDKs' standard retry mode,
    https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html); it is accepted at the first try
    at or after the bucket has a token for it, and refused when no try is (the producer gets a
    ``ThrottlingException``). A request's tries keep their place in line: the model does not make other
    requests overtake it between two of its tries.

    **Invocations** of rules' targets are limited per account and Region too ("Invocations throttle limit in
    transactions per second", same page): a token bucket of ``quotas.eventbridge_invocations_per_second``. "If the
    invocation of a target fails due to a problem with the target service or account throttling, EventBridge
    reattempts for up to 24 hours" (Amazon EventBridge quotas, earlier edition of the same page) and "retry
    attempts continue until either the maximum number of attempts is made or until the duration of the
    MaximumEventAgeInSeconds is met" (RetryPolicy, EventBridge API reference,
    https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_RetryPolicy.html). How often EventBridge
    tries a throttled invocation again is not documented, so the model makes a choice: a throttled invocation
    waits its turn in line (first come, first served) for as long as the target's maximum event age allows,
    and its attempts are not counted; one whose turn would come later than that is given up on (dead-lettered
    or dropped), and takes no token.

    ``rng`` draws the producers' backoffs; it is used only when a request is throttled, so a run that stays
    under the quotas draws nothing from it.
    """

    name = "EventBridge Custom Event Bus - Classic"

    def __init__(self, quotas: Quotas, delivery: Distribution, rng: random.Random):
        self.delivery = delivery
        self._put_events = TokenBucket(quotas.eventbridge_put_events_per_second)
        self._invocations = TokenBucket(quotas.eventbridge_invocations_per_second)
        self._rng = rng
        self.put_events_refused = self.invocations_expired = 0

    def put_events(self, at: float, entries: int, group: object = None, size: int = 0) -> float | None:
        bucket = self._put_events
        for _ in range(1 if entries <= MAX_ENTRIES_PER_PUT else -(-entries // MAX_ENTRIES_PER_PUT)):
            if bucket.admit(at, 0.0) is None:  # throttled: the producer tries again after its backoffs
                ready, tried, backoff = bucket.earliest(at), at, PUBLISH_BACKOFF_SECONDS
                for _ in range(PUBLISH_ATTEMPTS - 1):
                    tried += self._rng.uniform(0.0, backoff)
                    backoff *= 2
                    if tried >= ready:
                        break
                else:
                    self.put_events_refused += 1
                    return None
                at = bucket.take(tried, at)
        return at

    def invoke(self, at: float, retry_policy, group: object = None) -> float | None:
        invoked = self._invocations.admit(at, retry_policy.maximum_event_age_seconds)
        if invoked is None:
            self.invocations_expired += 1
        return invoked

    def report(self) -> dict:
        put, invocations = self._put_events, self._invocations
        return {
            "put_events_throttled": put.throttled, "put_events_throttle_delay_s": round(put.delay, 3),
            "put_events_refused": self.put_events_refused,
            "invocations_throttled": invocations.throttled,
            "invocations_throttle_delay_s": round(invocations.delay, 3),
            "invocations_expired": self.invocations_expired,
        }


class UnlimitedBus:
    """A bus model with no quota: every PutEvents call is accepted and every target invoked at once; only the
    bus's ``delivery`` latency applies.

    It stands in for a kind of bus whose own model is not written yet: a run on the Custom Event Bus takes it, so
    that none of the Classic bus's account quotas (which that bus does not have) bind there. The Custom Event
    Bus's own limits (per event group and per bus, FIFO per group) belong in a class of their own here.
    """

    name = "no quota model (the bus's own limits are not modelled yet)"

    def __init__(self, delivery: Distribution):
        self.delivery = delivery

    def put_events(self, at: float, entries: int, group: object = None, size: int = 0) -> float:
        return at

    def invoke(self, at: float, retry_policy, group: object = None) -> float:
        return at

    def report(self) -> dict:
        return {"put_events_throttled": 0, "put_events_throttle_delay_s": 0.0, "put_events_refused": 0,
                "invocations_throttled": 0, "invocations_throttle_delay_s": 0.0, "invocations_expired": 0}
