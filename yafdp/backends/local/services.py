"""The services of a plan in this process: their state in ``run.db``, units of work, API calls, and the record of
every event they publish. The local bus and the local Step Functions runner both compose one."""

from __future__ import annotations

import gc
import random
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from yafdp.catalog import Catalog
from yafdp.plan import DeploymentPlan
from yafdp.runtime.envelope import CLOCK_ORIGIN, PublishError, make_envelope
from yafdp.runtime.interfaces import BusStats, TimingModel
from yafdp.runtime.envelope import max_entry_bytes
from yafdp.runtime.faults import injected_failure
from yafdp.runtime.publishing import (FUNCTION_ERROR, PUBLISH_ATTEMPTS, PUBLISH_BACKOFF_SECONDS, RETRYABLE_ENTRY_ERRORS,
                                     THROTTLING, DeliveryError, EntryRefusal, PreparedEntry, check_entry, check_outbox,
                                     put_events_response)
from yafdp.runtime.scheduling import ScheduleCalls
from yafdp.runtime.unit_of_work import BufferedUnitOfWork, Envelope

from yafdp.backends.local.eventbridge_scheduler import LocalScheduler, SchedulerApiError
from yafdp.backends.local.run_writer import RunWriter, SqliteServiceState
from yafdp.backends.local.scheduler import Scheduler

# Answers an injected PutEvents fault gives: the code EventBridge would put in the entry's result.
_INJECTED_MESSAGES = {"ThrottlingException": "Rate exceeded (injected)",
                      "InternalFailure": "The request processing has failed (injected)"}

_V7 = (0x7 << 76) | (0b10 << 62)  # version 7, RFC 9562 variant
_NOT_VERSION_OR_VARIANT = ~((0xF << 76) | (0b11 << 62))


class Handled(NamedTuple):
    """What a handler call came to (:meth:`LocalServices.handle`): ``outcome`` ``"ok"``, ``"duplicate"`` (the
    delivery was processed before) or ``"failed"`` (with the ``code`` and ``message`` Lambda would report);
    ``prepared``, the events it publishes once ``ok``; ``waited``, the virtual seconds its producer's retries of
    refused entries took; ``accepted``, the virtual time the bus accepted its PutEvents when the caller said when
    it is tried (see :meth:`LocalServices.handle`), else None."""

    outcome: str
    code: str | None = None
    message: str | None = None
    prepared: tuple = ()
    waited: float = 0.0
    accepted: float | None = None


