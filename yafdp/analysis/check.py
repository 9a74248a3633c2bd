"""The saga's promises, checked on any run's ``run.db`` whatever backend or faults produced it: an audit.

What should have happened is decided from the catalog, never from what ``run.db`` says about itself: the catalog
given (``yafdp check DIR --catalog CAT``), or the one the run recorded and that can be proven unchanged (its folder
as it is now agrees with ``run.db``'s record and with the run folder's own copy, ``catalog.json``; see
:mod:`yafdp.catalog.record`). A difference is a finding. Then every fact that two records hold is checked against
both: the events (the archive), the deliveries, the saga's tracker and every service's own state, so that removing
both sides of a pair still leaves a third witness. The generic invariants below come from the catalog's saga (its
start, its outcomes, its steps and compensations); a catalog adds its own in ``invariants.py`` (YAFDP's money and
loyalty points), each a function over a :class:`Run`.

Each invariant names the sagas (or events) that break it; ``yafdp check DIR`` prints them, then one summary line
(passed, failed, skipped, and what was audited against), and exits 1 on any failure. A ``run.db`` it cannot read
raises :class:`MalformedRunError`, one line naming the file and the problem. It reads every table in one read
transaction: one snapshot of the run, even while another process writes it.
"""

from __future__ import annotations

import functools
import itertools
import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yafdp.catalog import Catalog, load_catalog
from yafdp.catalog.record import Proof, compare, folder_files, prove
from yafdp.patterns import RuleSet
from yafdp.plan import build_plan
from yafdp.plan.model import DEFAULT_PREFIX
from yafdp.runs import finished
from yafdp.runs.finished import UnfinishedRunError  # noqa: F401 (what finished_only raises, named here too)
from yafdp.runtime import rundb

CENT = 0.005  # two amounts within half a cent are the same amount
BASE_TABLES, MalformedRunError = rundb.BASE_TABLES, rundb.MalformedRunError  # one check for every reader of a run


@dataclass(frozen=True)
class Invariant:
    """One promise checked on a run: whether it held, the sagas (or events) that break it, how many things were
    checked, and, when it could not be checked, why (``skipped``: a finding too, counted in the summary line)."""

    name: str
    promise: str
    passed: bool
    offenders: tuple[str, ...] = ()
    checked: int = 0
    skipped: str | None = None
    applies: bool = True  # False: skipped because it does not apply to this kind of run (a Classic bus's FIFO order)

    @property
    def verdict(self) -> str:
        """How ``yafdp check`` and the notebooks' tables label it: ``pass``, ``FAIL``, ``skip`` (it applies, but
        could not be checked) or ``n/a`` (it does not apply to this kind of run).

        >>> Invariant("fifo", "", True, skipped="a Classic bus run", applies=False).verdict
        'n/a'
        """
        if self.skipped:
            return "skip" if self.applies else "n/a"
        return "pass" if self.passed else "FAIL"


@dataclass
class Run:
    """What the invariants read: the database (with this module's own views), ``run_info``, and the catalog the
    run is audited against, with where it came from (``catalog_source``) and how far it is proven (``proof``).

    The helpers read the run's records the same way for every invariant, a row at a time (a run of a million
    events is never held in memory): :meth:`sagas` (the tracker's status of each saga), :meth:`histories` (each
    saga's events, without their details), :meth:`events_of` (the events of some detail-types, their details
    read), :meth:`announcements` and :meth:`items` (a service's own state).
    """

    path: Path
    db: sqlite3.Connection
    info: dict
    catalog: Catalog
    catalog_source: str
    proof: Proof | None = None
    code_trusted: bool = True  # the catalog's Python (its invariants.py) may run: it is proven, or given
    custom: bool = False  # a Custom Event Bus run (see _custom_bus)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def saga(self):
        """The catalog's saga vocabulary (:class:`~yafdp.catalog.saga.Saga`)."""
        return self.catalog.saga

    @functools.cached_property
    def plan(self):
        """The deployment plan of the catalog, with the run's prefix and kind of bus: its routes' names (a Classic
        bus's rules, a Custom Event Bus's subscribers) are those in ``run.db``."""
        return build_plan(self.catalog, self.info.get("prefix") or DEFAULT_PREFIX,
                          bus="custom" if self.custom else "classic")

    @property
    def fifo(self) -> frozenset[str]:
        """A Custom Event Bus run's FIFO subscribers (from the catalog)."""
        return frozenset(r.name for r in self.plan.routes if getattr(r, "fifo", False))

    def sagas(self) -> dict[str, Any]:
        """Every saga the tracker keeps, ``{saga id: status}``."""
        if "sagas" not in self._cache:
            select, parameters = rundb.saga_statuses(self.saga.tracker)
            self._cache["sagas"] = dict(self.db.execute(select + " ORDER BY key", parameters))
        return self._cache["sagas"]

    def histories(self):
        """Each saga's events in publication order, one saga at a time: ``(saga id, [(detail_type, announcement,
        replayed)])``, ``announcement`` being the unit of work that published it (``published_by``, else the event
        id: an outbox published again after a crash is one announcement) and ``replayed`` whether the archive
        replayed it. Events that name no saga are left out."""
        rows = self.db.execute("SELECT order_id, detail_type, COALESCE(published_by, event_id), replay_name IS NOT NULL"
                               " FROM events WHERE order_id IS NOT NULL ORDER BY order_id, seq")
        for saga_id, group in itertools.groupby(rows, key=lambda row: row[0]):
            yield saga_id, [(detail_type, key, replayed) for _, detail_type, key, replayed in group]

    def events_of(self, *detail_types: str):
        """The published events of ``detail_types`` (every event when none is given), one at a time in publication
        order: ``{"event_id", "saga_id", "detail_type", "source", "published_by", "replay_name", "detail"}``."""
        where = f" WHERE detail_type IN ({', '.join('?' * len(detail_types))})" if detail_types else ""
        for event_id, saga_id, detail_type, source, published_by, replay, detail in self.db.execute(
                "SELECT event_id, order_id, detail_type, source, published_by, replay_name, detail FROM events"
                f"{where} ORDER BY seq", detail_types):
            yield {"event_id": event_id, "saga_id": saga_id, "detail_type": detail_type, "source": source,
                   "published_by": published_by, "replay_name": replay, "detail": json.loads(detail)}

    def announcements(self, detail_type: str) -> Counter:
        """How many times each saga's ``detail_type`` was announced: events published again from the same outbox
        (at-least-once publication after a crash) or replayed from the archive are one announcement; any other
        event counts on its own."""
        return Counter(dict(self.db.execute(
            "SELECT order_id, COUNT(DISTINCT COALESCE(published_by, event_id)) FROM events WHERE detail_type = ?"
            " AND replay_name IS NULL AND order_id IS NOT NULL GROUP BY order_id", (detail_type,))))

    def items(self, service: str, kind: str) -> dict[str, dict]:
        """The items of one kind in a service's own state, ``{key: item}``."""
        return {key: json.loads(item) for key, item in self.db.execute(
            "SELECT key, item FROM state WHERE service = ? AND kind = ? ORDER BY key", (service, kind))}


