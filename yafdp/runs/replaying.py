"""Real quotas in seconds: run the handlers once on measured time, record each order's causal graph, and replay
the graphs through the timing model at any arrival rate (:mod:`yafdp.simulation.replay`).

The replay assumes the handlers' decisions do not depend on timing (see :mod:`yafdp.simulation.replay`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from yafdp.runtime import rundb
from yafdp.runtime.interfaces import Bus
from yafdp.runs.bootstrap import profile_and_quotas
from yafdp.runs.lifecycle import run_saga
from yafdp.runs.options import RunOptions
from yafdp.simulation.profiles import DEFAULT_PROFILE
from yafdp.simulation.quotas import QUOTA_SCALE_RANGE
from yafdp.simulation.recording import ExecutionRecorder, Recording, record_choreography
from yafdp.simulation.replay import ReplayResult, replay


def record(options: RunOptions) -> Recording:
    """Run ``options``' workload once on the local backend into ``options.out``, as any run, and return each
    order's causal graph.

    The run takes ``options.latency_model`` (the default profile when it is ``"none"``) with the account's quotas
    as large as they go (:data:`~yafdp.simulation.quotas.QUOTA_SCALE_RANGE`), so that no quota binds: what a
    handler decides does not depend on when it runs, except where it depends on the order in which an order's
    events reach it (Loyalty ignores a ``Restaurant_Confirmed_Order`` that arrives after the order's
    ``Delivery_Failed``), and that order is the profile's, as at any load below the quotas. On measured time
    every hop would take no time at all, and such races would go otherwise. Record at a rate below the SQS
    event source mapping's first batches (the default 50 orders a second is) for the same reason.

    Raises what :func:`~yafdp.runs.lifecycle.run_saga` raises for refused options, and
    :class:`~yafdp.errors.RefusedError` for options the replay cannot take (see
    :func:`~yafdp.simulation.recording.record_choreography`).
    """
    model = options.latency_model if options.latency_model not in (None, "", "none") else DEFAULT_PROFILE
    options = replace(options, latency_model=model, quota_scale=QUOTA_SCALE_RANGE[1], backend="local")
    seen: dict = {}
    orchestrated = options.style == "orchestration"

    def attach(bus: Bus) -> None:
        seen["plan"] = bus.plan
        if orchestrated:
            seen["recorder"] = bus.recorder = ExecutionRecorder()

    run_saga(options, on_start=attach)
    out = Path(options.out)
    with rundb.open_run(out) as db:
        if not orchestrated:
            return record_choreography(db, seen["plan"], source=str(out))
        due = dict(db.execute("SELECT order_id, MIN(due) FROM requests WHERE order_id IS NOT NULL GROUP BY order_id"))
        orders = {order_id: (due.get(order_id, 0.0), status)
                  for order_id, status in db.execute("SELECT order_id, status FROM orders")}
    return seen["recorder"].recording(seen["plan"], options.workflow, orders, source=str(out))


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
