"""A run of the saga, on any backend: start it (the run database opened, the bus wired by
:mod:`yafdp.runs.bootstrap`, the workload scheduled), run it, finish it (``run.db`` and ``summary.json``),
or resume a killed file-store run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from yafdp.backends.local.timing import MeasuredTiming
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.errors import BackendError, RunFolderError
from yafdp.runtime import rundb
from yafdp.runtime.envelope import PublishError
from yafdp.runtime.faults import Faults
from yafdp.runtime.interfaces import Bus
from yafdp.runtime.rundb import INSERT_REFUSAL
from yafdp.runs.bootstrap import open_bus, open_local
from yafdp.runs.options import RunOptions
from yafdp.runs.workload import OutcomeRates, arrivals
from yafdp.services.order import TERMINAL, OrderRejectedError


def run_saga(options: RunOptions, progress: Callable | None = None) -> dict:
    """Run the workload on ``options.backend``; return the summary (also written to ``summary.json``).

    A run that does not settle (a deployment whose orders are not all terminal in time) still writes
    ``run.db`` as far as it got, then raises :class:`~yafdp.errors.BackendError` saying which orders are stuck.

    (Run in ``tests/integration/test_documented_examples.py``: a small run places every order and ends them all.)
    """
    bus = start_saga(options)
    try:
        started = time.perf_counter()
        try:
            bus.run(progress=progress)
        except BackendError:  # the evidence of a run that did not settle is kept
            finish(bus, options, Path(options.out), time.perf_counter() - started)
            raise
        return finish(bus, options, Path(options.out), time.perf_counter() - started)
    finally:
        bus.close()


def start_saga(options: RunOptions) -> Bus:
    """A bus with the run's database opened and its workload scheduled, not yet run: call ``bus.run()``,
    inspect or redrive as you like, then :func:`finish`. :func:`run_saga` does all three."""
    catalog = (options.catalog or load_catalog(options.catalog_dir)).without(*options.exclude_services)
    catalog.compile_schemas()  # before run.db exists: a run killed after that is already described in it
    world = load_marketplace(options.catalog_dir)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "run.db"
    if options.store == "file":
        for stale in (db_path, db_path.with_name("run.db-wal"), db_path.with_name("run.db-shm")):
            stale.unlink(missing_ok=True)
    db = rundb.connect(db_path if options.store == "file" else None)
    bus = open_bus(options, catalog, world, db)
    rundb.set_info(db, **options.describe(), status="running", services=list(catalog.services),
                   sources={s.source: s.name for s in catalog.services.values()},
                   rules={r.name: r.pattern for r in bus.plan.rules})
    bus.commit()  # what the run is, durably, before the first order: a killed run can always be resumed
    bus.schedule_all((at, placing(bus, request)) for at, request in arrivals(
        world, orders=options.orders, seed=options.seed, rates=options.rates, arrival_rate=options.arrival_rate,
        orders_file=options.orders_file))
    return bus


def resume_saga(out: Path, progress: Callable | None = None) -> dict:
    """Finish a file-store run that was interrupted (even by SIGKILL): every order it had placed is
    carried to its end from the durable delivery queue; orders it had not placed yet are not placed.

    Raises :class:`~yafdp.errors.RunFolderError` when ``out`` holds no run that can be resumed.
    """
    out = Path(out)
    db_path = out / "run.db"
    if not db_path.exists():
        raise RunFolderError(f"no run database at {db_path}")
    db = rundb.connect(db_path)
    info = rundb.get_info(db)
    if not info:
        raise RunFolderError(f"{db_path} holds no run yet (it was stopped while starting): start the run again")
    if info.get("style", "choreography") != "choreography":
        raise RunFolderError(f"{db_path} is from an orchestrated run; only the choreography's durable bus can be resumed")
    if info.get("store") != "file":
        raise RunFolderError(f"{db_path} is from a {info.get('store')!r} store run; only file-store runs can be resumed")
    options = RunOptions(orders=info["orders_requested"], seed=info["seed"], out=out, store="file",
                         rates=OutcomeRates(**info["rates"]), faults=Faults(**info["faults"]),
                         arrival_rate=info["arrival_rate"], catalog_dir=info.get("catalog_dir"),
                         exclude_services=tuple(info.get("exclude_services", ())),
                         latency_model=info.get("latency_model", "none"), quota_scale=info.get("quota_scale", 1.0))
    catalog = load_catalog(options.catalog_dir).without(*options.exclude_services)
    world = load_marketplace(options.catalog_dir)
    session = info.get("session", 0) + 1
    rundb.set_info(db, session=session, status="resuming")
    last = db.execute("SELECT MAX(t) FROM (SELECT MAX(published_at) AS t FROM events"
                      " UNION ALL SELECT MAX(finished_at) FROM deliveries)").fetchone()[0] or 0.0
    # A simulated run resumes on its virtual clock (the queue's due times); a measured one continues the wall clock.
    timing = MeasuredTiming(offset=last) if options.latency_model == "none" else None
    bus = open_local(options, catalog, world, db, timing=timing, session=session)
    pending = bus.resume()
    started = time.perf_counter()
    bus.run(progress=progress)
    return finish(bus, options, out, time.perf_counter() - started, extra={"resumed_deliveries": pending})


def placing(bus: Bus, request) -> Callable[[], None]:
    """A customer's client placing ``request`` on ``bus`` (any backend's); a refusal is recorded in
    ``refusals``, naming the field, and the run goes on."""
    def place() -> None:
        try:
            bus.call("order", "place_order", request)
        except (OrderRejectedError, PublishError) as exc:
            order_id = request.get("order_id") if isinstance(request, dict) else None
            bus.db.execute(INSERT_REFUSAL, (order_id if isinstance(order_id, str) else None, exc.field or "(event)",
                                            str(exc), bus.now()))
    return place


def finish(bus: Bus, options: RunOptions, out: Path, seconds: float, extra: dict | None = None) -> dict:
    """Write ``summary.json`` (and ``run.db`` for the memory store), close the bus and return the summary;
    ``extra`` adds facts of this session to it (e.g. how many deliveries a resume found pending)."""
    out = Path(out)
    db = bus.db
    bus.commit()
    summary = summarize(db)
    summary.update(options.describe(), wall_seconds=round(seconds, 3),
                   deliveries_per_second=round(summary["deliveries"]["total"] / seconds, 1) if seconds > 0 else None,
                   **bus.report(), **(extra or {}))
    rundb.set_info(db, status="finished", summary=summary)
    if db.in_transaction:  # the local bus keeps one open; a deployed one exports in its own
        db.execute("COMMIT")
    if options.store == "memory":
        rundb.save_copy(db, out / "run.db")
    db.close()
    bus.close()  # a deployed bus (moto, aws) is destroyed here
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def summarize(db) -> dict:
    """Counts a reader wants first: orders by status, events, deliveries by outcome, dead letters, money."""
    statuses = dict(db.execute("SELECT status, COUNT(*) FROM orders GROUP BY status ORDER BY status"))
    outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM deliveries GROUP BY outcome"))
    money = dict(db.execute("SELECT kind, ROUND(SUM(amount), 2) FROM payments GROUP BY kind"))
    placed = sum(statuses.values())
    return {
        "orders": {
            "placed": placed,
            "refused": db.execute("SELECT COUNT(*) FROM refusals").fetchone()[0],
            "refusals": [{"order_id": o, "field": f, "problem": p} for o, f, p in
                         db.execute("SELECT order_id, field, problem FROM refusals ORDER BY rowid LIMIT 20")],
            "by_status": statuses,
            "not_terminal": placed - sum(statuses.get(status, 0) for status in TERMINAL),
        },
        "events_published": db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
        "deliveries": {**{k: outcomes.get(k, 0) for k in ("ok", "failed", "duplicate", "dead_lettered")},
                       "total": sum(outcomes.values())},
        "dead_letters": db.execute("SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NULL").fetchone()[0],
        "charged": money.get("charge", 0.0),
        "refunded": money.get("refund", 0.0),
        "loyalty_points": db.execute("SELECT COALESCE(SUM(points), 0) FROM loyalty").fetchone()[0],
    }