def check_run(path: str | Path, catalog: Catalog | str | Path | None = None, *,
              finished_only: bool = False) -> list[Invariant]:
    """Check every invariant on the run in ``path`` (a run folder or its ``run.db``), all of them on one snapshot.

    ``catalog`` is what the run is audited against: a catalog object (e.g. one built in a notebook), or a folder
    (``--catalog``); by default the one the run recorded, proven unchanged (a difference is the first invariant's
    finding, "the run's catalog"). Raises :class:`~yafdp.catalog.CatalogError` when a given catalog does not load,
    :class:`MalformedRunError` when ``run.db`` cannot be read as a run. With ``finished_only`` (``yafdp check``), a
    run that has not finished raises :class:`UnfinishedRunError` instead of failing invariants it has not had the
    time to keep: one whose folder another process holds (in progress), or one stopped before its end
    (``run_info.status`` still ``running``), which says how to finish it. Without it, an unfinished run is checked
    as far as it got (a notebook looks at its run before it redrives and finishes it).

    (Run in ``tests/integration/test_documented_examples.py``: a small run places every order and ends them all.)
    """
    given = load_catalog(catalog) if isinstance(catalog, (str, Path)) else catalog  # refused first if it does not load
    if finished_only:  # first: a memory-store run in progress has no run.db until it ends
        finished.refuse_in_progress(rundb.run_db_path(path).parent, "check it")
    db, db_path = _open(path)
    try:
        db.execute("BEGIN")  # deferred: the first read below takes the snapshot that every later read sees
        info = _well_formed(db, db_path)
        if finished_only:
            finished.refuse_unfinished(db_path.parent, info, "check it")
        basis = _audited_catalog(info, db_path.parent, given)
        if basis.catalog is None:
            return [basis.finding] + [Invariant(name, "not checked", False, ("not checked: no catalog to check the "
                                                                            "run against",)) for name in INVARIANTS]
        run = Run(db_path, db, info, basis.catalog, basis.source, basis.proof, basis.code_trusted,
                  _custom_bus(db, info))
        try:
            # Looked up by name each time, so a test can switch one off and show what the suite notices.
            results = [basis.finding] + [globals()[name](run) for name in INVARIANTS]
            return _without_sagas(run, results + _catalog_invariants(run))
        except sqlite3.DatabaseError as exc:
            raise MalformedRunError(f"{db_path}: {exc}") from None
    finally:
        db.close()


def _without_sagas(run: Run, results: list[Invariant]) -> list[Invariant]:
    """``results``, unless the catalog finds no saga in the run: then no invariant held for anything, and each
    one that applies is not checked (a failure), saying why: the run placed no order, or (its events carry N
    order ids) none of its orders is a saga of the catalog it is checked against, which does not match the run.
    Every saga terminal then says why, first (``yafdp check`` ends with it)."""
    why = _no_saga(run.db, results)
    if why is None:
        return results
    return [results[0]] + [r if r.skipped else Invariant(r.name, r.promise, False, (f"not checked: {why}",), 0)
                           for r in results[1:]]


