"""A run of the saga, on any backend: start it (everything checked first, the run folder locked, the workload
stored, the bus wired by :mod:`yafdp.runs.bootstrap`), run it, finish it (``run.db`` and ``summary.json``),
or resume a file-store run that was stopped.

A run folder follows :mod:`yafdp.runs.folder`'s rules: nothing in it is touched until the catalog, the
marketplace, the workload and every option are checked; one process writes it at a time; the files a run
leaves replace the old ones whole.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from yafdp.backends.local.timing import MeasuredTiming
from yafdp.catalog import Catalog, load_catalog
from yafdp.catalog import record as catalog_record
from yafdp.errors import BackendError, RequestRefusedError, RunFolderError
from yafdp.quoting import excerpt
from yafdp.plan import build_plan
from yafdp.progress import progress_bar
from yafdp.runtime import json_text, rundb
from yafdp.runtime.envelope import PublishError
from yafdp.runtime.faults import Faults
from yafdp.runtime.interfaces import Bus
from yafdp.runtime.rundb import INSERT_REFUSAL, INSERT_REQUEST
from yafdp.runs import earlier, finished, folder
from yafdp.runs.bootstrap import open_bus, open_local, refuse_unsupported
from yafdp.runs.options import RunOptions
from yafdp.runs.workload import outcome_rates, workload

# What a resumed run's summary never counts as possibly changed by the resume: its workload's orders, and the
# facts of its sessions themselves.
SESSION_FACTS = ("orders", "wall_seconds", "deliveries_per_second", "sessions", "resumed_deliveries",
                 "resumed_requests", "may_differ_after_resume")
_LOCKS: dict[Path, folder.FolderLock] = {}  # run folder -> its lock, held from start_saga to finish
_COPIES: dict[Path, str] = {}  # run folder -> the copy of its catalog made when it started, written by finish


class StuckSagasError(BackendError):
    """A run that ended with sagas not in a terminal outcome (a poison event in a dead-letter queue, a rule that
    matches nothing): ``run.db`` and ``summary.json`` were written, and ``summary`` is the run's summary."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


def run_saga(options: RunOptions, progress: bool | None = None,
             on_start: Callable[[Bus], None] | None = None) -> dict:
    """Run the workload on ``options.backend``; return the summary (also written to ``summary.json``).
    ``on_start(bus)`` is called with the bus before it runs (e.g. to attach a recorder).

    ``progress``: a bar of the orders that reached their end, out of those requested, with the time left
    (:func:`yafdp.progress.progress_bar`): True shows it, False never, None where someone watches (a terminal, a
    notebook in JupyterLab; not papermill or a CI log).

    A run that does not settle (a deployment whose orders are not all terminal in time) still writes
    ``run.db`` as far as it got, then raises :class:`~yafdp.errors.BackendError` saying which orders are stuck;
    one that ends (the local bus has nothing left to deliver) with sagas not in a terminal outcome raises
    :class:`StuckSagasError` once its files are written, naming how many, in which status, and the first ids.

    (Run in ``tests/integration/test_documented_examples.py``: a small run places every order and ends them all.)
    """
    bus = start_saga(options)
    try:
        if on_start is not None:
            on_start(bus)
        started = time.perf_counter()
        with _saying_what_was_kept(bus, options), _OrdersEnded(bus, progress) as bar:
            try:
                bus.run(progress=_keeping_time(bus, bar.update, started))
            except BackendError:  # the evidence of a run that did not settle is kept
                finish(bus, options, Path(options.out), time.perf_counter() - started)
                raise
            stuck = stuck_sagas(bus.db, bus.catalog)
            summary = finish(bus, options, Path(options.out), time.perf_counter() - started)
            _refuse_stuck(stuck, summary, Path(options.out))
            return summary
    finally:
        _close(bus, options.out)


def stuck_sagas(db, catalog: Catalog) -> str | None:
    """The sagas of the run in ``db`` that are not in a terminal outcome, in one line (None when there is none)."""
    select, parameters = rundb.saga_statuses(catalog.saga.tracker)
    return catalog.saga.stuck(dict(db.execute(select, parameters)))