class LocalServices:
    """The plan's services over one run database: what both local backends run handlers and record events with.

    Parameters
    ----------
    catalog, plan, world
        what runs: events and schemas, services, the marketplace data.
    writer
        the run database's buffered writer (state, events, trace).
    timing, scheduler
        the run's clock: virtual time and how it is recorded.
    seed, session
        event ids derive from them; a resumed run is the next session and never reissues an id.
    epoch
        the wall-clock date (epoch seconds) the run's clock starts at, for envelope ``time``.
    entry_faults
        ``entry_faults(entry, attempt) -> ErrorCode or None``: PutEvents failures to inject, per entry and
        attempt (1-based), e.g. a ``ThrottlingException`` on the first try of one entry.
    groups_of
        given by a bus whose limits are per event group (the Custom Event Bus): ``groups_of(prepared)`` says how
        a PutEvents request's entries fall into event groups, ``{EventGroupId: (entries, bytes)}``, for the
        timing model (:meth:`admitted`).
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world: Any, writer: RunWriter,
                 timing: TimingModel, scheduler: Scheduler, *, seed: int = 0, session: int = 0,
                 epoch: float = CLOCK_ORIGIN, entry_faults=None,
                 groups_of: Callable[[list[PreparedEntry]], Mapping[str, tuple[int, int]]] | None = None):
        self.catalog, self.plan, self.world, self.writer = catalog, plan, world, writer
        self._saga = catalog.saga  # every unit of work carries it, every event is recorded with its saga id
        self.entry_faults = entry_faults
        self.groups_of = groups_of
        self._backoff = random.Random(f"{seed}:{session}:publish-backoff")
        self.timing, self.scheduler, self.epoch = timing, scheduler, epoch
        self.stats = BusStats()
        self.states = {s.name: SqliteServiceState(writer, s.name) for s in plan.services}
        self._ids = random.Random(f"{seed}:{session}:ids")
        self._published_ids = session << 40  # a resumed session's ids sort after, and never meet, the first's
        self._entrypoints: dict[tuple[str, str], tuple[frozenset, Callable]] = {}  # (emits, function), once each
        self.schedules: LocalScheduler | None = None  # EventBridge Scheduler, once a bus says how its events are put
        self._checked: tuple[BufferedUnitOfWork, list[tuple[str, dict]]] | None = None  # see check_schedules
        self._schedule_calls: dict[str, ScheduleCalls] = {}  # by service, made at its first schedule request

    def use_scheduler(self, put: Callable[[str, PreparedEntry], None]) -> LocalScheduler:
        """Run the services' schedules on this run's clock (:class:`LocalScheduler`): when one is due,
        ``put(schedule_name, entry)`` puts its event, checked as the scheduler role's PutEvents is, on the bus."""
        plan = self.plan

        def checked(name: str, source: str, detail_type: str, detail_text: str) -> PreparedEntry:
            """The schedule ``name``'s event as the bus takes it, or :class:`DeliveryError` saying why it refuses it."""
            sender = next((s.name for s in self.catalog.services.values() if s.source == source), None)
            if sender is None:
                raise DeliveryError("NotAuthorizedForSourceException", f"the schedule {name}'s event was refused: "
                                    f"no service of the catalog has the source {source!r}")
            entry = check_entry(self.catalog, sender, self.catalog.services[sender].may_schedule(),
                                {"Source": source, "DetailType": detail_type, "Detail": detail_text}, max_entry_bytes())
            if isinstance(entry, EntryRefusal):
                raise DeliveryError(entry.code, f"the schedule {name}'s event was refused: {entry.message}")
            return entry

        def due(name: str, source: str, detail_type: str, detail_text: str) -> None:
            put(name, checked(name, source, detail_type, detail_text))

        functions = {plan.function_arn(s.name): self.catalog.services[s.name].source for s in plan.services}
        self.schedules = LocalScheduler(self.scheduler, self.epoch, due, bus=plan.bus_arn(), functions=functions,
                                        region=plan.region, account=plan.account, partition=plan.partition,
                                        store=self.writer.db if self.writer.durable else None, check=checked)
        return self.schedules

    def check_schedules(self, service: str, uow: BufferedUnitOfWork) -> list[tuple[str, dict]]:
        """The Scheduler calls a unit of work's schedule requests make (:func:`~yafdp.runtime.scheduling.schedule_calls`,
        at the run's virtual time). Raises :class:`DeliveryError` for a request the service may not make."""
        if not uow.schedules:
            return []
        making = self._schedule_calls.get(service)
        if making is None:
            making = self._schedule_calls[service] = ScheduleCalls(self.catalog, self.plan, service)
        calls = making.calls(uow.schedules, self.epoch + self.scheduler.vt)
        self._checked = (uow, calls)  # what apply() makes, once the unit of work is kept
        return calls

    def now(self) -> float:
        """The run's clock now, as it is recorded (wall-clock, or virtual under a latency model)."""
        return self.timing.now(self.scheduler.vt)

    def unit_of_work(self, service: str) -> BufferedUnitOfWork:
        """A fresh unit of work over ``service``'s state."""
        return BufferedUnitOfWork(service, self.states[service], self.world, self.now, self._saga)

    def call(self, service: str, entrypoint: str, payload,
             vt: float) -> tuple[object, BufferedUnitOfWork, list[tuple], float]:
        """Run an API entry point at virtual time ``vt``; returns its result, its unit of work, the events it may
        publish, checked, and when the bus accepts their PutEvents (:meth:`admitted`); the caller applies the
        unit of work and publishes.

        Raises what the entry point raised (e.g. ``OrderRejectedError``), :class:`PublishError` when it
        wants to publish something it may not, or when a simulated bus throttles its PutEvents past the client's
        retries, or :class:`LookupError` for an unknown entry point; each counts as a refusal and nothing is
        stored or published.
        """
        known = self._entrypoints.get((service, entrypoint))
        if known is None:
            known = self._entrypoints[(service, entrypoint)] = (
                frozenset(self.catalog.entrypoint(service, entrypoint).emits), self.catalog.handler(service, entrypoint))
        emits, function = known
        uow = self.unit_of_work(service)
        try:
            result = function(payload, uow)
            prepared = check_outbox(self.catalog, service, emits, uow.outbox)
            if uow.schedules:
                self.check_schedules(service, uow)
            accepted = self.admitted(prepared, vt)
        except DeliveryError as exc:
            self.stats.refused += 1
            raise PublishError(str(exc)) from None
        except Exception:
            self.stats.refused += 1
            raise
        return result, uow, prepared, accepted

    def handle(self, route, envelope: Envelope, attempt: int, fault: str, again: bool,
               at: float | None = None) -> Handled:
        """Run ``route``'s handler (``route.name``, ``route.service``, ``route.handler``, ``route.emits``) on one
        delivery of ``envelope``, its ``attempt``-th, with the injected ``fault``; ``again`` when the delivery may
        repeat an earlier one (a duplicate, replay, redrive or resume), so that a processed one is recognised.
        On ``ok`` the unit of work is applied and the delivery recorded as processed; publishing what it
        prepared is the bus's (each kind of bus publishes its own way). Every bus runs handlers through here.

        With ``at`` (the virtual time the handler ends and first tries its PutEvents), the bus's admission of that
        request is decided here, before anything is applied (:meth:`admitted`, ``Handled.accepted``): a request a
        simulated account throttles past the producer's retries fails the delivery (``ThrottlingException``), and
        nothing of it is stored, as when the function fails."""
        event_id = envelope["id"]
        if again and self.writer.is_processed(route.name, event_id):
            self.stats.duplicates += 1
            return Handled("duplicate")
        service = route.service
        uow = self.unit_of_work(service)
        waited = 0.0
        try:
            route.handler(envelope, uow)
            if fault:
                crash = injected_failure(fault, attempt)
                if crash is not None:
                    raise crash
            prepared = check_outbox(self.catalog, service, route.emits, uow.outbox) if uow.outbox else ()
            if uow.schedules:
                self.check_schedules(service, uow)
            if prepared and self.entry_faults is not None:
                waited = self.publish_retrying(prepared)  # the producer's retries of refused entries
            accepted = self.admitted(prepared, at + waited) if prepared and at is not None else None
        except DeliveryError as exc:
            return Handled("failed", exc.code, exc.message)
        except Exception as exc:  # the handler's own exception: the function fails (Lambda's FunctionError)
            return Handled("failed", FUNCTION_ERROR, f"{type(exc).__name__}: {exc}")
        if uow.writes or uow.schedules:
            self.apply(service, uow)
        self.writer.processed.add((route.name, event_id))
        self.stats.delivered += 1
        return Handled("ok", None, None, tuple(prepared), waited, accepted)

    def apply(self, service: str, uow: BufferedUnitOfWork) -> None:
        """Write what a unit of work changed into the open transaction, and make its schedule requests (a schedule
        already there is not created again, one already gone is not deleted again: the requests are idempotent)."""
        self.writer.put_state(service, uow.writes)
        if uow.schedules and self.schedules is not None:
            checked, self._checked = self._checked, None
            # the calls its check made (call() and handle() check a unit of work just before applying it)
            calls = checked[1] if checked is not None and checked[0] is uow else self.check_schedules(service, uow)
            for call, request in calls:
                try:  # the saga's own requests (ScheduleCalls'), whose shape is CreateSchedule's: see add_schedule
                    if call == "create_schedule":
                        self.schedules.add_schedule(request)
                    else:
                        self.schedules.delete_schedule(**request)
                except SchedulerApiError as exc:
                    if exc.code not in ("ConflictException", "ResourceNotFoundException"):
                        raise

    def injected(self, prepared: list[PreparedEntry], attempt: int) -> list[EntryRefusal | None]:
        """What PutEvents answers for each entry on ``attempt`` (1-based) under :attr:`entry_faults`: None
        (accepted) or the injected refusal."""
        if self.entry_faults is None:
            return [None] * len(prepared)
        answers = []
        for entry in prepared:
            code = self.entry_faults(entry, attempt)
            answers.append(None if code is None else EntryRefusal(code, _INJECTED_MESSAGES.get(code, "injected")))
        return answers

    def publish_retrying(self, prepared: list[PreparedEntry]) -> float:
        """A producer's PutEvents of ``prepared``: entries refused with a retryable code are sent again with
        backoff, up to :data:`PUBLISH_ATTEMPTS` tries. Returns the virtual seconds the retries took.

        Raises :class:`DeliveryError` (the entry's code) when an entry is still refused: the caller fails its
        delivery and publishes nothing of it, so the delivery's retry publishes it all again (on AWS the outbox
        keeps what was not published, and the redelivery publishes it: the same events reach the bus).
        """
        waited, pending = 0.0, list(prepared)
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            answers = self.injected(pending, attempt)
            failed = [(e, a) for e, a in zip(pending, answers) if a is not None]
            if not failed:
                return waited
            final = [a for _, a in failed if a.code not in RETRYABLE_ENTRY_ERRORS]
            if final or attempt == PUBLISH_ATTEMPTS:
                refusal = (final or [failed[0][1]])[0]
                raise DeliveryError(refusal.code, f"PutEvents refused {len(failed)} of {len(pending)} entries "
                                    f"after {attempt} tries: {refusal.message}")
            waited += self._backoff.uniform(0, PUBLISH_BACKOFF_SECONDS * 2 ** (attempt - 1))
            pending = [e for e, _ in failed]
        return waited

    def admitted(self, prepared: list[PreparedEntry], vt: float) -> float:
        """When the bus accepts the PutEvents call that publishes ``prepared``, first tried at virtual time ``vt``
        (a simulated bus may throttle it: the Classic bus's account quota, a Custom Event Bus's limits per event
        group and per bus, which the bus's ``groups_of(prepared)`` tells the timing model about; the producer's
        retries are the timing model's).

        Raises :class:`DeliveryError` (``ThrottlingException``) when the producer gives up, throttled: nothing
        of it is published."""
        if not prepared:
            return vt
        groups_of = self.groups_of
        at = self.timing.admit(vt, len(prepared)) if groups_of is None else \
            self.timing.admit(vt, len(prepared), groups_of(prepared))
        if at is None:
            raise DeliveryError(THROTTLING, f"PutEvents throttled: the request was refused {PUBLISH_ATTEMPTS} times "
                                "(the bus's PutEvents limits)")
        return at

    def put_events(self, checked: list, published_vt: float,
                   on_event: Callable[[Envelope, float], None] | None = None) -> dict:
        """Answer a PutEvents request whose entries :func:`~yafdp.runtime.publishing.prepare_put_events` checked:
        the accepted entries (less any :attr:`entry_faults` refuses, and all of them when a simulated account
        throttles the request past the producer's retries) are recorded as published; returns
        ``{"FailedEntryCount", "Entries"}`` in request order. Refused entries count in ``stats.refused``."""
        accepted = [c for c in checked if isinstance(c, PreparedEntry)]
        injected = iter(self.injected(accepted, 1))
        results = [c if isinstance(c, EntryRefusal) else (next(injected) or c) for c in checked]
        publishing = [r for r in results if isinstance(r, PreparedEntry)]
        try:
            published_vt = self.admitted(publishing, published_vt)
        except DeliveryError as exc:
            throttled = EntryRefusal(exc.code, exc.message)
            results = [throttled if isinstance(r, PreparedEntry) else r for r in results]
            publishing = []
        published = iter(self.record(publishing, published_vt, on_event=on_event))
        response = put_events_response([r if isinstance(r, EntryRefusal) else next(published) for r in results])
        self.stats.refused += response["FailedEntryCount"]
        return response

    def record(self, prepared: list[PreparedEntry], published_vt: float, replay_name: str | None = None,
               on_event: Callable[[Envelope, float], None] | None = None,
               published_by: str | None = None) -> list[str]:
        """Record prepared entries as published by one PutEvents call the bus accepted at virtual time
        ``published_vt`` (see :meth:`admitted`); ``on_event(envelope, published_vt)`` sees each event;
        ``published_by`` names the unit of work that published them (``rule#event_id`` of a delivery).
        Returns the new event ids."""
        published_at = self.timing.now(published_vt)
        ids = []
        id_field, add_event = self._saga.id_field, self.writer.add_event
        for source, detail_type, detail, text, time, resources in prepared:
            event_id = self._new_event_id()
            envelope = make_envelope(event_id, source, detail_type, detail,
                                     self.epoch + published_at if time is None else time, resources=resources)
            # the event's saga id (Saga.saga_id), inline as every event asks: a prepared entry's detail is a dict
            saga_id = detail.get(id_field)
            add_event((event_id, saga_id if isinstance(saga_id, str) else None, detail_type, source, published_at,
                       text, envelope["time"], replay_name, published_by))
            self.stats.published += 1
            if on_event is not None:
                on_event(envelope, published_vt)
            ids.append(event_id)
        return ids

    def _new_event_id(self) -> str:
        """A UUID in version 7's layout: a 48-bit counter of this run's events where v7 has milliseconds,
        then random bits. Ids sort in publication order, so the run database's indexes grow at one end."""
        self._published_ids += 1
        h = "%032x" % ((self._published_ids << 80) | (self._ids.getrandbits(80) & _NOT_VERSION_OR_VARIANT) | _V7)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"  # str(uuid.UUID(int=...)), without building one

    def commit(self) -> None:
        """Write everything buffered and commit: what a reader of ``run.db`` then sees."""
        self.writer.flush()
        db = self.writer.db
        db.execute("COMMIT")
        db.execute("BEGIN")