def _no_saga(db: sqlite3.Connection, results: list[Invariant]) -> str | None:
    """Why the run of ``db`` has no saga to check (every saga terminal counted none), or None when it has: it
    placed no order, or its events name orders none of which is a saga of the catalog checked against."""
    sagas = next((r for r in results if r.name == EVERY_SAGA_TERMINAL), None)
    if sagas is None or sagas.checked or not sagas.passed:
        return None
    orders = db.execute("SELECT COUNT(DISTINCT order_id) FROM events WHERE order_id IS NOT NULL").fetchone()[0]
    if not orders:
        return "the run placed no order: no saga to check"
    return (f"none of the run's {orders:,} order{'' if orders == 1 else 's'} is a saga of the catalog it is checked "
            f"against: the catalog does not match the run")


INVARIANTS = ("every_saga_terminal", "state_matches_events", "publications_have_causes",
              "every_event_reached_its_targets", "compensations_match_steps", "no_step_applied_twice",
              "every_request_accounted_for", "the_workload_is_whole", "only_the_catalogs_services",
              "fifo_subscribers_keep_publish_order", "deduplicated_publishes_stored_nothing")
DEDUPLICATION_WINDOW_SECONDS = 300  # a Custom Event Bus's deduplication window (UG "Ordering and deduplication")


def summary_line(results: list[Invariant]) -> str:
    """One line for the end of ``yafdp check``: how many invariants passed, failed and were skipped (each skip
    named: it is a finding, not a pass), those that do not apply to this kind of run, and nothing else.

    Examples
    --------
    >>> summary_line([Invariant("a", "", True), Invariant("b", "", True, skipped="no Loyalty service"),
    ...               Invariant("c", "", True, skipped="a Classic bus run", applies=False)])
    'check: 1 passed, 0 failed, 1 skipped (b: no Loyalty service), 1 not applicable (c: a Classic bus run)'
    """
    passed = sum(1 for r in results if r.passed and not r.skipped)
    failed = [r for r in results if not r.passed]
    skipped = [r for r in results if r.skipped and r.applies]
    idle = [r for r in results if r.skipped and not r.applies]
    line = f"check: {passed} passed, {len(failed)} failed, {len(skipped)} skipped"
    if skipped:
        line += " (" + "; ".join(f"{r.name}: {r.skipped}" for r in skipped) + ")"
    if idle:
        line += f", {len(idle)} not applicable (" + "; ".join(f"{r.name}: {r.skipped}" for r in idle) + ")"
    return line


# ---------------------------------------------------------------- the catalog audited against

@dataclass(frozen=True)
class _Basis:
    catalog: Catalog | None
    source: str
    finding: Invariant
    proof: Proof | None
    code_trusted: bool


CATALOG_PROMISE = ("the catalog the run is checked against is the one it ran: given, or recorded in run.db, copied "
                   "in the run folder and unchanged in its folder")


def _audited_catalog(info: dict, run_folder: Path, given: Catalog | None) -> _Basis:
    """The catalog to decide what should have happened, and the finding that says where it comes from."""
    name = "the run's catalog"
    recorded = info.get("catalog") if isinstance(info.get("catalog"), dict) else None
    if given is not None:
        given = given.without(*(recorded or {}).get("excluded", ()))
        source = f"the catalog given ({given.path}{', built in memory' if given.in_memory else ''})"
        differences = []
        if recorded is not None and isinstance(recorded.get("files"), dict):
            now = folder_files(Path(given.path))
            differences = [f"{d} (the catalog given, against run.db's record)"
                           for d in compare(recorded["files"], now or {})]
            if sorted(given.in_memory) != sorted((recorded.get("in_memory") or {})):
                differences.append("the services built in memory differ from run.db's record")
        finding = Invariant(name, f"{CATALOG_PROMISE} [{source}]", not differences, tuple(differences),
                            len((recorded or {}).get("files", {})))
        return _Basis(given, source, finding, None, True)
    proof = prove(recorded, run_folder, info.get("catalog_dir"), finished=info.get("status") == "finished")
    finding = Invariant(name, f"{CATALOG_PROMISE} [{proof.source}]", proof.proven, proof.differences,
                        len((recorded or {}).get("files", {})))
    return _Basis(proof.catalog, proof.source, finding, proof, proof.code_trusted)


def _catalog_invariants(run: Run) -> list[Invariant]:
    """The invariants the catalog declares in its ``invariants.py`` (run only when its code is proven or given)."""
    if not run.code_trusted:
        return [Invariant("the catalog's own invariants", "what the catalog's invariants.py promises", False,
                          ("not run: the catalog's Python could not be proven the run's (see the run's catalog)",))]
    hook = run.catalog.code.hook("invariants")
    return [_catalog_invariant(invariant, run) for invariant in getattr(hook, "INVARIANTS", ())]


