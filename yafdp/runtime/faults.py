"""Infrastructure faults a backend injects, seeded and combinable: the saga must hold under all of them.

Business failures (a declined card, a closed restaurant, no courier) are not here: they come from the
workload's orders. These are the bus's and the handlers' misbehaviours: at-least-once duplicates,
reordering, delays, transient handler crashes and poison events. Every backend asks :func:`decide` what
happens to one event at one rule, so the same seed injects the same faults into the same deliveries on
the local bus and on moto, whatever the order the deliveries happen in.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields

from yafdp.errors import RefusedError

# The longest injected delay: EventBridge's maximum event age, the longest it keeps retrying a delivery
# (RetryPolicy.MaximumEventAgeInSeconds, 60 to 86,400 seconds: Amazon EventBridge API Reference, RetryPolicy,
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_RetryPolicy.html). A later delivery would have
# been dropped by AWS; a far later one would not have a representable time.
MAX_DELAY_SECONDS = 86_400

TRANSIENT = "transient"
POISON = "poison"
POISON_MESSAGE = "PoisonEvent: injected fault, this delivery fails on every attempt"
TRANSIENT_MESSAGE = "TransientError: injected crash after the handler ran, before it committed"


@dataclass(frozen=True)
class Faults:
    """Rates are probabilities per delivery (one event to one rule's target), each from 0 to 1.

    duplicate_rate: the delivery is made twice (at-least-once delivery).
    reorder_rate: the delivery is held back up to ``max_delay_seconds`` so later events overtake it.
    delay_rate: the delivery is late by up to ``max_delay_seconds`` (without the intent to reorder).
    handler_failure_rate: the handler crashes after doing its work, before committing, on the first
        attempt only (a transient fault: the retry succeeds).
    poison_rate: the handler crashes on every attempt (a poison event: it ends in the dead-letter queue).
    publish_retry_rate: per unit of work that publishes, the producer does not hear PutEvents' answer (a
        timeout after the bus accepted the entries) and sends the same entries again. On the Classic bus that
        publishes every event a second time, under new ids; on a Custom Event Bus with deduplication the copies
        are answered ``DEDUPLICATED`` and nothing is stored twice.
    """

    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    delay_rate: float = 0.0
    handler_failure_rate: float = 0.0
    poison_rate: float = 0.0
    publish_retry_rate: float = 0.0
    max_delay_seconds: float = 5.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise RefusedError(f"{f.name} must be between 0 and 1, got {value}")
        if not 0 <= self.max_delay_seconds <= MAX_DELAY_SECONDS:
            raise RefusedError(f"max_delay_seconds must be from 0 to {MAX_DELAY_SECONDS:,} seconds (EventBridge's "
                               f"maximum event age); got {self.max_delay_seconds}")

    @property
    def any(self) -> bool:
        return any(getattr(self, name) for name in _RATES)  # asked once per published event: no fields() here

    def to_dict(self) -> dict:
        return asdict(self)


_RATES = tuple(f.name for f in fields(Faults) if f.name.endswith("_rate"))


@dataclass(frozen=True)
class FaultDecision:
    """What happens to one event at one rule: its fault (``""``, :data:`TRANSIENT` or :data:`POISON`), how many
    seconds late it is delivered (reordering and delays), and whether it is delivered a second time, and when."""

    fault: str = ""
    late_seconds: float = 0.0
    duplicate: bool = False
    duplicate_late_seconds: float = 0.0


NO_FAULT = FaultDecision()


def decide(faults: Faults, seed: int, event_id: str, rule: str) -> FaultDecision:
    """The faults injected into the delivery of ``event_id`` to ``rule``'s target: a pure function of the four,
    so every copy and every attempt of that delivery, on any backend, gets the same decision.

    Examples
    --------
    >>> faults = Faults(poison_rate=0.5, duplicate_rate=1.0)
    >>> decide(faults, 7, "ev-1", "payment-charges-order") == decide(faults, 7, "ev-1", "payment-charges-order")
    True
    >>> decide(faults, 7, "ev-1", "payment-charges-order").duplicate
    True
    >>> decide(Faults(), 7, "ev-1", "payment-charges-order") is NO_FAULT
    True
    """
    if not faults.any:
        return NO_FAULT
    rng = random.Random(f"{seed}:{event_id}:{rule}:faults")
    late = 0.0
    if faults.reorder_rate and rng.random() < faults.reorder_rate:
        late += rng.uniform(0, faults.max_delay_seconds)
    if faults.delay_rate and rng.random() < faults.delay_rate:
        late += rng.uniform(0, faults.max_delay_seconds)
    fault = ""
    if faults.poison_rate and rng.random() < faults.poison_rate:
        fault = POISON
    elif faults.handler_failure_rate and rng.random() < faults.handler_failure_rate:
        fault = TRANSIENT
    duplicate = bool(faults.duplicate_rate) and rng.random() < faults.duplicate_rate
    copy_late = rng.uniform(0, faults.max_delay_seconds) if duplicate else 0.0
    return FaultDecision(fault, late, duplicate, copy_late)


def retries_publish(faults: Faults, seed: int, published_by: str) -> bool:
    """Whether the producer of the unit of work ``published_by`` (``rule#event_id``) sends its PutEvents twice
    (:attr:`Faults.publish_retry_rate`): a pure function of the three, the same on every backend and attempt.

    Examples
    --------
    >>> retries_publish(Faults(publish_retry_rate=1.0), 7, "r#e"), retries_publish(Faults(), 7, "r#e")
    (True, False)
    """
    rate = faults.publish_retry_rate
    return bool(rate) and random.Random(f"{seed}:{published_by}:publish-retry").random() < rate


class InjectedFault(RuntimeError):
    """A crash the fault injector caused on purpose."""


def injected_failure(fault: str, attempt: int) -> InjectedFault | None:
    """The crash to raise after the handler ran, for a delivery with ``fault`` on its ``attempt`` (1-based):
    a poison event fails every attempt, a transient fault only the first; None when it should succeed.

    Examples
    --------
    >>> str(injected_failure(TRANSIENT, 1)).startswith("TransientError"), injected_failure(TRANSIENT, 2)
    (True, None)
    """
    if fault == POISON:
        return InjectedFault(POISON_MESSAGE)
    if fault == TRANSIENT and attempt == 1:
        return InjectedFault(TRANSIENT_MESSAGE)
    return None