def _refuse_stuck(stuck: str | None, summary: dict, out: Path) -> None:
    if stuck is not None:
        raise StuckSagasError(f"the run ended with sagas stuck: {stuck}; {out / 'run.db'} and "
                              f"{out / 'summary.json'} hold it (`yafdp check {out}` says where each stopped)", summary)


def start_saga(options: RunOptions) -> Bus:
    """A bus with the run's database opened and its workload stored and scheduled, not yet run: call
    ``bus.run()``, inspect or redrive as you like, then :func:`finish`. :func:`run_saga` does all three.

    Everything is checked before the run folder is touched: the catalog (its handlers too), the marketplace,
    the workload (an orders file is read whole), the options and what the backend can do. Then the folder is
    locked until :func:`finish`; a folder that holds a run is refused unless ``options.overwrite``.
    """
    catalog = (options.catalog or load_catalog(options.catalog_dir)).without(*options.exclude_services)
    catalog.code.check()  # every handler written and importable: one line for each that is not
    if options.bus is None and options.style == "choreography":  # the catalog's kind of bus, recorded as the run's
        options = replace(options, bus=catalog.bus.kind)
    build_plan(catalog, bus=options.bus)  # what the bus would refuse (a subscriber's settings), before the folder
    world = catalog.code.world()
    timing = refuse_unsupported(options, bus_kind=options.bus or catalog.bus.kind)
    rates = outcome_rates(catalog, options.rates)
    requests = workload(catalog, world, orders=options.orders, seed=options.seed, rates=rates,
                        arrival_rate=options.arrival_rate, orders_file=options.orders_file)
    first = next(requests, None)  # a generated workload's checks run on its first order
    out = folder.check_out(Path(options.out))
    if folder.holds_run(out) and not options.overwrite:  # refused before the folder is locked (or made)
        folder.refuse_existing(out)
    untouched = f"interrupted before the run started: {out} holds what it held before"
    with _interrupted(untouched):
        lock = folder.FolderLock(out, "yafdp run").acquire()
    bus = None
    try:
        with _interrupted(untouched):
            earlier.recover(out)  # a replacing run killed as it set the earlier run aside, or put it back
            if folder.holds_run(out) and not options.overwrite:  # one may have been saved there meanwhile
                folder.refuse_existing(out)
            recorded = catalog_record.record(catalog, options.exclude_services)
            copied = catalog_record.copy(catalog, recorded)
            info = {**options.describe(), "rates": rates, "catalog": recorded, "status": "running",
                    "services": list(catalog.services),
                    "sources": {s.source: s.name for s in catalog.services.values()}}
            stored = _chain(first, requests)
            if options.store == "file":
                db = _new_file_store(out, info, {r.name: dict(r.pattern) for r in build_plan(catalog, bus=options.bus).routes},
                                     stored, copied)
            else:
                db = rundb.connect(None)
                _store_start(db, info, None, stored)
        with _interrupted(untouched if options.store != "file" else
                          f"interrupted as the run started: {out / 'run.db'} holds its workload, no order placed "
                          f"yet; `yafdp resume --out {out}` runs it"):
            bus = open_bus(options, catalog, world, db, timing=timing)
            if options.store != "file":  # the file store has them from the start; a deployment's are prefixed
                _record_rules(db, {r.name: dict(r.pattern) for r in bus.plan.routes})
            bus.commit()  # what the run is, durably, before the first order: a stopped run can always be resumed
            _schedule_requests(bus)
    except BaseException:
        try:
            if bus is not None:
                bus.close()  # a deployment is destroyed
        finally:
            lock.release(undo=True)  # the lock file and folders it made go (a folder holding run.db stays)
        raise
    _LOCKS[out.resolve()] = lock
    if options.store != "file":  # the file store wrote it with run.db; the memory store writes it with run.db
        _COPIES[out.resolve()] = copied
    return bus


