"""The saga's vocabulary, as its catalog declares it: what names a saga, where its status is kept, the statuses
it passes through and the outcomes it may end in, which step is compensatable, the pivot or retriable, and
which event compensates which.

``bus.json``'s ``saga`` section declares the saga (its id field, its tracker and its statuses); each happy event
may declare its ``step`` kind and each compensation event the step it ``compensates``. Everything that must
know the saga (the runs, the backends, the checker, the analysis) reads it here, never from a service's code.

The three kinds of step are those of the saga pattern (Garcia-Molina and Salem, *Sagas*, 1987; "compensatable,
pivot and retriable transactions", https://microservices.io/patterns/data/saga.html): a **compensatable** step
can be undone by a compensation; the **pivot** is the go/no-go step after which the saga cannot fail; a
**retriable** step follows the pivot and is retried until it succeeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

STEP_KINDS = ("compensatable", "pivot", "retriable")
# What a terminal status says about the saga: it did what was asked, or it stopped and undid its completed steps.
OUTCOME_KINDS = ("completed", "compensated")


@dataclass(frozen=True)
class Tracker:
    """Where each saga's status is kept: the item ``(kind, <saga id>)`` of ``service``'s state, its ``field``."""

    service: str
    kind: str
    field: str


@dataclass(frozen=True)
class Saga:
    """A catalog's saga: how its events name one saga, and how a saga moves from its start to an outcome.

    ``ranks`` orders the statuses (a status only moves to one of higher rank, so events may arrive in any
    order); ``status_after`` maps an event to the status the tracker holds once it has heard it; ``outcomes``
    maps every terminal status to its :data:`OUTCOME_KINDS`; ``steps`` maps a happy event to its
    :data:`STEP_KINDS`; ``compensations`` maps a compensation event to the step event it undoes.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> saga = load_catalog().saga
    >>> saga.id_field, saga.start_event, sorted(saga.terminal)
    ('order_id', 'Order_Initiated', ['CANCELLED', 'DELIVERY_SCHEDULED'])
    >>> saga.moves("PAID", "Payment_Refunded"), saga.moves("CANCELLED", "Payment_Success")
    ('CANCELLED', None)
    """

    id_field: str
    start_event: str
    tracker: Tracker
    initial_status: str
    ranks: Mapping[str, int]
    status_after: Mapping[str, str]
    outcomes: Mapping[str, str]
    steps: Mapping[str, str]
    compensations: Mapping[str, str]

    @cached_property  # the saga does not change: worked out once (every order's tracker asks)
    def terminal(self) -> frozenset[str]:
        """The statuses a saga ends in."""
        return frozenset(self.outcomes)

    @cached_property
    def completed(self) -> frozenset[str]:
        """The terminal statuses of a saga that did what was asked."""
        return frozenset(s for s, kind in self.outcomes.items() if kind == "completed")

    @cached_property
    def terminal_events(self) -> tuple[str, ...]:
        """The events after which the tracker holds a saga terminal: the saga's last step."""
        return tuple(e for e, s in self.status_after.items() if s in self.outcomes)

    def saga_id(self, detail: Any) -> str | None:
        """The id of the saga an event's ``detail`` (or a request) belongs to; None when it names none.

        Examples
        --------
        >>> from yafdp.catalog import load_catalog
        >>> load_catalog().saga.saga_id({"order_id": "ord-1"}), load_catalog().saga.saga_id([1])
        ('ord-1', None)
        """
        value = detail.get(self.id_field) if isinstance(detail, dict) else None
        return value if isinstance(value, str) else None

    def moves(self, current: str, event: str) -> str | None:
        """The status a saga in ``current`` moves to on hearing ``event``; None when it stays (the event moves
        no status, or to one not ahead of ``current``)."""
        after = self.status_after.get(event)
        if after is None or self.ranks[after] <= self.ranks.get(current, -1):
            return None
        return after

    def status_of(self, events) -> str:
        """The status ``events`` (detail-types, in the order the tracker heard them) lead a saga to."""
        status = self.initial_status
        for event in events:
            status = self.moves(status, event) or status
        return status

    def leads_to(self, status: str) -> frozenset[str]:
        """The events after which the tracker holds ``status``."""
        return frozenset(e for e, s in self.status_after.items() if s == status)

    def compensation_of(self, step: str) -> tuple[str, ...]:
        """The compensation events that undo ``step``."""
        return tuple(c for c, s in self.compensations.items() if s == step)

    def stuck(self, statuses: Mapping[str, Any], shown: int = 5) -> str | None:
        """What is stuck among ``statuses`` (saga id → status), in one line: how many sagas are not in a terminal
        outcome, by status, and the first ``shown`` ids of each; None when every saga is terminal.

        Examples
        --------
        >>> from yafdp.catalog import load_catalog
        >>> load_catalog().saga.stuck({"ord-1": "PAID", "ord-2": "CANCELLED", "ord-3": "PAID"})
        '2 of 3 sagas did not end in a terminal outcome (DELIVERY_SCHEDULED or CANCELLED): 2 PAID (ord-1, ord-3)'
        """
        by_status: dict[str, list[str]] = {}
        for saga_id, status in statuses.items():
            if status not in self.outcomes:
                by_status.setdefault(str(status), []).append(saga_id)
        if not by_status:
            return None
        for ids in by_status.values():
            ids.sort()  # only the stuck ones are sorted (a run's sagas are mostly terminal); the most first, ties
            # by their first id
        stuck = sum(len(ids) for ids in by_status.values())
        parts = [f"{len(ids)} {status} ({', '.join(ids[:shown])}{', …' if len(ids) > shown else ''})"
                 for status, ids in sorted(by_status.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))]
        return (f"{stuck} of {len(statuses)} sagas did not end in a terminal outcome "
                f"({' or '.join(self.outcomes)}): {'; '.join(parts)}")

    def without_events(self, kept: Mapping[str, Any]) -> "Saga":
        """The same saga on a catalog that has only the events ``kept`` (e.g. without a service)."""
        return Saga(self.id_field, self.start_event, self.tracker, self.initial_status, self.ranks,
                    {e: s for e, s in self.status_after.items() if e in kept}, self.outcomes,
                    {e: k for e, k in self.steps.items() if e in kept},
                    {c: s for c, s in self.compensations.items() if c in kept and s in kept})
