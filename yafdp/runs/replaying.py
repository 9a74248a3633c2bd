"""Real quotas in seconds: run the handlers once, record each order's causal graph, and replay the graphs through
the timing model at any arrival rate (:mod:`yafdp.simulation.replay`).

The replay assumes the handlers' decisions do not depend on timing (see :mod:`yafdp.simulation.replay`).
"""

from __future__ import annotations

import json
import tempfile
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from yafdp.catalog import load_catalog
from yafdp.catalog import record as catalog_record
from yafdp.errors import RefusedError
from yafdp.plan import build_plan
from yafdp.runtime import rundb
from yafdp.runtime.interfaces import Bus
from yafdp.runs import finished
from yafdp.runs.bootstrap import profile_and_quotas
from yafdp.runs.lifecycle import run_saga
from yafdp.runs.options import RunOptions
from yafdp.runs.workload import outcome_rates, planned_requests
from yafdp.simulation.profiles import DEFAULT_PROFILE
from yafdp.simulation.quotas import QUOTA_SCALE_RANGE
from yafdp.simulation.recording import ExecutionRecorder, RecordedOrder, Recording, record_choreography
from yafdp.simulation.replay import ReplayResult, replay


def record(options: RunOptions) -> Recording:
    """Run ``options``' workload once on the local backend into ``options.out``, as any run, and return each
    order's causal graph.

    The run takes ``options.latency_model`` (the default profile when it is ``"none"``) with the account's quotas
    as large as they go (:data:`~yafdp.simulation.quotas.QUOTA_SCALE_RANGE`), so that no quota binds: what a
    handler decides does not depend on when it runs, except where it depends on the order in which an order's
    events reach it (Loyalty ignores a ``Restaurant_Confirmed_Order`` that arrives after the order's
    ``Delivery_Failed``), and that order is then the profile's, as at any load below the quotas. On measured time
    every hop would take no time at all, and such races would go otherwise. Record at a rate the SQS event source
    mapping's first batches keep up with (the default 50 orders a second is) for the same reason.

    Raises what :func:`~yafdp.runs.lifecycle.run_saga` raises for refused options, and
    :class:`~yafdp.errors.RefusedError` for options the replay cannot take (see
    :func:`~yafdp.simulation.recording.record_choreography`).
    """
    model = options.latency_model if options.latency_model not in (None, "", "none") else DEFAULT_PROFILE
    return run_and_record(replace(options, latency_model=model, quota_scale=QUOTA_SCALE_RANGE[1]))[1]


def record_sample(options: RunOptions, per_outcome: int) -> Recording:
    """:func:`record` for a sample of ``options``' generated workload, each outcome kept at its frequency: of the
    ``options.orders`` requests the catalog generates (seed, rates), the first ``per_outcome`` the generator says end
    with each outcome (its ``expected``: delivered, or cancelled and why) are run and recorded, and the recording's
    orders are then the whole workload's, in its order, each the graph of a recorded order of its own outcome, those
    taken in turn. A replay (each recorded order in turn) so places the workload's outcomes in the workload's
    proportions, and the graphs within an outcome (the event sizes, the order in which parallel events reached
    their handlers) as the sample ran them. Cheaper than recording every order when the outcomes' graphs repeat, as
    this catalog's do (27 graphs for 3,000 orders on the Custom Event Bus).

    The sample runs from an orders file (its requests as generated, at ``options.arrival_rate``, evenly spaced):
    what a handler decides depends on the request, not on when it arrives (see :func:`record`). Each order of the
    result keeps the id and status of the recorded order whose graph it takes, and the workload's arrival time.

    Raises :class:`~yafdp.errors.RefusedError` for ``per_outcome`` below 1, an outcome none of whose sampled orders
    finished (so none was recorded), and what :func:`record` raises; an orders file in ``options`` is refused (the
    sample is drawn from the generated workload).
    """
    if per_outcome < 1:
        raise RefusedError(f"per_outcome must be at least 1, got {per_outcome}")
    if options.orders_file is not None:
        raise RefusedError("a sample per outcome is drawn from the generated workload, not an orders file")
    catalog = options.catalog or load_catalog(options.catalog_dir)
    planned = planned_requests(catalog, options.orders, options.seed, outcome_rates(catalog, options.rates),
                               options.arrival_rate)
    strata: dict[str, list] = {}
    for request in planned:
        strata.setdefault(request.expected, []).append(request)
    sample = sorted((r for same in strata.values() for r in same[:per_outcome]), key=lambda r: r.at)
    with tempfile.TemporaryDirectory() as scratch:
        orders_file = Path(scratch) / "sample.json"
        orders_file.write_text(json.dumps([r.request for r in sample]))
        recording = record(replace(options, orders=len(sample), orders_file=orders_file))
    by_id = {order.order_id: order for order in recording.orders}
    saga_id = catalog.saga.saga_id
    recorded = {expected: (by_id.get(saga_id(r.request)) for r in same[:per_outcome]) for expected, same in strata.items()}
    pools = {expected: [order for order in orders if order is not None] for expected, orders in recorded.items()}
    orders, turns = [], dict.fromkeys(pools, 0)
    for request in planned:
        pool = pools[request.expected]
        if not pool:
            raise RefusedError(f"no sampled order expected to end as {request.expected!r} finished: none to replay")
        taken = pool[turns[request.expected] % len(pool)]
        turns[request.expected] += 1
        orders.append(RecordedOrder(taken.order_id, request.at, taken.graph, taken.status))
    return replace(recording, orders=orders,
                   source=f"{recording.source} ({per_outcome} orders per outcome of {len(planned)})")


