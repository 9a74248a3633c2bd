"""The replay agrees with the full simulation, below and above the bend, at a hundredth of the quotas and at the
real ones, for the choreography and for a Standard workflow.

Each case runs one workload twice: once in full (the handlers run, under the latency model), once replayed from
the graphs its orders took. The full run records them as it runs; where it cut sagas short (a quota refused or gave
up on something), they are recorded from the same workload run again below the quotas. Both take the same orders
arriving at the same moments (the test checks the recorded arrivals against the full run's requests).

At a hundredth of the quotas the load above the bend crosses the EventBridge quotas themselves: invocations are
throttled and PutEvents calls refused. At the real quotas a test cannot wait that long: in the 1.6 s of the case
above the bend the quotas' buckets absorb the burst, and what binds is the SQS event source mapping's scaling (five
batches, then 300 more a minute), which keeps the deliveries below the invocation quota for about the first twenty
seconds. The real quotas crossed for a whole minute are compared by ``benchmarks/bench_latency_model.py
--real-quotas``, which prints the replay beside the full simulation of that minute.

**The tolerance, and why.** The two draw their latencies from different random numbers, so they agree in
distribution, not order by order. Run with these six workloads at three seeds each (5, 6 and 7), the replay
differed from the full run of the same seed by at most 6.1% in p50 (real quotas below the bend, where the first
seconds' scaling of the SQS event source mapping decides every order's wait, and the full simulation's own p50
went from 1,994 to 2,148 ms from one seed to another), 4.3% in p99 (the 12 slowest of 1,200 orders), 6.3% in the
counts of throttled, refused and retried requests (a few hundred each) and 2.0% in the orders that finished;
where timing refused or retried nothing the handler runs were equal. Where the arrivals decide the outcome the
replay tracks each seed closely: the Standard workflow's p99 below its bend went from 1,852 to 6,258 ms between
seeds, and the replay stayed within 3.1% of each. The test allows about one and a half times the largest
difference seen: p50 within 10%, p99 within 15%, each count within 15% (or 30, for counts too small for a share
to mean anything), and the counts the graphs fix exactly (orders, handler runs when nothing was refused or
retried, state transitions) equal.
"""

from contextlib import closing
from pathlib import Path

import pytest

from yafdp.runs import RunOptions
from yafdp.runs.replaying import record, replay_recording, run_and_record
from yafdp.runtime import rundb

SEED = 5

# (case, style, workflow, quota_scale, arrival rate in orders a second, orders)
CASES = [
    ("choreography, quotas x0.01, below the bend", "choreography", "standard", 0.01, 8.0, 1200),
    ("choreography, quotas x0.01, above the bend", "choreography", "standard", 0.01, 60.0, 1200),
    ("choreography, real quotas, below the bend", "choreography", "standard", 1.0, 1000.0, 2000),
    ("choreography, real quotas, above the bend", "choreography", "standard", 1.0, 2500.0, 4000),
    ("Standard workflow, quotas x0.01, below the bend", "orchestration", "standard", 0.01, 0.5, 300),
    ("Standard workflow, quotas x0.01, above the bend", "orchestration", "standard", 0.01, 1.5, 300),
]


def full_and_recorded(tmp_path: Path, **options) -> tuple[dict, object]:
    """The full run's summary, and the graphs of its orders: recorded as it ran, or, where the run cut sagas short
    (a quota refused or gave up on something), recorded from the same workload run below the quotas."""
    summary, recording = run_and_record(RunOptions(out=tmp_path / "full", latency_model="aws-eu-west-1", **options))
    if recording.left_out:
        recording = record(RunOptions(out=tmp_path / "recorded", **{k: v for k, v in options.items()
                                                                    if k != "quota_scale"}))
    return summary, recording


def close(replayed, full, share: float, floor: float = 0.0) -> bool:
    return abs(replayed - full) <= max(share * abs(full), floor)


@pytest.mark.slow
@pytest.mark.parametrize("case, style, workflow, scale, rate, orders", CASES, ids=[c[0] for c in CASES])
def test_the_replay_agrees_with_the_full_simulation(tmp_path, case, style, workflow, scale, rate, orders):
    full, recording = full_and_recorded(tmp_path, orders=orders, seed=SEED, arrival_rate=rate, style=style,
                                        workflow=workflow, quota_scale=scale)
    with closing(rundb.open_run(tmp_path / "full")) as db:
        due = dict(db.execute("SELECT order_id, due FROM requests"))
    assert len(recording.orders) == orders and all(due[o.order_id] == o.due for o in recording.orders)
    replayed = replay_recording(recording, quota_scale=scale, seed=SEED)

    simulation, orders_of = full["simulation"], full["orders"]
    assert replayed.orders == orders
    assert close(replayed.saga_ms["p50"], simulation["saga_ms"]["p50"], 0.10), (replayed.saga_ms, simulation["saga_ms"])
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