def _catalog_invariant(invariant, run: Run) -> Invariant:
    """One invariant of the catalog's ``invariants.py`` run on ``run``; one that raises, or returns something that
    is not an :class:`Invariant`, is that invariant FAILed, naming invariants.py and what went wrong (the others
    still run: a bug in a catalog's promise is a finding, not the checker's crash)."""
    name = getattr(invariant, "__name__", repr(invariant))
    where = f"{Path(run.catalog.path) / 'invariants.py'}: {name}"
    try:
        result = invariant(run)
    except Exception as exc:  # noqa: BLE001 — the catalog's code: any error is its finding
        return Invariant(name, "what the catalog's invariants.py promises", False,
                         (f"{where} raised {type(exc).__name__}: {exc}",))
    if not isinstance(result, Invariant):
        return Invariant(name, "what the catalog's invariants.py promises", False,
                         (f"{where} returned {type(result).__name__}, not an Invariant",))
    return result


# ---------------------------------------------------------------- the generic invariants

EVERY_SAGA_TERMINAL = "every saga is terminal"  # its name: `yafdp check` fails a run of no saga by its count


def every_saga_terminal(run: Run) -> Invariant:
    sagas, saga = run.sagas(), run.saga
    bad = [f"{s} ({status})" for s, status in sagas.items() if status not in saga.terminal]
    return Invariant(EVERY_SAGA_TERMINAL, f"each saga ends in a declared outcome: {' or '.join(saga.outcomes)}",
                     not bad, tuple(bad), len(sagas))


def state_matches_events(run: Run) -> Invariant:
    """The tracker's status of each saga is the one its events lead to, and each has its start event."""
    saga, sagas = run.saga, run.sagas()
    bad, seen = [], set()
    for saga_id, history in run.histories():
        seen.add(saga_id)
        status = sagas.get(saga_id)
        if saga_id not in sagas:
            bad.append(f"{saga_id} (events for a saga its tracker has no record of)")
            continue
        published = [detail_type for detail_type, _, _ in history]
        reachable = _statuses_reached(saga, published)
        if saga.start_event not in published:
            bad.append(f"{saga_id} (no {saga.start_event} event)")
        elif status not in reachable:
            bad.append(f"{saga_id} ({status}, but its events lead to {' or '.join(sorted(reachable))}: "
                       f"{', '.join(sorted(set(published)))})")
    bad += [f"{s} (no {saga.start_event} event)" for s in sorted(set(sagas) - seen)]
    return Invariant("state matches events", f"every saga the {saga.tracker.service} service tracks has its "
                     f"{saga.start_event} event and the status its events lead to", not bad, tuple(sorted(bad)),
                     len(sagas))


def publications_have_causes(run: Run) -> Invariant:
    """Every event a handler published was caused by a delivery the run made: the rule it names is the catalog's,
    matched the causing event, may publish this event, and its delivery of the causing event succeeded. An event an
    API call published is one an entry point of the catalog (the one called, where the backend records it) emits. An event a
    schedule put on the bus (``published_by`` ``schedule#<name>``) is one an entry point of the catalog schedules."""
    routes = {r.name: r for r in run.plan.routes}
    # what each entry point of the catalog may publish (a customer's API call: the start event, a cancellation)
    called_emits = {p.name: set(p.emits) for s in run.catalog.services.values() for p in s.entrypoints}
    any_call = set().union(*called_emits.values())
    scheduled = {e for s in run.catalog.services.values() for e in s.may_schedule()}
    # the catalog rules a callback Task's timeout ran on the event the Task waited on (an orchestration's human step)
    on_timeout = set(run.info.get("callback_timeout_rules", ()))
    matched: dict[str, Any] = {}
    bad, checked = [], 0
    # Each event with its cause (the event the delivery that published it was handling), read a row at a time.
    rows = run.db.execute(
        "SELECT e.event_id, e.order_id, e.detail_type, e.published_by, e.replay_name IS NOT NULL,"
        " c.event_id, c.source, c.detail_type, c.detail,"
        " EXISTS (SELECT 1 FROM deliveries d WHERE d.outcome = 'ok' AND d.event_id = c.event_id"
        "         AND d.rule = substr(e.published_by, 1, instr(e.published_by, '#') - 1))"
        " FROM events e LEFT JOIN events c ON instr(e.published_by, '#') > 0 AND e.published_by NOT LIKE 'call#%'"
        " AND c.event_id = substr(e.published_by, instr(e.published_by, '#') + 1) ORDER BY e.seq")
    for event_id, saga_id, detail_type, by, replayed, cause_id, source, cause_type, cause_detail, delivered in rows:
        checked += 1
        who = f"{saga_id or '(no saga)'}: {detail_type} {event_id}"
        if replayed:
            continue  # replayed from the archive: the original is the announcement
        if by is None or by.startswith("call#"):  # an API call (the local bus records none: any entry point's)
            called = by.split("#")[1] if by else None
            if detail_type not in (called_emits.get(called, set()) if called else any_call):
                bad.append(f"{who} (published by no delivery, and no entry point of the catalog"
                           f"{f' named {called}' if called else ''} may publish it)")
            continue
        if by.startswith("schedule#"):  # an EventBridge Scheduler schedule put it on the bus (the saga's deadline)
            if detail_type not in scheduled:
                bad.append(f"{who} (put on the bus by {by}, but no entry point of the catalog schedules it)")
            continue
        rule_name, _, named_cause = by.partition("#")
        route = routes.get(rule_name)
        if route is None:
            bad.append(f"{who} (published by rule {rule_name}, which the catalog does not have)")
        elif cause_id is None:
            bad.append(f"{who} (caused by event {named_cause}, which is not in the archive)")
        elif not delivered:
            bad.append(f"{who} (published by {rule_name} on {cause_id}, which was never delivered there)")
        elif detail_type not in route.emits:
            bad.append(f"{who} (rule {rule_name} may not publish it: it emits {', '.join(route.emits) or 'nothing'})")
        elif route.subscription not in on_timeout and not _matches(matched, route, {"event_id": cause_id, "source": source, "detail_type": cause_type,
                                           "detail": json.loads(cause_detail)}):
            bad.append(f"{who} (rule {rule_name} does not match its cause, {cause_type} {cause_id})")
    return Invariant("publications have causes", "every event a handler published was caused by a successful "
                     "delivery of a rule of the catalog that matches its cause and may publish it",
                     not bad, tuple(bad), checked)