def resume_saga(out: Path, progress: bool | None = None) -> dict:
    """Finish a file-store run that was stopped (even by SIGKILL): the orders it had not placed yet are placed,
    and every order it had placed is carried to its end from the durable delivery queue. The summary then
    describes the whole run. A finished run is left as it is: its summary is returned with ``already_finished``
    and ``repaired`` ({file name: what was done}): a ``summary.json`` missing or not a JSON object is written
    again from ``run.db``, a ``catalog.json`` likewise from the catalog folder once proven the run's (else it is
    in ``unrepaired``, with why); otherwise
    the folder holds the same files as before (the database is read so that SQLite leaves no ``-wal`` or ``-shm``).

    ``progress`` as for :func:`run_saga` (the orders that ended before the resume count from the start).

    Raises :class:`~yafdp.errors.RunFolderError` when ``out`` holds no run that can be resumed.
    """
    out = folder.check_out(Path(out))
    db_path = out / "run.db"
    if not db_path.exists() and not earlier.kept(out):
        raise RunFolderError(f"no run database at {db_path}: nothing to resume")
    lock = folder.FolderLock(out, "yafdp resume").acquire()
    try:
        recovered = earlier.recover(out)  # a replacing run killed as it set the earlier run aside, or put it back
        if not db_path.exists():
            raise RunFolderError(f"no run database at {db_path}: nothing to resume")
        info = _read_info(db_path)
        if info.get("style", "choreography") != "choreography":
            raise RunFolderError(f"{db_path} is from an orchestrated run; only the choreography's durable bus can be resumed")
        if info.get("status") == "finished" and isinstance(info.get("summary"), dict):  # any store
            repaired, unrepaired = {}, {}
            if earlier.settle(out, placed=not earlier.placed_nothing(info["summary"])):
                # a kill between the run's last commit and its settle: the finished run placed no order
                recovered = ("the run there had placed no order (it was stopped before it put the earlier run "
                             "back): the earlier run is put back")
                info = _read_info(db_path)
                if info.get("status") != "finished" or not isinstance(info.get("summary"), dict):
                    raise RunFolderError(f"the run in {out} placed no order: the earlier run it was to replace is "
                                         f"put back, and it is unfinished: `yafdp resume --out {out}` finishes it")
            if recovered:
                repaired[earlier.EARLIER] = recovered
            _, broken = finished.read_summary_file(out / "summary.json", info["summary"])
            if broken:  # stopped between its files, or damaged since: the summary is in run.db
                folder.write_atomically(out / "summary.json", json.dumps(info["summary"], indent=2) + "\n")
                repaired["summary.json"] = f"{broken}: written again from run.db"
            _rewrite_missing_copy(info, out, repaired, unrepaired)
            lock.release(undo=True)
            return {**info["summary"], "already_finished": True, "repaired": repaired, "unrepaired": unrepaired}
        if info.get("store") != "file":
            raise RunFolderError(f"{db_path} is from a {info.get('store')!r} store run; only file-store runs can be resumed")
        options = RunOptions(orders=info["orders_requested"] or 0, seed=info["seed"], out=out, store="file",
                             rates=info["rates"], faults=Faults(**info["faults"]),
                             arrival_rate=info["arrival_rate"], catalog_dir=info.get("catalog_dir"),
                             exclude_services=tuple(info.get("exclude_services", ())),
                             orders_file=info.get("orders_file"),
                             latency_model=info.get("latency_model", "none"), quota_scale=info.get("quota_scale", 1.0),
                             bus=info.get("bus"))
        catalog = _recorded_catalog(info, out)  # the catalog the run started with, or refused naming what changed
        catalog.code.check()
        world = catalog.code.world()
        db = rundb.connect(db_path)
        session = info.get("session", 0) + 1
        last = db.execute("SELECT MAX(t) FROM (SELECT MAX(published_at) AS t FROM events"
                          " UNION ALL SELECT MAX(finished_at) FROM deliveries)").fetchone()[0] or 0.0
        # A simulated run resumes on its virtual clock (the queue's due times); a measured one continues the wall clock.
        timing = MeasuredTiming(offset=last) if options.latency_model == "none" else None
        bus = open_local(options, catalog, world, db, timing=timing, session=session)
        # Only now, with everything checked and the bus open, is the resume recorded: a refused one writes nothing.
        rundb.set_info(db, session=session, status="resuming", wall_seconds_before=info.get("wall_seconds", 0.0),
                       **{rundb.COUNTS_BEFORE: rundb.add_counts(info.get(rundb.COUNTS_BEFORE, {}),
                                                                 info.get(rundb.SESSION_COUNTS, {})),
                          rundb.SESSION_COUNTS: {}})
    except BaseException:
        lock.release(undo=True)  # refused: the folder is as it was
        raise
    _LOCKS[out.resolve()] = lock
    try:
        with _saying_what_was_kept(bus, options), _OrdersEnded(bus, progress) as bar:
            pending = bus.resume()
            unsent = _schedule_requests(bus)
            started = time.perf_counter()
            bus.run(progress=_keeping_time(bus, bar.update, started))
            stuck = stuck_sagas(bus.db, bus.catalog)
            summary = finish(bus, options, out, time.perf_counter() - started,
                             extra={"resumed_deliveries": pending, "resumed_requests": unsent})
            _refuse_stuck(stuck, summary, out)
            return summary
    finally:
        _close(bus, out)


