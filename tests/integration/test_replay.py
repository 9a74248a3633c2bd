"""The replay agrees with the full simulation, below and above the bend, at a hundredth of the quotas and at the
real ones, for the choreography and for a Standard workflow.

Each case runs one workload twice: once in full (the handlers run, under the latency model), once replayed from
the graphs a recording of the same workload made. Both take the same orders arriving at the same moments (a
workload drawn from a seed is the same orders at any rate, arriving at gaps scaled by the rate: one recording
per style serves every rate, and the test checks the arrival times against the full run's requests).

**The tolerance, and why.** The two draw their latencies from different random numbers, so they agree in
distribution, not order by order; how closely is set by how much the full simulation disagrees with itself.
Measured with these workloads and three seeds each (``benchmarks/bench_latency_model.py --validate`` prints the
same comparison for the real-quota minute), the full simulation's p50 moved by up to 3% from one seed to another
below the bend and its p99 (the 15 to 80 slowest orders here) by up to 12%; above the bend, where an order's
latency is its wait behind the throttles, both moved by under 4%, and the counts of throttled requests and of
refused or retried deliveries by up to 10%. The replay stayed within those spreads of the full run of the same
seed. The test allows each figure that same spread plus half again: p50 within 6%, p99 within 15%, throttled,
refused and failed counts within 15% (or 30 of them, for counts too small for a share to mean anything), and the
counts the graphs fix exactly (orders, handler runs without timing-induced failures, state transitions) equal.
"""

import dataclasses
from pathlib import Path

import pytest

from yafdp.runs import RunOptions, run_saga
from yafdp.runs.replaying import record, replay_recording
from yafdp.runtime import rundb

RECORDED_RATE = 5.0  # orders a second in the recording runs: below every quota, whatever the orders' count
SEED = 5

# (case, style, workflow, quota_scale, arrival rate in orders a second, orders)
CASES = [
    ("choreography, quotas x0.01, below the bend", "choreography", "standard", 0.01, 8.0, 1200),
    ("choreography, quotas x0.01, above the bend", "choreography", "standard", 0.01, 60.0, 1200),
    ("choreography, real quotas, below the bend", "choreography", "standard", 1.0, 1000.0, 3000),
    ("choreography, real quotas, above the bend", "choreography", "standard", 1.0, 2500.0, 7000),
    ("Standard workflow, quotas x0.01, below the bend", "orchestration", "standard", 0.01, 0.5, 300),
    ("Standard workflow, quotas x0.01, above the bend", "orchestration", "standard", 0.01, 1.5, 300),
]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """One recording per style, of as many orders as its largest case places."""
    made = {}
    for style in ("choreography", "orchestration"):
        orders = max(case[5] for case in CASES if case[1] == style)
        made[style] = record(RunOptions(orders=orders, seed=SEED, arrival_rate=RECORDED_RATE, style=style,
                                        out=tmp_path_factory.mktemp(f"recorded-{style}")))
    return made


def at_rate(recording, rate: float, orders: int):
    """The recording's first ``orders`` orders arriving as a run of the same seed at ``rate`` places them."""
    scale = RECORDED_RATE / rate
    chosen = [dataclasses.replace(o, due=o.due * scale) for o in recording.orders[:orders]]
    return dataclasses.replace(recording, orders=chosen)


def close(replayed, full, share: float, floor: float = 0.0) -> bool:
    return abs(replayed - full) <= max(share * abs(full), floor)


@pytest.mark.slow
@pytest.mark.parametrize("case, style, workflow, scale, rate, orders", CASES, ids=[c[0] for c in CASES])
def test_the_replay_agrees_with_the_full_simulation(recordings, tmp_path, case, style, workflow, scale, rate, orders):
    out = tmp_path / "full"
    full = run_saga(RunOptions(orders=orders, seed=SEED, out=out, arrival_rate=rate, style=style, workflow=workflow,
                               latency_model="aws-eu-west-1", quota_scale=scale))
    recording = at_rate(recordings[style], rate, orders)
    with rundb.open_run(Path(out)) as db:
        due = dict(db.execute("SELECT order_id, due FROM requests"))
    assert all(abs(due[o.order_id] - o.due) < 1e-6 * max(1.0, o.due) for o in recording.orders)  # the same arrivals
    replayed = replay_recording(recording, quota_scale=scale, seed=SEED)

    simulation, orders_of = full["simulation"], full["orders"]
    assert replayed.orders == orders
    assert close(replayed.saga_ms["p50"], simulation["saga_ms"]["p50"], 0.06), (replayed.saga_ms, simulation["saga_ms"])
    assert close(replayed.saga_ms["p99"], simulation["saga_ms"]["p99"], 0.15), (replayed.saga_ms, simulation["saga_ms"])
    assert close(replayed.finished, simulation["saga_ms"]["orders"], 0.15, 30)
    assert close(replayed.refused, orders_of["refused"], 0.15, 30)
    assert close(replayed.deliveries["failed"], full["deliveries"]["failed"], 0.15, 30)
    for count in ("put_events_throttled", "put_events_refused", "invocations_throttled"):
        assert close(replayed.simulation[count], simulation[count], 0.15, 30), (count, replayed.simulation, simulation)
    timing_failures = full["deliveries"]["failed"] + full["deliveries"]["dead_lettered"] + orders_of["refused"]
    if not timing_failures:  # nothing refused or retried: the graphs fix every handler run
        assert replayed.deliveries["total"] == full["deliveries"]["total"]
    if style == "orchestration":
        orchestration = full["orchestration"]
        assert replayed.orchestration["state_transitions"] == orchestration["state_transitions"]
        assert close(replayed.orchestration["transitions_throttled"], orchestration["transitions_throttled"], 0.15, 30)