def every_event_reached_its_targets(run: Run) -> Invariant:
    name = "no event lost"
    promise = ("every published event reached every target whose rule (from the catalog) matched it, "
               "or is in a dead-letter queue with its reason")
    ruleset = RuleSet()
    for rule in run.plan.routes:
        ruleset.add(rule.name, dict(rule.pattern))
    done = set(run.db.execute("SELECT event_id, rule FROM deliveries WHERE outcome = 'ok'"))
    dead = {(e, r): reason for e, r, reason in run.db.execute(
        "SELECT event_id, rule, error_code || ': ' || error_message FROM dead_letters"
        " WHERE redriven_at IS NULL AND kind != 'dropped'")}  # a dropped event is lost, whatever the reason
    bad, checked, seen = [], 0, set()
    for event in run.events_of():
        seen.add(event["event_id"])
        envelope = {"id": event["event_id"], "source": event["source"], "detail-type": event["detail_type"],
                    "detail": event["detail"]}
        for rule in ruleset.matching(envelope):
            checked += 1
            if (event["event_id"], rule) in done:
                continue
            reason = dead.get((event["event_id"], rule))
            if not reason or not reason.strip(": "):
                bad.append(f"{event['saga_id'] or '(no saga)'}: {event['detail_type']} {event['event_id']} → {rule} "
                           "(neither delivered nor dead-lettered)")
    strays = sorted({e for e, _ in done} - seen)
    bad += [f"(event {e}) delivered, but not in the archive of published events" for e in strays]
    return Invariant(name, promise, not bad, tuple(bad), checked)


def compensations_match_steps(run: Run) -> Invariant:
    """Every completed compensatable step of a saga that failed (a failure event was published) is compensated
    exactly once; a saga that completed has nothing compensated; nothing is compensated that did not happen.
    Decided from the events and the catalog, not from the tracker's status. A failure event a schedule puts on the
    bus (a saga's deadline, which an entry point schedules) fails the saga only through what its handlers publish: a
    deadline that fires after the step it guards was decided changes nothing."""
    saga, catalog = run.saga, run.catalog
    compensated = {step: saga.compensation_of(step) for step, kind in saga.steps.items() if kind == "compensatable"}
    deadlines = {e for s in catalog.services.values() for e in s.may_schedule()}
    bad, sagas = [], 0
    for saga_id, history in run.histories():
        sagas += 1
        published = [detail_type for detail_type, _, _ in history]
        announced = Counter(detail_type for detail_type, _ in {(t, key) for t, key, replayed in history if not replayed})
        failures = sorted({e for e in published if e in catalog.events and catalog.events[e].kind == "failure"
                           and e not in deadlines})
        completed = bool(_statuses_reached(saga, published) & saga.completed)
        if completed and failures:
            bad.append(f"{saga_id} (completed, yet {', '.join(failures)} was published)")
        for step, compensations in compensated.items():
            done, undone = announced[step], sum(announced[c] for c in compensations)
            if completed and undone:
                bad.append(f"{saga_id} (completed, but {step} was compensated {undone} time(s))")
            elif failures and done and undone != 1:
                bad.append(f"{saga_id} ({failures[0]}: {step} happened and was compensated {undone} time(s), "
                           "not once")
            elif undone and not done:
                bad.append(f"{saga_id} ({step} compensated {undone} time(s) but it never happened)")
    return Invariant("compensations match steps", "every completed compensatable step of a saga that failed is "
                     "compensated exactly once; nothing of a completed saga is, nor what never happened",
                     not bad, tuple(bad), sagas)