class InProcessDriving:
    """What the two in-process backends (the bus and the Step Functions runner) drive the same way: the run's
    clock and its run loop, over the :class:`~yafdp.backends.local.scheduler.Scheduler` and the
    :class:`LocalServices` each composes (``self.scheduler``, ``self.services``, ``self.stats``,
    ``self.commit_every`` and ``self.commit()``)."""

    scheduler: Scheduler
    services: LocalServices
    stats: BusStats
    commit_every: int
    # How many more objects than it freed the run may allocate (gc.get_count()[0]) before a commit collects the
    # young generations: see run().
    young_objects_bound = 100_000

    def schedule(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` (e.g. a client's call) when the virtual clock reaches ``at`` seconds."""
        self.scheduler.schedule(at, action)

    def schedule_all(self, actions: Iterable[tuple[float, Callable[[], object]]]) -> None:
        """Run each ``(at, action)`` when the virtual clock reaches ``at``, taken one at a time in time order."""
        self.scheduler.schedule_all(actions)

    def now(self) -> float:
        """The run's clock now, as it is recorded (wall-clock, or virtual under a latency model)."""
        return self.services.now()

    @property
    def vt(self) -> float:
        """The virtual clock (seconds since the run started)."""
        return self.scheduler.vt

    def run(self, *, until: float | None = None, progress: Callable[[BusStats], None] | None = None) -> BusStats:
        """Run what is due until nothing is left to do (or the virtual clock passes ``until``), committing every
        ``commit_every`` steps and at the end; ``progress(stats)`` hears each commit."""
        bound = self.young_objects_bound

        def tick() -> None:
            self.commit()
            if gc.get_count()[0] > bound:
                gc.collect(1)
            if progress is not None:
                progress(self.stats)
        # Python's cyclic garbage collector would scan every live object (the queue of deliveries waiting,
        # hundreds of thousands under a latency model) again and again as the run allocates: a quarter of the
        # run's time. The run collects the young generations itself, at a commit, once it has allocated
        # young_objects_bound objects more than it freed since the last collection: what a delivery allocates is
        # freed by reference counting unless a reference cycle holds it, so a run whose handlers make no cycles (the
        # shipped catalog's make none) seldom gets there (its young objects are the deliveries in flight), and one
        # that makes them holds at most about that many garbage objects. Collecting at every commit scanned the
        # deliveries in flight each time to find nothing (3.5% of a 20,000-order run's CPU). After the run the
        # collector is enabled again as it was.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self.scheduler.run(until, self.commit_every, tick)
            tick()
        finally:
            if collecting:
                gc.enable()
        return self.stats