def run_and_record(options: RunOptions) -> tuple[dict, Recording]:
    """Run ``options`` as they are, on the local backend, and record each order's causal graph as it runs: the
    run's summary and the :class:`~yafdp.simulation.recording.Recording`. Orders the run refused or whose saga it
    did not finish (cut short where it crossed a quota) are left out of the recording (``left_out``).

    Raises :class:`~yafdp.errors.RefusedError` for another backend (the graphs are the local runner's), and what
    :func:`record` raises.
    """
    if options.backend != "local":
        raise RefusedError(f"a run is recorded for the replay on the local backend, not {options.backend!r}")
    seen: dict = {}
    orchestrated = options.style == "orchestration"

    def attach(bus: Bus) -> None:
        seen["plan"], seen["terminal"], seen["tracker"] = bus.plan, bus.catalog.saga.terminal_events, bus.catalog.saga.tracker
        if orchestrated:
            seen["recorder"] = bus.recorder = ExecutionRecorder(seen["terminal"])

    summary = run_saga(options, on_start=attach)
    out = Path(options.out)
    with closing(rundb.open_run(out)) as db:
        if not orchestrated:
            return summary, record_choreography(db, seen["plan"], seen["terminal"], seen["tracker"], source=str(out))
        due = dict(db.execute("SELECT order_id, MIN(due) FROM requests WHERE order_id IS NOT NULL GROUP BY order_id"))
        orders = {order_id: (due.get(order_id, 0.0), status)
                  for order_id, status in db.execute(*rundb.saga_statuses(seen["tracker"]))}
        requested = db.execute("SELECT COUNT(*) FROM requests WHERE same_as IS NULL").fetchone()[0]
    return summary, seen["recorder"].recording(seen["plan"], options.workflow, orders, source=str(out),
                                               requested=requested)


def recording_of(out: str | Path) -> Recording:
    """The causal graphs of the finished choreography run in folder ``out`` (or its ``run.db``), on either kind of
    bus, by the plan of the catalog it ran with for that bus.

    Raises :class:`~yafdp.errors.RunFolderError` (or :class:`~yafdp.runtime.rundb.MalformedRunError`) when ``out``
    holds no run, and :class:`~yafdp.errors.RefusedError` for a run that is still going, an orchestrated one (its
    graphs are recorded as it runs: :func:`run_and_record`), one with injected faults, and one whose catalog was
    built in memory (it cannot be loaded again).
    """
    finished.require_finished(out, "replay it")  # in progress, or stopped: said as every reader says it
    with closing(rundb.open_run(out)) as db:
        info = rundb.get_info(db)
        source = str(rundb.run_db_path(out))
        if info.get("status") != "finished":
            raise RefusedError(f"{source}: the run has not finished; replay a finished run")
        if info.get("catalog_in_memory"):
            raise RefusedError(f"{source}: the run's catalog was built in memory and cannot be loaded again")
        if info.get("style", "choreography") != "choreography":
            raise RefusedError(f"{source}: the replay takes a choreography run: an orchestrated run's sagas are "
                               "recorded as it runs (yafdp.runs.replaying.run_and_record), not kept in run.db")
        proof = catalog_record.prove(info.get("catalog"), rundb.run_db_path(out).parent, info.get("catalog_dir"))
        if proof.catalog is None or not proof.proven:
            raise RefusedError(f"{source}: the run's catalog cannot be proven the one it ran with "
                               f"({'; '.join(proof.differences)})")
        catalog = proof.catalog
        bus = info.get("bus") or "classic"  # the kind of bus the run ran on: its plan's rules, or its subscribers
        plan = build_plan(catalog, info["prefix"], bus=bus) if info.get("prefix") else build_plan(catalog, bus=bus)
        return record_choreography(db, plan, catalog.saga.terminal_events, catalog.saga.tracker, source=source)


def replay_recording(recording: Recording, *, latency_model: str = "aws-eu-west-1", quota_scale: float = 1.0,
                     arrival_rate: float | None = None, seconds: float | None = None, orders: int | None = None,
                     seed: int = 0) -> ReplayResult:
    """:func:`~yafdp.simulation.replay.replay` with a latency profile by name (or file) and the account's quotas
    scaled by ``quota_scale``, as ``yafdp run --latency-model`` takes them.

    Raises :class:`~yafdp.simulation.profiles.LatencyProfileError` for a profile that does not load and
    :class:`~yafdp.errors.RefusedError` for a scale out of range or what :func:`replay` refuses.
    """
    profile, quotas = profile_and_quotas(latency_model, quota_scale)
    return replay(recording, profile, quotas, arrival_rate=arrival_rate, seconds=seconds, orders=orders, seed=seed)