def no_step_applied_twice(run: Run) -> Invariant:
    """No step or compensation is announced twice for a saga (an outbox published again is one announcement)."""
    saga = run.saga
    watched = {*saga.steps, *saga.compensations, saga.start_event}
    bad, sagas = [], 0
    for saga_id, history in run.histories():
        sagas += 1
        announced = Counter(t for t, _ in {(t, key) for t, key, replayed in history if not replayed and t in watched})
        bad += [f"{saga_id} ({n} {name} events)" for name, n in sorted(announced.items()) if n > 1]
    return Invariant("no step applied twice", "no step or compensation of a saga is announced more than once",
                     not bad, tuple(bad), sagas)


def every_request_accounted_for(run: Run) -> Invariant:
    saga = run.saga
    refused = {seq for (seq,) in run.db.execute("SELECT request FROM refusals WHERE request IS NOT NULL")}
    # Each request with the start event of the saga it names (the first, if a tampered run has more), a row at a
    # time; a merged request with the request it was merged into.
    rows = run.db.execute(
        "SELECT r.seq, r.order_id, r.request, r.same_as, m.request, m.seq,"
        " (SELECT e.detail FROM events e WHERE e.order_id = r.order_id AND e.detail_type = ? ORDER BY e.seq LIMIT 1)"
        " FROM requests r LEFT JOIN requests m ON m.seq = r.same_as ORDER BY r.seq", (saga.start_event,))
    bad, count = [], 0
    for seq, saga_id, text, same_as, merged_into, merged_seq, started in rows:
        count += 1
        who = f"request #{seq} ({saga_id or 'no saga id'})"
        if same_as is not None:
            if merged_seq is None or merged_into != text or same_as >= seq:
                bad.append(f"{who} (merged with request #{same_as}, which is not an earlier identical request)")
        elif seq not in refused:
            if started is None:
                bad.append(f"{who} (neither started nor refused)")
            elif not _as_asked(json.loads(text), json.loads(started)):
                bad.append(f"{who} (started, but its {saga.start_event} differs from the request)")
    return Invariant("every request accounted for",
                     "every request of the workload started its saga as asked, or was refused with its reason",
                     not bad, tuple(bad), count)


def the_workload_is_whole(run: Run) -> Invariant:
    """No request of the workload was removed: the requests are numbered 1..N without a gap (as a run stores them),
    and every other record of the workload agrees with the requests table: ``run_info.workload`` (its count and
    SHA-256, recorded as the run started, :func:`yafdp.runtime.rundb.workload_record`), ``run_info``'s orders
    requested (a generated workload), and for a finished run the orders its summary counts, in ``run_info.summary``
    and in ``summary.json`` (requested, placed, refused). A finished run's ``summary.json`` that is missing (its
    writer stopped after ``run.db``, or it was removed), not a JSON object, or not the summary ``run_info.summary``
    holds (the first field that differs is named: edited since) is a finding, which says that ``yafdp resume``
    writes it again from ``run.db``."""
    now = rundb.workload_record(run.db)
    count = now["requests"]
    bad = []
    expected = 1
    for (seq,) in run.db.execute("SELECT seq FROM requests ORDER BY seq"):
        if seq != expected:
            gap = f"#{expected}" if seq == expected + 1 else f"#{expected} to #{seq - 1}"
            bad.append(f"(requests) request {gap} missing: a run numbers its requests 1..N without a gap")
        expected = seq + 1 if isinstance(seq, int) else expected + 1
    recorded = run.info.get("workload")
    if isinstance(recorded, dict) and recorded != now:
        bad.append(f"(run_info.workload) the run started with {recorded.get('requests')} request(s), SHA-256 "
                   f"{str(recorded.get('sha256'))[:12]}…; run.db holds {count}, SHA-256 {now['sha256'][:12]}…")
    elif recorded is not None and not isinstance(recorded, dict):
        bad.append("(run_info.workload) not a record of the workload")
    wanted = run.info.get("orders_requested")
    if not run.info.get("orders_file") and isinstance(wanted, int) and wanted != count:
        bad.append(f"(run_info.orders_requested) run_info says {wanted} orders were requested; run.db holds "
                   f"{count} requests")
    if run.info.get("status") == "finished":
        held = {"requested": count, "placed": len(run.sagas()),
                "refused": run.db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0]}
        summaries = [("run_info.summary", run.info.get("summary"))]
        repair = f"`yafdp resume --out {run.path.parent}` writes it again from run.db"
        written, problem = finished.read_summary_file(run.path.parent / "summary.json", run.info.get("summary"))
        if problem is not None:  # a folder there: resume refuses to write over it
            bad.append(f"(summary.json) {problem}: "
                       + (f"remove it, then {repair}" if problem.startswith("a folder") else repair))
        if written is not None:
            summaries.append(("summary.json", written))
        for where, summary in summaries:
            orders = summary.get("orders") if isinstance(summary, dict) else None
            if not isinstance(orders, dict):
                bad.append(f"({where}) a finished run's summary has no orders"
                           + (f": {repair}" if where == "summary.json" else ""))
                continue
            bad += [f"({where}) {orders.get(key)} order(s) {key}; run.db holds {value}"
                    for key, value in held.items() if orders.get(key) != value]
    return Invariant("the workload is whole", "every request of the workload is in run.db, numbered without a gap, "
                     "as many and the same as the run recorded when it started and counted when it finished",
                     not bad, tuple(bad), count)