def _rewrite_missing_copy(info: dict, out: Path, repaired: dict[str, str], unrepaired: dict[str, str]) -> None:
    """Write again the run folder's copy of its catalog when it is missing (a writer stopped before writing it)
    or cannot be read (damaged since), from the catalog folder, once that is proven to be the one the run
    recorded (nothing is written otherwise). What was done goes into ``repaired``, why it could not be into
    ``unrepaired`` (``{"catalog.json": ...}``); neither changes when the copy stands."""
    copy = out / catalog_record.COPY_NAME
    broken = catalog_record.copy_problem(copy)
    if not broken or not isinstance(info.get("catalog"), dict):
        return
    proof = catalog_record.prove(info["catalog"], out, without_copy=True)
    if proof.proven and proof.code_trusted and not info["catalog"].get("in_memory"):
        folder.write_atomically(copy, catalog_record.copy(proof.catalog, info["catalog"]))
        repaired[copy.name] = f"{broken.removeprefix(f'{copy}: ')}; written again from the catalog folder, proven the run's"
    else:
        unrepaired[copy.name] = (f"{broken.removeprefix(f'{copy}: ')}; it cannot be written again: the catalog folder cannot be proven the "
                                 f"run's ({'; '.join(proof.differences) or 'its catalog was built in memory'})")


def _recorded_catalog(info: dict, out: Path) -> Catalog:
    """The catalog a stopped run started with, proven unchanged (:func:`yafdp.catalog.record.prove`: its folder
    agrees with ``run.db``'s record and the run folder's copy, and so do the package's handler modules it ran).

    Raises :class:`~yafdp.errors.RunFolderError` naming what changed, or why it cannot be known."""
    recorded = info.get("catalog") if isinstance(info.get("catalog"), dict) else {}
    if info.get("catalog_in_memory") or recorded.get("in_memory"):
        raise RunFolderError(f"{out / 'run.db'} is a run of a catalog built in memory, whose handlers no file holds: "
                             f"it cannot be resumed; run it again")
    proof = catalog_record.prove(info.get("catalog"), out)
    if not proof.proven or proof.catalog is None:
        raise RunFolderError(f"cannot resume {out}: the run's catalog cannot be proven the one it started with "
                             f"({'; '.join(proof.differences)}): restore it to resume, or start the run again with "
                             f"`yafdp run --force --out {out}`")
    return proof.catalog


def placing(bus: Bus, seq: int, request, conflicts_with: int | None = None) -> Callable[[], None]:
    """A client sending request ``seq`` of the workload to the entry point that starts a saga (the catalog's
    :attr:`~yafdp.catalog.Catalog.start_entrypoint`) on ``bus`` (any backend's). Whatever the service answers, the
    run goes on: a refusal (naming the field) is recorded in ``refusals`` with the request's ``seq``; a saga
    started is its service's own record and its start event."""
    saga = bus.catalog.saga
    entry = bus.catalog.start_entrypoint

    def place() -> None:
        order_id = saga.saga_id(request)
        if conflicts_with is not None:
            field = saga.id_field
            problem = (f"request refused: {field}: {excerpt(order_id)} was requested before (request "
                       f"#{conflicts_with}) with other content; a saga id names one saga")
        else:
            try:
                bus.call(entry.service, entry.name, request)
                return
            except RequestRefusedError as exc:
                field, problem = exc.field, str(exc)
            except PublishError as exc:
                field, problem = "(event)", str(exc)
            except Exception as exc:  # the service failed on this request: its client got an error, others go on
                field, problem = "(request)", f"the {entry.service} service failed on it: {type(exc).__name__}: {exc}"
        bus.db.execute(INSERT_REFUSAL, (excerpt(order_id, quoted=False) if order_id is not None else None, field,
                                        problem, bus.now(), seq))
    return place


