"""The interfaces every backend implements, declared once: the bus, its timing model, and the function runner.

A run (:mod:`yafdp.runs`) drives any backend through :class:`Bus` only; the local bus, the local Step Functions
runner and a deployment on moto or AWS implement it with the same signatures (a test compares them). A
service's state is :class:`yafdp.runtime.unit_of_work.ServiceState`.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Protocol, runtime_checkable

if TYPE_CHECKING:
    from yafdp.catalog import Catalog
    from yafdp.plan import DeploymentPlan


@dataclass
class BusStats:
    """Counts of what a bus did: events published, deliveries by outcome, requests refused."""

    published: int = 0
    delivered: int = 0
    failed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    refused: int = 0
    dropped: int = 0  # given up on with no dead-letter queue to take them (recorded in dead_letters as 'dropped')
    duplicates_published: int = 0  # PutEvents entries a Custom Event Bus answered DEDUPLICATED (stored nothing)

    @property
    def deliveries(self) -> int:
        """Every delivery attempt that finished, whatever its outcome."""
        return self.delivered + self.failed + self.duplicates + self.dead_lettered


@runtime_checkable
class Bus(Protocol):
    """A backend a run drives: the services of a plan behind an EventBridge bus (or a state machine).

    ``db`` is the run database (:mod:`yafdp.runtime.rundb`), up to date after :meth:`commit`; ``stats`` the
    counts; ``catalog`` and ``plan`` what it runs.
    """

    catalog: Catalog
    plan: DeploymentPlan
    db: sqlite3.Connection
    stats: BusStats

    def schedule_all(self, actions: Iterable[tuple[float, Callable[[], object]]]) -> None:
        """Run each ``(at, action)`` at its time; ``actions`` come in time order."""

    def put_events(self, entries: Iterable[dict], *, sender: str) -> dict:
        """Publish ``{"DetailType", "Detail"[, "Source", "Time", "Resources"]}`` entries as service ``sender``.

        Returns PutEvents' answer, per entry in request order: ``{"FailedEntryCount": n, "Entries": [{"EventId"}
        or {"ErrorCode", "ErrorMessage"}, ...]}`` (see :mod:`yafdp.runtime.publishing`); the accepted entries are
        published whatever happens to the others. Raises :class:`yafdp.runtime.envelope.PublishError` only when
        the request as a whole is refused (no entries, more than 10, an unknown sender)."""

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point (e.g. ``place_order``) now, as a client would."""

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` (e.g. a client's call) ``at`` seconds after the run's start."""

    def now(self) -> float:
        """The run's clock now, in seconds since its start, as it is recorded in ``run.db``."""

    def run(self, *, until: float | None = None, progress: Callable[[BusStats], None] | None = None) -> BusStats:
        """Run what is scheduled and deliver until nothing is left to do (or the run's clock passes ``until``)."""

    def redrive(self, dead_letter_ids: Iterable[int] | None = None) -> int:
        """Send dead letters (``dead_letters.id`` of ``run.db``; all when None) back to their targets."""

    def replay(self, start: float, end: float, *, name: str = "replay", rules: Iterable[str] | None = None) -> int:
        """Replay the archived events published between ``start`` and ``end`` (run seconds); returns how many."""

    def report(self) -> dict:
        """What the run's summary adds from this backend: state writes, and its timing or orchestration facts."""

    def commit(self) -> None:
        """Bring ``db`` up to date and make it durable (as far as the store is)."""

    def close(self) -> None:
        """Release what the bus holds (a deployment is destroyed here); safe to call twice."""


@runtime_checkable
class TimingModel(Protocol):
    """The clock a local run records and the latencies it simulates: measured wall-clock
    (:class:`yafdp.backends.local.timing.MeasuredTiming`) or AWS simulated on virtual time
    (:class:`yafdp.simulation.timing.SimulatedTiming`)."""

    simulated: bool
    name: str

    def now(self, virtual: float) -> float:
        """The time to record for virtual time ``virtual`` (seconds)."""

    def admit(self, at: float, entries: int, groups: Mapping[str, tuple[int, int]] | None = None) -> float | None:
        """When a PutEvents call of ``entries`` entries first tried at virtual time ``at`` is accepted (the
        producer's retries of a throttled call included); None when the producer gives up, throttled.
        ``groups``: its entries that name an event group, ``{EventGroupId: (entries, bytes)}`` (a Custom Event
        Bus limits each group)."""

    def invoke(self, rule, at: float) -> float | None:
        """When the bus invokes ``rule``'s target for an event it accepted at virtual time ``at``; None when the
        target's retry policy gives up on the event first (dead-lettered by the rule, or dropped)."""

    def hop_delay(self, rule, rng: random.Random) -> float:
        """Virtual seconds from the bus invoking ``rule``'s target to its handler being invoked."""

    def reserve(self, service: str, virtual: float) -> tuple[float, float | None]:
        """Reserve an execution environment of ``service`` for one handler call asked for at virtual time
        ``virtual``: returns ``(start, end)``, when the call starts (at or after ``virtual``) and ends, the
        environment busy until then. The decision is final: a caller that must wait until ``start`` keeps it
        and does not ask again. ``end`` is None when nothing could be reserved (e.g. the account's concurrency
        is taken by other functions): ask again at ``start``."""

    def report(self) -> dict:
        """What the model did (cold starts, throttling, …); empty for measured time."""


@runtime_checkable
class FunctionRunner(Protocol):
    """Where a deployment's service functions run: in this process behind queue pollers (moto), or in Lambda."""

    errors: list[str]

    def start(self) -> None:
        """Start consuming the service queues."""

    def stop(self) -> None:
        """Stop consuming them; return once the batches in hand are finished."""

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point synchronously; refusals raise as the service raised them."""
