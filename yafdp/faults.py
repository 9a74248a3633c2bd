"""Infrastructure faults the local bus can inject, seeded and combinable: the saga must hold under all of them.

Business failures (a declined card, a closed restaurant, no courier) are not here: they come from the
workload's orders. These are the bus's and the handlers' misbehaviours: at-least-once duplicates,
reordering, delays, transient handler crashes and poison events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

TRANSIENT = "transient"
POISON = "poison"


@dataclass(frozen=True)
class Faults:
    """Rates are probabilities per delivery (one event to one rule's target).

    duplicate_rate: the delivery is made twice (at-least-once delivery).
    reorder_rate: the delivery is held back up to ``max_delay_seconds`` so later events overtake it.
    delay_rate: the delivery is late by up to ``max_delay_seconds`` (without the intent to reorder).
    handler_failure_rate: the handler crashes after doing its work, before committing, on the first
        attempt only (a transient fault: the retry succeeds).
    poison_rate: the handler crashes on every attempt (a poison event: it ends in the dead-letter queue).
    """

    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    delay_rate: float = 0.0
    handler_failure_rate: float = 0.0
    poison_rate: float = 0.0
    max_delay_seconds: float = 5.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1, got {value}")
        if self.max_delay_seconds < 0:
            raise ValueError(f"max_delay_seconds must not be negative, got {self.max_delay_seconds}")

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name.endswith("_rate"))

    def to_dict(self) -> dict:
        return asdict(self)


class InjectedFault(RuntimeError):
    """A crash the fault injector caused on purpose."""