def only_the_catalogs_services(run: Run) -> Invariant:
    """Nothing in the run comes from a service the catalog does not have (e.g. one the run says it left out)."""
    services = set(run.catalog.services)
    sources = {s.source for s in run.catalog.services.values()}
    rules = {r.name for r in run.plan.routes}
    bad = [f"(state) {n} item(s) of service {s!r}, which the catalog does not have"
           for s, n in run.db.execute("SELECT service, COUNT(*) FROM state GROUP BY service") if s not in services]
    bad += [f"(events) {n} event(s) from source {s!r}, which no service of the catalog has"
            for s, n in run.db.execute("SELECT source, COUNT(*) FROM events GROUP BY source") if s not in sources]
    bad += [f"(deliveries) {n} delivery attempt(s) by rule {r!r}, which the catalog does not have"
            for r, n in run.db.execute("SELECT rule, COUNT(*) FROM deliveries GROUP BY rule") if r not in rules]
    return Invariant("only the catalog's services", "every state item, event and delivery belongs to a service "
                     "and a rule of the catalog", not bad, tuple(bad), len(services))


# ---------------------------------------------------------------- helpers for the invariants (and invariants.py)

def _statuses_reached(saga, published: list[str]) -> set[str]:
    """The statuses a tracker may hold after hearing ``published`` in any order: statuses only move forward, so
    it holds one of the highest-ranked statuses they lead to (the initial one when none leads anywhere)."""
    after = {saga.status_after[e] for e in published if e in saga.status_after}
    if not after:
        return {saga.initial_status}
    top = max(saga.ranks[s] for s in after)
    return {s for s in after if saga.ranks[s] == top}


def _matches(cache: dict, rule, event: dict) -> bool:
    compiled = cache.get(rule.name)
    if compiled is None:
        from yafdp.patterns import compile_pattern

        compiled = cache[rule.name] = compile_pattern(dict(rule.pattern))
    return compiled.matches({"id": event["event_id"], "source": event["source"],
                             "detail-type": event["detail_type"], "detail": event["detail"]})


def _as_asked(request: Any, started: dict) -> bool:
    """Whether a saga's start event says what its request asked: every field both have, with the same value
    (numbers within half a cent: an entry point may round or normalise them, and leave out what it ignores)."""
    return isinstance(request, dict) and all(_same(v, started[k]) for k, v in request.items() if k in started)


def _same(asked: Any, got: Any) -> bool:
    if isinstance(asked, bool) or isinstance(got, bool):
        return asked == got
    if isinstance(asked, (int, float)) and isinstance(got, (int, float)):
        return abs(asked - got) <= CENT
    if isinstance(asked, dict) and isinstance(got, dict):
        return all(k in got and _same(v, got[k]) for k, v in asked.items())
    if isinstance(asked, list) and isinstance(got, list):
        return len(asked) == len(got) and all(_same(a, g) for a, g in zip(asked, got))
    return asked == got


def money(amount: float, currency: str | None) -> str:
    """An amount as invariants print it: ``17.00 EUR``."""
    return f"{amount:.2f} {currency or '(no currency)'}"


def fifo_subscribers_keep_publish_order(run: Run) -> Invariant:
    name = "FIFO order per event group"
    promise = ("every FIFO subscriber of a Custom Event Bus handed each event group's (order's) events to its "
               "handler in publish order (aws:SequenceNumber), replays and redriven dead letters aside")
    if not run.custom:
        return Invariant(name, promise, True, skipped="a Classic bus run: its rules promise no order", applies=False)
    # An event a subscriber gave up on left a hole in its group (the group moved on, UG retry): redriven later,
    # it comes after its successors by design, and is left out, as replays are.
    rows = run.db.execute(
        "SELECT d.rule, e.event_group_id, e.sequence_number, e.detail_type, e.order_id FROM deliveries d"
        " JOIN events e ON e.event_id = d.event_id WHERE d.outcome = 'ok' AND COALESCE(d.delivery_type, 'LIVE') = 'LIVE'"
        " AND NOT EXISTS (SELECT 1 FROM dead_letters l WHERE l.event_id = d.event_id AND l.rule = d.rule)"
        " ORDER BY d.delivered_at, d.rowid").fetchall()
    last: dict[tuple[str, str], tuple[str, str]] = {}
    bad, checked = [], 0
    for subscriber, group, sequence, detail_type, order_id in rows:
        if subscriber not in run.fifo or group is None:
            continue
        checked += 1
        before = last.get((subscriber, group))
        if before is not None and (sequence or "") < before[0]:
            bad.append(f"{order_id or group} → {subscriber}: {detail_type} (#{int(sequence or 0)}) was handled after "
                       f"{before[1]} (#{int(before[0])}), which was published after it")
        last[(subscriber, group)] = (sequence or "", detail_type)
    return Invariant(name, promise, not bad, tuple(bad), checked)


