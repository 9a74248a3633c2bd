"""A run of the saga: place a workload of orders on a backend and leave ``run.db`` and ``summary.json``.

This is the one place that wires catalog, plan, bus, services and workload together (the bootstrap).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from yafdp import store
from yafdp.bus import LocalBus, MeasuredTiming
from yafdp.catalog import load_catalog
from yafdp.envelope import PublishError
from yafdp.faults import Faults
from yafdp.latency import timing_for
from yafdp.marketplace import load_marketplace
from yafdp.plan import build_plan
from yafdp.services.order import OrderRejectedError
from yafdp.workload import OutcomeRates, iter_orders

STORES = ("memory", "file")
BACKENDS = ("local", "moto", "aws")
STYLES = ("choreography", "orchestration")
WORKFLOWS = ("standard", "express")


@dataclass(frozen=True)
class RunOptions:
    orders: int = 20
    seed: int = 0
    out: Path = Path("runs/latest")
    store: str = "memory"
    rates: OutcomeRates = field(default_factory=OutcomeRates)
    faults: Faults = field(default_factory=Faults)
    arrival_rate: float = 50.0
    catalog_dir: Path | None = None
    exclude_services: tuple[str, ...] = ()  # e.g. ("loyalty",): the platform before that service existed
    orders_file: Path | None = None  # a JSON list of order requests to place instead of generated ones
    backend: str = "local"  # or "moto" / "aws": see yafdp.aws.backend
    keep: bool = False  # aws: leave the deployment in place after the run (destroy it yourself)
    latency_model: str = "none"  # "none": measured wall-clock; else a profile in data/latency/ (or a file)
    style: str = "choreography"  # or "orchestration": the same flow run by a Step Functions state machine
    workflow: str = "standard"  # the orchestration's Step Functions workflow type: standard or express
    quota_scale: float = 1.0  # the simulated account's quotas multiplied by this (to reach them with fewer orders)

    def __post_init__(self):
        if self.store not in STORES:
            raise ValueError(f"store must be one of {STORES}, got {self.store!r}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        if self.workflow not in WORKFLOWS:
            raise ValueError(f"workflow must be one of {WORKFLOWS}, got {self.workflow!r}")
        if self.orders < 0:
            raise ValueError(f"orders must not be negative, got {self.orders}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")


def run_saga(options: RunOptions, progress: Callable | None = None) -> dict:
    """Run the workload on ``options.backend``; return the summary (also written to ``summary.json``).

    Examples
    --------
    >>> import tempfile
    >>> summary = run_saga(RunOptions(orders=5, seed=1, out=Path(tempfile.mkdtemp())))
    >>> summary["orders"]["placed"], summary["orders"]["not_terminal"]
    (5, 0)
    """
    if options.backend != "local":
        from yafdp.aws.backend import run_saga_on_aws

        return run_saga_on_aws(options)
    bus = start_saga(options)
    started = time.perf_counter()
    bus.run(progress=progress)
    return finish(bus, options, Path(options.out), time.perf_counter() - started)


def start_saga(options: RunOptions) -> LocalBus:
    """A bus with the run's database opened and its workload scheduled, not yet run: call ``bus.run()``,
    inspect or redrive as you like, then :func:`finish`. :func:`run_saga` does all three."""
    if options.backend != "local":
        from yafdp.aws.backend import start_saga_on_aws

        return start_saga_on_aws(options)  # deployed, its workload scheduled; finish() destroys it
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    db_path = out / "run.db"
    if options.store == "file":
        for stale in (db_path, db_path.with_name("run.db-wal"), db_path.with_name("run.db-shm")):
            stale.unlink(missing_ok=True)
    db = store.connect(db_path if options.store == "file" else None)
    bus = open_bus(options, db)
    store.set_info(db, **describe(options), status="running", services=list(bus.catalog.services),
                   rules={r.name: r.pattern for r in bus.plan.rules})
    bus.commit()  # what the run is, durably, before the first order: a killed run can always be resumed
    bus.schedule_all((at, placing(bus, request)) for at, request in arrivals(options, bus.world))
    return bus


def arrivals(options: RunOptions, world) -> Iterator[tuple[float, object]]:
    """When each order of the run's workload arrives (seconds after the start) and its request, in time
    order: from ``options.orders_file`` at the arrival rate, or generated from the seed and the rates."""
    if options.orders_file is not None:
        requests = load_order_requests(Path(options.orders_file))
        return (((n + 1) / options.arrival_rate, request) for n, request in enumerate(requests))
    planned = iter_orders(options.orders, options.seed, world, options.rates, options.arrival_rate)
    return ((p.at, p.request) for p in planned)


def load_order_requests(path: Path) -> list:
    """Order requests from a JSON file (a list of objects, as a client would send them to ``place_order``).

    Each request is validated when it is placed, so one bad order is refused on its own, naming its field."""
    try:
        requests = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read orders file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(requests, list):
        raise ValueError(f"{path}: must hold a JSON list of order requests, not a {type(requests).__name__}")
    return requests


def resume_saga(out: Path, progress: Callable | None = None) -> dict:
    """Finish a file-store run that was interrupted (even by SIGKILL): every order it had placed is
    carried to its end from the durable delivery queue; orders it had not placed yet are not placed."""
    out = Path(out)
    db_path = out / "run.db"
    if not db_path.exists():
        raise FileNotFoundError(f"no run database at {db_path}")
    db = store.connect(db_path)
    info = store.get_info(db)
    if not info:
        raise ValueError(f"{db_path} holds no run yet (it was stopped while starting): start the run again")
    if info.get("style", "choreography") != "choreography":
        raise ValueError(f"{db_path} is from an orchestrated run; only the choreography's durable bus can be resumed")
    if info.get("store") != "file":
        raise ValueError(f"{db_path} is from a {info.get('store')!r} store run; only file-store runs can be resumed")
    options = RunOptions(orders=info["orders_requested"], seed=info["seed"], out=out, store="file",
                         rates=OutcomeRates(**info["rates"]), faults=Faults(**info["faults"]),
                         arrival_rate=info["arrival_rate"], catalog_dir=info.get("catalog_dir"),
                         exclude_services=tuple(info.get("exclude_services", ())),
                         latency_model=info.get("latency_model", "none"), quota_scale=info.get("quota_scale", 1.0))
    session = info.get("session", 0) + 1
    store.set_info(db, session=session, status="resuming")
    last = db.execute("SELECT MAX(t) FROM (SELECT MAX(published_at) AS t FROM events"
                      " UNION ALL SELECT MAX(finished_at) FROM deliveries)").fetchone()[0] or 0.0
    # A simulated run resumes on its virtual clock (the queue's due times); a measured one continues the wall clock.
    timing = None if options.latency_model != "none" else MeasuredTiming(offset=last)
    bus = open_bus(options, db, timing=timing, session=session)
    pending = bus.resume()
    started = time.perf_counter()
    bus.run(progress=progress)
    return finish(bus, options, out, time.perf_counter() - started, extra={"resumed_deliveries": pending})


def open_bus(options: RunOptions, db, timing=None, session: int = 0) -> LocalBus:
    catalog = load_catalog(options.catalog_dir).without(*options.exclude_services)
    world = load_marketplace(options.catalog_dir)
    orchestrated = options.style == "orchestration"
    timing = timing or timing_for(options.latency_model, seed=options.seed, quota_scale=options.quota_scale,
                                  invocation="direct" if orchestrated else "queue")
    if orchestrated:
        from yafdp.orchestrator import LocalOrchestrator

        return LocalOrchestrator(catalog, build_plan(catalog), world, db, seed=options.seed, timing=timing,
                                 workflow=options.workflow)
    return LocalBus(catalog, build_plan(catalog), world, db, seed=options.seed, session=session,
                    faults=options.faults, durable=options.store == "file", timing=timing,
                    commit_every=200 if options.store == "file" else 5000)


def describe(options: RunOptions) -> dict:
    return {
        "backend": options.backend, "store": options.store, "seed": options.seed, "orders_requested": options.orders,
        "rates": asdict(options.rates), "faults": options.faults.to_dict(), "arrival_rate": options.arrival_rate,
        "latency_model": options.latency_model, "times": _times(options), "quota_scale": options.quota_scale,
        "style": options.style, "workflow": options.workflow if options.style == "orchestration" else None,
        "catalog_dir": str(options.catalog_dir) if options.catalog_dir else None,
        "exclude_services": list(options.exclude_services),
        "orders_file": str(options.orders_file) if options.orders_file else None,
    }


def _times(options: RunOptions) -> str:
    if options.latency_model == "none":
        return "measured wall-clock seconds since the run started"
    return f"simulated seconds on a virtual clock, latency model {options.latency_model!r}"


def placing(bus, request) -> Callable[[], None]:
    """A customer's client placing ``request`` on ``bus`` (any backend's); a refusal is recorded in
    ``refusals``, naming the field, and the run goes on."""
    def place() -> None:
        try:
            bus.call("order", "place_order", request)
        except (OrderRejectedError, PublishError) as exc:
            order_id = request.get("order_id") if isinstance(request, dict) else None
            bus.db.execute("INSERT INTO refusals (order_id, field, problem, refused_at) VALUES (?, ?, ?, ?)",
                           (order_id if isinstance(order_id, str) else None, getattr(exc, "field", "(event)"),
                            str(exc), bus.now()))
    return place


def finish(bus: LocalBus, options: RunOptions, out: Path, seconds: float, extra: dict | None = None) -> dict:
    """Write ``summary.json`` (and ``run.db`` for the memory store), close the bus and return the summary;
    ``extra`` adds facts of this session to it (e.g. how many deliveries a resume found pending)."""
    out = Path(out)
    db = bus.db
    bus.commit()
    summary = summarize(db)
    summary.update(describe(options), wall_seconds=round(seconds, 3),
                   deliveries_per_second=round(summary["deliveries"]["total"] / seconds, 1) if seconds > 0 else None,
                   state_writes=bus.writer.writes, **(extra or {}))
    if getattr(bus.timing, "simulated", False):
        summary["simulation"] = {**bus.timing.report(), "virtual_seconds": round(bus.vt, 3)}
    if hasattr(bus, "report"):  # the orchestrator's executions and state transitions
        summary["orchestration"] = bus.report()
    store.set_info(db, status="finished", summary=summary)
    if db.in_transaction:  # the local bus keeps one open; a deployed one exports in its own
        db.execute("COMMIT")
    if options.store == "memory":
        store.save_copy(db, out / "run.db")
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
            "not_terminal": placed - statuses.get("DELIVERY_SCHEDULED", 0) - statuses.get("CANCELLED", 0),
        },
        "events_published": db.execute("SELECT COUNT(*) FROM events").fetchone()[0],
        "deliveries": {**{k: outcomes.get(k, 0) for k in ("ok", "failed", "duplicate", "dead_lettered")},
                       "total": sum(outcomes.values())},
        "dead_letters": db.execute("SELECT COUNT(*) FROM dead_letters WHERE redriven_at IS NULL").fetchone()[0],
        "charged": money.get("charge", 0.0),
        "refunded": money.get("refund", 0.0),
        "loyalty_points": db.execute("SELECT COALESCE(SUM(points), 0) FROM loyalty").fetchone()[0],
    }