def finish(bus: Bus, options: RunOptions, out: Path, seconds: float, extra: dict | None = None) -> dict:
    """Write ``summary.json`` (and ``run.db`` for the memory store), close the bus, release the run folder and
    return the summary. ``seconds`` is this session's wall time (earlier sessions of a resumed run are added);
    ``extra`` adds facts of this session (e.g. how many deliveries a resume found pending).

    Each file replaces the old one whole (a temporary file beside it, flushed, renamed), and the old summary is
    removed first: a run stopped at any moment leaves the old run or the new one (whose summary is also in
    ``run.db``'s ``run_info``), never a new ``run.db`` beside an old summary.

    A run that placed no order, every request refused, does not replace an earlier run in ``out``: its files are
    removed and the earlier run's are put back (:mod:`yafdp.runs.earlier`); the summary returned then has
    ``earlier_run_kept`` true.
    """
    out = Path(out)
    db = bus.db
    bus.commit()
    info = rundb.get_info(db)
    wall = round(info.get("wall_seconds_before", 0.0) + seconds, 3)
    summary = summarize(db, bus.catalog)
    # the kind of bus start_saga resolved, and the outcome rates the run drew with (the catalog's defaults
    # under the options'), as run_info records them: a resumed run is described as the run it resumes
    described = {**options.describe(), "bus": options.bus or info.get("bus"), "rates": info.get("rates", dict(options.rates))}
    summary.update(described, wall_seconds=wall,
                   deliveries_per_second=round(summary["deliveries"]["total"] / wall, 1) if wall > 0 else None,
                   sessions=info.get("session", 0) + 1,
                   **rundb.add_counts(info.get(rundb.COUNTS_BEFORE, {}), bus.report()), **(extra or {}))
    if "simulation" in summary:  # a latency model's run: the end-to-end latency it simulated, beside its counts
        summary["simulation"]["saga_ms"] = saga_latency_ms(db, bus.catalog.saga)
    if summary["sessions"] > 1:  # each session draws anew (README, "Everything is seeded"): say what that may change
        summary["may_differ_after_resume"] = [key for key in summary if key not in described and key not in SESSION_FACTS]
    rundb.set_info(db, status="finished", summary=summary, wall_seconds=wall)
    if db.in_transaction:  # the local bus keeps one open; a deployed one exports in its own
        db.execute("COMMIT")
    placed_nothing = earlier.placed_nothing(summary)
    try:
        if options.store == "memory":
            if placed_nothing and folder.holds_run(out):  # an earlier run there is kept (yafdp.runs.earlier)
                summary["earlier_run_kept"] = True
            else:
                folder.replace_run_db(out, lambda path: rundb.save_copy(db, path),
                                      f"{out} holds what it held before (an earlier run there is kept)",
                                      also=(catalog_record.COPY_NAME,))
        else:
            with folder.room_to_write(out / "run.db", f"{out / 'run.db'} keeps the run, finished"):
                _leave_wal(db)
        if placed_nothing and (summary.get("earlier_run_kept") or (out / earlier.EARLIER).is_dir()):
            bus.close()  # with run.db still open: a deployment sees a run with nothing to keep, and is destroyed
        db.close()
        # a memory-store run that got here replaced the folder's run: a run kept aside there goes
        if not summary.get("earlier_run_kept") and earlier.settle(out, placed=options.store == "memory" or
                                                                  not placed_nothing):
            summary["earlier_run_kept"] = True
        copied = _COPIES.pop(out.resolve(), None) if options.store == "memory" else None
        if summary.get("earlier_run_kept"):
            bus.close()
            return summary
        if copied is not None:
            with folder.room_to_write(out / catalog_record.COPY_NAME, f"{out / 'run.db'} holds the run; its "
                                      "catalog is recorded in run_info"):
                folder.write_atomically(out / catalog_record.COPY_NAME, copied)
        with folder.room_to_write(out / "summary.json", f"{out / 'run.db'} holds the run, its summary in run_info"):
            folder.write_atomically(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        bus.close()  # a deployed bus (moto, aws) is destroyed here, once the run is saved
    finally:
        _release(out)
    return summary


def summarize(db, catalog: Catalog) -> dict:
    """Counts a reader wants first: requests and sagas (``orders``) by status, events, deliveries by outcome, dead
    letters, and what the catalog's ``saga.py`` adds (YAFDP: money and loyalty points)."""
    saga = catalog.saga
    select, parameters = rundb.saga_statuses(saga.tracker)
    statuses = dict(db.execute(f"SELECT status, COUNT(*) FROM ({select}) GROUP BY status ORDER BY status", parameters))
    outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM deliveries GROUP BY outcome"))
    placed = sum(statuses.values())
    hook = catalog.code.hook("saga")
    merged = db.execute("SELECT r.order_id, COUNT(*) + 1 FROM requests r WHERE r.same_as IS NOT NULL"
                        " GROUP BY r.same_as ORDER BY r.same_as LIMIT 20").fetchall()
    return {
        "orders": {
            "requested": db.execute("SELECT COUNT(*) FROM requests").fetchone()[0],
            "not_sent": db.execute("SELECT COUNT(*) FROM unsent").fetchone()[0],
            "placed": placed,
            "refused": db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0],
            "refusals": [{"order_id": o, "field": f, "problem": p} for o, f, p in
                         db.execute("SELECT order_id, field, problem FROM refusals ORDER BY rowid LIMIT 20")],
            "merged_duplicates": [{"order_id": excerpt(o, quoted=False), "copies": n} for o, n in merged],
            "by_status": statuses,
            "not_terminal": placed - sum(statuses.get(status, 0) for status in saga.terminal),
        },
        "events_published": db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
        "deliveries": {**{k: outcomes.get(k, 0) for k in ("ok", "failed", "duplicate", "dead_lettered")},
                       "total": sum(outcomes.values())},
        "dead_letters": db.execute("SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NULL").fetchone()[0],
        **(hook.summary(db) if hasattr(hook, "summary") else {}),
    }


