"""What a service handler sees: its own state and a way to publish, committed together or not at all.

Handlers are plain functions ``handler(event, uow)``. Reads go to the service's store; writes and published
events are buffered in the unit of work, and the backend commits them in one transaction with the record
that the delivery was processed (the idempotency key), so a retried or duplicated delivery never applies twice.
"""

from __future__ import annotations

from typing import Any, Callable, NotRequired, Protocol, TypedDict, runtime_checkable


# The event as EventBridge delivers it to a target (a replayed one also carries "replay-name").
Envelope = TypedDict("Envelope", {
    "version": str, "id": str, "detail-type": str, "source": str, "account": str, "time": str, "region": str,
    "resources": list, "detail": dict, "replay-name": NotRequired[str],
})


@runtime_checkable
class ServiceState(Protocol):
    """A service's own store, as a handler reads it: items by ``(kind, key)``. The local bus keeps it in
    ``run.db`` (:class:`~yafdp.backends.local.run_writer.SqliteServiceState`), a deployment in the service's
    DynamoDB table (:class:`~yafdp.backends.aws.dynamo_state.DynamoState`)."""

    def get(self, kind: str, key: str) -> dict | None:
        """The item stored under ``(kind, key)``, or None."""


@runtime_checkable
class UnitOfWork(Protocol):
    """What a handler ``handler(event: Envelope, uow: UnitOfWork)`` gets: its service's state to read, and
    writes and publications that the backend commits together, or not at all."""

    service: str
    world: Any  # what the catalog's saga.py world() gives (YAFDP: the marketplace), or None
    saga: Any  # the catalog's saga vocabulary (yafdp.catalog.saga.Saga): its statuses and how events move them
    now: Callable[[], float]

    def get(self, kind: str, key: str) -> dict | None:
        """The item under ``(kind, key)``, including what this unit wrote but has not committed."""

    def put(self, kind: str, key: str, item: dict) -> None:
        """Store ``item`` under ``(kind, key)`` when the unit commits."""

    def add(self, kind: str, key: str, item: dict) -> bool:
        """Store ``item`` only if nothing is stored under ``(kind, key)``; False when something is."""

    def publish(self, detail_type: str, detail: dict[str, Any], *, source: str | None = None) -> None:
        """Publish an event when the unit commits."""


class BufferedUnitOfWork:
    """The :class:`UnitOfWork` every backend gives its handlers: reads, buffered writes, buffered publications.

    Examples
    --------
    >>> class Empty:
    ...     def get(self, kind, key): return None
    >>> uow = BufferedUnitOfWork("payment", Empty(), world=None, now=lambda: 0.0)
    >>> uow.add("charge", "ord-1", {"amount": 10})
    True
    >>> uow.add("charge", "ord-1", {"amount": 10})
    False
    >>> uow.publish("Payment_Success", {"order_id": "ord-1"}); uow.outbox
    [(None, 'Payment_Success', {'order_id': 'ord-1'})]
    """

    __slots__ = ("service", "state", "world", "now", "saga", "writes", "outbox")

    def __init__(self, service: str, state: ServiceState, world: Any, now: Callable[[], float], saga: Any = None):
        self.service = service
        self.state = state
        self.world = world
        self.now = now
        self.saga = saga
        self.writes: dict[tuple[str, str], dict] = {}
        self.outbox: list[tuple[str | None, str, dict]] = []

    def get(self, kind: str, key: str) -> dict | None:
        """The item stored under ``(kind, key)``, including what this unit wrote but has not committed."""
        item = self.writes.get((kind, key))
        return item if item is not None else self.state.get(kind, key)

    def put(self, kind: str, key: str, item: dict) -> None:
        """Store ``item`` under ``(kind, key)`` when the unit commits (replacing what was there)."""
        self.writes[(kind, key)] = item

    def add(self, kind: str, key: str, item: dict) -> bool:
        """Store ``item`` only if nothing is stored under ``(kind, key)``; False when something is."""
        if self.get(kind, key) is not None:
            return False
        self.put(kind, key, item)
        return True

    def publish(self, detail_type: str, detail: dict[str, Any], *, source: str | None = None) -> None:
        """Publish an event when the unit commits. ``source`` defaults to the service's own; any other is
        refused at commit, as the IAM condition ``events:source`` refuses it on AWS."""
        self.outbox.append((source, detail_type, detail))