def deduplicated_publishes_stored_nothing(run: Run) -> Invariant:
    name = "deduplication at publish"
    promise = (f"on a Custom Event Bus, no two stored events share a DeduplicationId (in one event group) within "
               f"{DEDUPLICATION_WINDOW_SECONDS} s, and every publish answered DEDUPLICATED repeats an event stored "
               f"less than {DEDUPLICATION_WINDOW_SECONDS} s before it")
    if not run.custom:
        return Invariant(name, promise, True, skipped="a Classic bus run: it does not deduplicate", applies=False)
    stored: dict[tuple, list[tuple[float, str]]] = defaultdict(list)
    for event_id, group, key, at in run.db.execute(
            "SELECT event_id, event_group_id, deduplication_id, ingested_at FROM events"
            " WHERE deduplication_id IS NOT NULL ORDER BY ingested_at"):
        stored[(group, key)].append((at, event_id))
    bad = []
    for (group, key), events in stored.items():
        for (a, first), (b, second) in zip(events, events[1:]):
            if b - a < DEDUPLICATION_WINDOW_SECONDS:
                bad.append(f"{group or '(no group)'}: events {first} and {second} share DeduplicationId {key!r} "
                           f"{b - a:.1f} s apart: the copy should have been DEDUPLICATED, not stored and delivered")
    deduplicated = run.db.execute("SELECT event_id, deduplication_id, event_group_id, ingested_at FROM deduplicated")
    count = 0
    for event_id, key, group, at in deduplicated:
        count += 1
        original = next((t for t, e in stored.get((group, key), ()) if e == event_id), None)
        if original is None or not 0 <= at - original < DEDUPLICATION_WINDOW_SECONDS:
            bad.append(f"{group or '(no group)'}: a publish answered DEDUPLICATED as a copy of {event_id}, but no "
                       f"event with DeduplicationId {key!r} was stored in the {DEDUPLICATION_WINDOW_SECONDS} s before it")
    return Invariant(name, promise, not bad, tuple(bad), count + sum(len(v) for v in stored.values()))


def _custom_bus(db, info: dict) -> bool:
    """A Custom Event Bus run: run_info says so, or its events carry the bus's sequence numbers (the evidence a
    tampered run_info cannot remove)."""
    if info.get("bus") == "custom":
        return True
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    return "sequence_number" in columns and db.execute(
        "SELECT 1 FROM events WHERE sequence_number IS NOT NULL LIMIT 1").fetchone() is not None


# ---------------------------------------------------------------- reading the run

def _open(path: str | Path) -> tuple[sqlite3.Connection, Path]:
    return rundb.open_run(path), rundb.run_db_path(path)


def _well_formed(db: sqlite3.Connection, db_path: Path) -> dict:
    """``run_info``, once ``run.db`` has every table and no value a run cannot write; this module's own views
    over them (a view stored in ``run.db`` is not trusted)."""
    def refuse(problem: str):
        raise MalformedRunError(f"{db_path}: {problem}")

    try:  # rundb.open_run has seen every table of BASE_TABLES; this first read in the transaction takes the snapshot
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        for name, select in rundb.views():
            db.execute(f"CREATE TEMP VIEW {name} AS {select}")
        bad = db.execute("SELECT key FROM run_info WHERE NOT json_valid(value) LIMIT 1").fetchone()
        if bad:
            refuse(f"run_info {bad[0]!r} is not JSON")
        info = rundb.get_info(db)
        if not info:
            refuse("run_info is empty: the run was stopped before it started")
        bad = db.execute("SELECT service, kind, key FROM state WHERE NOT json_valid(item) LIMIT 1").fetchone()
        if bad:
            refuse(f"the {bad[0]} service's item {bad[1]} {bad[2]!r} is not JSON")
        bad = db.execute("SELECT event_id FROM events WHERE NOT json_valid(detail) LIMIT 1").fetchone()
        if bad:
            refuse(f"event {bad[0]}'s detail is not JSON")
        numeric = "typeof({0}) IN ('integer', 'real')"
        for what, query in (
            ("order {0} has no status or no numeric amount",
             f"SELECT order_id FROM orders WHERE status IS NULL OR NOT {numeric.format('amount')}"),
            ("the ledger has a row for order {0} without kind charge/refund, order or numeric amount",
             f"SELECT order_id FROM ledger WHERE order_id IS NULL OR kind NOT IN ('charge', 'refund')"
             f" OR kind IS NULL OR NOT {numeric.format('amount')}"),
            ("a loyalty entry of order {0} has no whole number of points",
             "SELECT order_id FROM loyalty WHERE order_id IS NULL OR typeof(points) != 'integer'"),
            ("request #{0} has no JSON request", "SELECT seq FROM requests WHERE NOT json_valid(request)"),
        ):
            row = db.execute(query + " LIMIT 1").fetchone()
            if row:
                refuse(what.format(row[0]))
    except sqlite3.DatabaseError as exc:
        refuse(str(exc))
    return info