def saga_latency_ms(db, saga) -> dict:
    """End-to-end saga latency on the run's clock, in milliseconds: from a saga's start event to its last
    terminal event (``saga``: the catalog's :class:`~yafdp.catalog.saga.Saga`) (as :func:`yafdp.analysis.trace.end_to_end`'s ``saga_s``, without pandas): ``orders``, how
    many reached their end, and ``p50`` and ``p99``, interpolated between the nearest ranks as pandas does (None
    when no order reached its end). One pass over the events: SQLite groups, sorts and picks the ranks."""
    terminal = ", ".join("?" * len(saga.terminal_events))
    ranks = db.execute(
        "SELECT n, r, s FROM (SELECT s, ROW_NUMBER() OVER (ORDER BY s) - 1 AS r, COUNT(*) OVER () AS n FROM ("
        f" SELECT MAX(CASE WHEN detail_type IN ({terminal}) THEN published_at END)"
        "  - MIN(CASE WHEN detail_type = ? THEN published_at END) AS s"
        "  FROM events WHERE order_id IS NOT NULL GROUP BY order_id) WHERE s IS NOT NULL)"
        " WHERE r IN (CAST(0.5 * (n - 1) AS INTEGER), CAST(0.5 * (n - 1) AS INTEGER) + 1,"
        "             CAST(0.99 * (n - 1) AS INTEGER), CAST(0.99 * (n - 1) AS INTEGER) + 1)",
        (*saga.terminal_events, saga.start_event)).fetchall()
    count = ranks[0][0] if ranks else 0
    at = {r: s for _, r, s in ranks}
    latency = {"orders": count}
    for q in (0.5, 0.99):
        rank = q * (count - 1)
        low = int(rank)
        value = at[low] + (at.get(low + 1, at[low]) - at[low]) * (rank - low) if count else None
        latency[f"p{round(q * 100)}"] = None if value is None else round(value * 1000, 1)
    return latency


# ---------------------------------------------------------------- the run folder and the workload

def _new_file_store(out: Path, info: dict, rules: dict, requests, copied: str) -> object:
    """The file store's ``run.db``: made beside the old one with the run's facts and workload, then renamed
    into place (removing the old run's files, summary first), then opened for the run; the copy of its catalog
    (``catalog.json``, ``copied``) is written after it."""
    def write(building: Path) -> None:
        db = rundb.connect(building, journal="DELETE")
        try:
            _store_start(db, info, rules, requests)
        finally:
            db.close()

    folder.replace_run_db(out, write, f"{out} holds what it held before (an earlier run there is kept)",
                          also=(catalog_record.COPY_NAME,), set_aside=earlier.set_aside)
    with folder.room_to_write(out / catalog_record.COPY_NAME, f"{out / 'run.db'} holds the run, not started"):
        folder.write_atomically(out / catalog_record.COPY_NAME, copied)
    return rundb.connect(out / "run.db")


def _store_start(db, info: dict, rules: dict | None, requests) -> None:
    db.execute("BEGIN")
    rundb.set_info(db, **info)
    if rules is not None:
        _record_rules(db, rules)
    db.executemany(INSERT_REQUEST, ((r.seq, r.order_id, r.due, r.text, r.same_as) for r in requests))
    rundb.set_info(db, workload=rundb.workload_record(db))  # what `yafdp check` proves the workload whole with
    db.execute("COMMIT")


def _record_rules(db, rules: dict) -> None:
    rundb.set_info(db, rules=rules, rules_sha256=rundb.rules_hash(rules))


def _schedule_requests(bus: Bus) -> int:
    """Schedule every stored request not sent yet, at its time; returns how many. They are read from
    ``run.db`` a chunk at a time, as the scheduler wants them, so a long workload never sits in memory."""
    unsent = bus.db.execute("SELECT COUNT(*) FROM unsent").fetchone()[0]
    bus.schedule_all(_unsent(bus))
    return unsent


def _unsent(bus: Bus, chunk: int = 1000) -> Iterator[tuple[float, Callable[[], None]]]:
    after = 0
    while True:
        rows = bus.db.execute("SELECT seq, due, request, first FROM unsent WHERE seq > ? ORDER BY seq LIMIT ?",
                              (after, chunk)).fetchall()
        if not rows:
            return
        for seq, due, text, first in rows:
            yield due, placing(bus, seq, json_text.loads(text), first if first is not None and first < seq else None)
        after = rows[-1][0]


def _chain(first, rest) -> Iterator:
    if first is not None:
        yield first
        yield from rest


def _leave_wal(db: sqlite3.Connection) -> None:
    """A finished run's database becomes one file again (rollback journal, its WAL checkpointed into it), so that
    a reader's read-only connection (``yafdp check``, a notebook) leaves no empty ``-wal`` and ``-shm`` beside it.
    A resume opens it in WAL mode again. If another connection holds it open, it stays in WAL mode."""
    try:
        db.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.OperationalError:  # "database is locked": a reader has it open; WAL mode is as correct
        pass


def _read_info(db_path: Path) -> dict:
    """``run_info`` of the run in ``db_path``, for its folder's lock holder, leaving the folder as it was
    (:func:`~yafdp.runtime.rundb.connect_leaving_folder`)."""
    try:
        db = rundb.connect_leaving_folder(db_path)
        try:
            rundb.verify(db, db_path)  # refused as every reader of a run folder refuses it
            info = rundb.get_info(db)
        finally:
            db.close()
    except rundb.MalformedRunError:
        raise
    except Exception as exc:  # sqlite3.DatabaseError, a value that is not JSON
        raise RunFolderError(f"{db_path} cannot be read as a run ({exc}): nothing to resume") from None
    if not info:
        raise RunFolderError(f"{db_path} holds no run yet (it was stopped while starting): start the run again")
    return info


class _OrdersEnded:
    """The progress bar of a run: its orders that reached their end (a terminal event published) or were refused,
    out of the requests it stores (identical duplicates merged), read from the run database at each commit,
    only the events published since the last (nothing is read when the bar is not shown)."""

    def __init__(self, bus: Bus, show: bool | None):
        self.bus, self.ended, self.seq = bus, set(), 0
        total = bus.db.execute("SELECT COUNT(*) FROM requests WHERE same_as IS NULL").fetchone()[0]
        self.bar = progress_bar(total, "orders ended", "orders", show=show)
        self.update(bus.stats)

    def update(self, stats) -> None:
        """Count what ended since the last call; ``stats`` (the bus's counts) adds the deliveries made so far."""
        if self.bar.disable:
            return
        ends = self.bus.catalog.saga.terminal_events  # the catalog's saga says which events end one
        terminal = ",".join("?" * len(ends))
        rows = self.bus.db.execute(f"SELECT seq, order_id FROM events WHERE seq > ? AND detail_type IN ({terminal})",
                                   (self.seq, *ends)).fetchall()
        self.ended.update(order_id for _, order_id in rows)
        self.seq = max([self.seq, *(seq for seq, _ in rows)])
        refused = self.bus.db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0]
        self.bar.set_postfix_str(f"{stats.deliveries:,} deliveries", refresh=False)
        self.bar.update(len(self.ended) + refused - self.bar.n)

    def __enter__(self) -> "_OrdersEnded":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()


def _keeping_time(bus: Bus, progress: Callable | None, started: float) -> Callable:
    """The bus's progress callback, also recording the run's wall time so far (a stopped run keeps it)."""
    before = rundb.get_info(bus.db).get("wall_seconds_before", 0.0)

    def tick(stats) -> None:
        rundb.set_info(bus.db, wall_seconds=round(before + time.perf_counter() - started, 3))
        if progress is not None:
            progress(stats)
    return tick


@contextmanager
def _interrupted(message: str):
    """SIGINT (or SIGTERM, which the CLI makes the same) while a run starts: nothing was written yet."""
    try:
        yield
    except folder.Interrupted:
        raise
    except KeyboardInterrupt:
        raise folder.Interrupted(message) from None


@contextmanager
def _saying_what_was_kept(bus: Bus, options: RunOptions):
    try:
        yield
    except folder.Interrupted:
        raise
    except (OSError, sqlite3.OperationalError) as exc:  # no room as the run went: where it wrote, what was kept
        out = Path(options.out)
        if folder.no_room(exc) is None:
            raise
        if options.store == "file":
            where, kept = out / "run.db", (f"it keeps what was committed; once there is room, `yafdp resume --out "
                                           f"{out}` finishes the run")
        else:
            where, kept = (f"the memory store's temporary file (in {tempfile.gettempdir()}, TMPDIR)",
                           f"nothing of this run was kept; {out} holds what it held before")
        with folder.room_to_write(where, kept):
            raise
    except KeyboardInterrupt:
        out = Path(options.out)
        if options.store != "file":
            raise folder.Interrupted(f"interrupted: nothing of this run was kept (the {options.store} store writes "
                                     f"run.db at the end); {out} holds what it held before") from None
        try:
            bus.db.close()  # what was not committed is rolled back, as a kill would
            db = rundb.open_run(out / "run.db")
            placed, unsent, requested = db.execute(
                "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM unsent),"
                " (SELECT COUNT(*) FROM requests)").fetchone()
            db.close()
            kept = f"{placed} orders placed, {unsent} of {requested} requests not sent yet"
        except Exception:
            kept = "everything committed so far"
        raise folder.Interrupted(f"interrupted: {out / 'run.db'} keeps what was committed ({kept}); "
                                 f"`yafdp resume --out {out}` finishes the run") from None


def _close(bus: Bus, out) -> None:
    """After a run or resume, whatever happened: what was not committed is dropped, the deployment destroyed,
    the folder released (by :func:`finish` if it ended; if not, the lock file and the folders the lock made are
    removed, so a memory-store run stopped into a new folder leaves none: only a file-store ``run.db`` stays)."""
    try:
        bus.db.close()
    finally:
        try:
            bus.close()
        finally:
            _release(Path(out), undo=True)


def _release(out: Path, undo: bool = False) -> None:
    _COPIES.pop(Path(out).resolve(), None)
    lock = _LOCKS.pop(Path(out).resolve(), None)
    if lock is not None:
        lock.release(undo=undo)
