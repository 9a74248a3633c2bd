"""Benchmark: the latency model, in full and replayed, next to the saga on measured time and the code before.

Each case runs in a process of its own, so that its peak memory is its own, and prints wall seconds,
deliveries per wall second, peak memory and the simulated time span.

Default: issue 15's case, 100,000 orders arriving at 200 a second (no quota crossed) with the latency model,
beside the same workload on measured time and the latency model as it was at ``--baseline-rev`` (the peer,
from git). Its targets: well under a minute of wall time, no slower than before, and the same result as before
(the summary's deliveries, events and simulated latency).

``--real-quotas`` runs issue 25's case: one simulated minute of orders arriving at 2,500 a second (about 1.6
million deliveries, past eu-west-1's default 10,000 PutEvents/s and 18,750 invocations/s) at the account's
real quotas (``quota_scale`` 1.0), three ways: the saga on measured time (the handlers with no latency model),
the full simulation (the handlers under the latency model), and the replay (a sample of ``--sample`` orders
recorded once, then as many orders as the minute places, each the next recorded saga in turn, pushed through the same timing model without running a handler; see
:mod:`yafdp.simulation.replay`). Its targets: the replay's minute, recording included, in under 10 s of wall
time; the replay's simulated deliveries per second at least 10 times the full saga's measured deliveries per
second (printed against the saga on measured time, the stricter peer, and against the full simulation). It also
prints how closely the replay's latency and counts agree with the full simulation's for the same minute, and the
replay's own spread over ``--seeds`` seeds (the extra ones are not timed). Beside the Classic replay it replays the
same minute on the Custom Event Bus (``--bus custom``: its own recording, its limits per event group and per bus,
each group's order kept by the FIFO subscribers and queues) and prints its figures against the same targets. Its
recording is a sample per outcome (:func:`yafdp.runs.replaying.record_sample`, ``--per-outcome``, 100 by default):
of the ``--sample`` orders the workload generates, the first 100 the generator says end with each outcome (delivered,
payment declined, restaurant rejected, no courier) are run and recorded, and each of the ``--sample`` orders is then
replayed as a recorded order of its own outcome, so the replay keeps the workload's outcome mix exactly (402 of 3,000
cancelled, as recording all 3,000 does). The Custom Event Bus engine runs about 2.4 ms an order: recording all 3,000
took 6-8 s of the 10; with seeds 1 to 3 the replayed minute's deliveries, p50 and p99 came out the same as from the
whole recording, and its events within 0.02% (the cancelled orders' graphs in other proportions). ``--per-outcome 0``
records the whole sample.
``--simulated-seconds`` shortens the minute for a quick look; ``--only replay`` runs the two replays alone (no
saga on measured time, no full simulation: the minutes those take), and prints their figures and the minute's target.

    python benchmarks/bench_latency_model.py [--orders 100000] [--arrival-rate 200] [--no-baseline] [--rounds 3]
    python benchmarks/bench_latency_model.py --real-quotas [--simulated-seconds 60] [--sample 3000] [--seeds 3] \
        [--per-outcome 100]
    python benchmarks/bench_latency_model.py --real-quotas --only replay [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from baseline import checkout, child_env

# The code before issue 25's replay: main at d46d4d4 (what the README's Speed figures were measured against).
BASELINE_REV = "d46d4d4"

CASE = """
import json, resource, sys, time
from pathlib import Path
from yafdp.runs import RunOptions, run_saga
orders, rate, model, scale, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
started, cpu = time.perf_counter(), time.process_time()
summary = run_saga(RunOptions(orders=orders, seed=1, out=Path(out), arrival_rate=rate, latency_model=model,
                              quota_scale=scale))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                  "deliveries": summary["deliveries"], "events": summary["events_published"],
                  "orders": summary["orders"], "simulation": summary.get("simulation", {}),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

REPLAY = """
import json, resource, sys, time
from pathlib import Path
from yafdp.runs import RunOptions
from yafdp.runs.replaying import record, record_sample, replay_recording
sample, rate, orders, seeds, bus, per_outcome, out = (int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]),
                                                      int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7])
started, cpu = time.perf_counter(), time.process_time()
options = RunOptions(orders=sample, seed=1, out=Path(out), bus=bus)
recording = record_sample(options, per_outcome) if per_outcome else record(options)
recorded, recorded_cpu = time.perf_counter(), time.process_time()
result = replay_recording(recording, arrival_rate=rate, orders=orders, seed=1)
ended, ended_cpu = time.perf_counter(), time.process_time()
print(json.dumps({"seconds": ended - started, "record_seconds": recorded - started, "replay_seconds": ended - recorded,
                  "cpu_seconds": ended_cpu - cpu, "replay_cpu_seconds": ended_cpu - recorded_cpu,
                  "deliveries": result.deliveries, "events": result.events_published,
                  "orders": {"requested": result.orders, "placed": result.placed, "refused": result.refused,
                             "not_terminal": result.not_finished},
                  "simulation": {**result.simulation, "saga_ms": result.saga_ms},
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "bus": result.simulation["bus"],
                  "other_seeds": [(lambda r: {"p50": r.saga_ms["p50"], "p99": r.saga_ms["p99"], "refused": r.refused,
                                              "failed": r.deliveries["failed"]})(
                                      replay_recording(recording, arrival_rate=rate, orders=orders, seed=seed))
                                  for seed in range(2, seeds + 1)]}))
"""

SIMULATION_TARGET_SECONDS = 60.0  # 100,000 orders at 200/s: "well under a minute" on 2 cores (issue 15)
REPLAY_MINUTE_TARGET_SECONDS = 10.0  # one simulated minute at 2,500 orders/s at real quotas, replayed (issue 25)
REPLAY_RATIO_TARGET = 10.0  # the replay's deliveries/s against the full saga's (issue 25)


def run_child(script: str, args: list, pythonpath: Path | None = None) -> dict:
    """``script`` in a child process with ``args``, importing ``yafdp`` from ``pythonpath`` (this checkout when
    None), in a temporary folder it may write its run to; its last line of output, as JSON."""
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, "-c", script, *map(str, args), out], capture_output=True, text=True,
                                check=True, env=child_env(pythonpath), cwd=out)
    return json.loads(result.stdout.strip().splitlines()[-1])


def saga_case(orders: int, rate: float, model: str, quota_scale: float = 1.0, pythonpath: Path | None = None) -> dict:
    """The whole saga (the handlers run) for ``orders`` orders at ``rate``, with latency ``model`` or none."""
    return run_child(CASE, [orders, rate, model, quota_scale], pythonpath)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--arrival-rate", type=float, default=200.0, help="orders per simulated second (default 200)")
    parser.add_argument("--real-quotas", action="store_true",
                        help="issue 25's case: 2,500 orders/s for a minute at quota_scale 1.0, in full and replayed")
    parser.add_argument("--simulated-seconds", type=float, default=60.0, help="with --real-quotas: how long orders arrive")
    parser.add_argument("--sample", type=int, default=3_000, help="with --real-quotas: orders recorded for the replay")
    parser.add_argument("--per-outcome", type=int, default=100,
                        help="with --real-quotas: the Custom Event Bus replay records this many orders per outcome of "
                             "the sample and replays the sample's outcome mix (0: records the whole sample)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="with --real-quotas: replay with seeds 1 to N, the first timed, to show its own spread")
    parser.add_argument("--only", choices=["replay"],
                        help="with --real-quotas: run only the replays (Classic and Custom Event Bus), not the peers")
    parser.add_argument("--no-baseline", action="store_true", help=f"skip the peer at {BASELINE_REV} (the code before)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="without --real-quotas: run the cases this many times in turn and show each by its least CPU")
    args = parser.parse_args()
    if args.real_quotas:
        if args.only == "replay":
            return replays_only(args.simulated_seconds, args.sample, args.seeds, args.per_outcome)
        return real_quotas(args.simulated_seconds, args.sample, args.seeds, args.per_outcome)
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    return simulation(args.orders, args.arrival_rate, None if args.no_baseline else checkout(BASELINE_REV), args.rounds)


def _load() -> str:
    return f"load average {os.getloadavg()[0]:.1f}"


def simulation(orders: int, rate: float, baseline: Path | None, rounds: int = 1) -> int:
    """100,000 orders at 200/s with the latency model: under a minute, no slower than before, the same result.

    With ``rounds`` above 1 the cases run that many times, one after another in turn, and each is shown by its run
    that took the least CPU, with the range of its CPU seconds: on this machine one case's CPU time varied by 10-20%
    between runs with nothing else running (24.4 and 29.1 s for the same 50,000 orders), more than the difference
    the comparison with the code before is about."""
    print(f"{orders:,} orders arriving at {rate:g}/s, memory store, one process per case, {rounds} round(s) with the "
          f"cases in turn ({_load()} at the start)")
    cases = [("measured time (peer, no model)", "none", None), ("latency model aws-eu-west-1", "aws-eu-west-1", None)]
    if baseline is not None:
        cases.append((f"latency model, before ({BASELINE_REV})", "aws-eu-west-1", baseline))
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in cases}
    for _ in range(rounds):
        for label, model, path in cases:
            runs[label].append(saga_case(orders, rate, model, pythonpath=path))
    results = {label: min(done, key=lambda r: r["cpu_seconds"]) for label, done in runs.items()}
    print(f"{'case':40}{'wall s':>8}{'CPU s':>8}{'CPU range s':>14}{'deliveries/s':>14}{'peak MB':>9}{'simulated s':>13}"
          "   saga p50 / p99 ms")
    for label, _, _ in cases:
        r = results[label]
        spread = [x["cpu_seconds"] for x in runs[label]]
        sim = r["simulation"]
        saga = f"{sim['saga_ms']['p50']:,.1f} / {sim['saga_ms']['p99']:,.1f}" if sim else "-"
        print(f"{label:40}{r['seconds']:>8.1f}{r['cpu_seconds']:>8.1f}{min(spread):>7.1f}-{max(spread):<6.1f}"
              f"{r['deliveries']['total'] / r['seconds']:>14,.0f}{r['peak_mb']:>9,.0f}"
              f"{sim.get('virtual_seconds', 0) or 0:>13,.0f}   {saga}")
    print(f"({_load()} at the end)")
    now = results["latency model aws-eu-west-1"]
    met = now["seconds"] < SIMULATION_TARGET_SECONDS and not now["orders"]["not_terminal"]
    print(f"target: under {SIMULATION_TARGET_SECONDS:g} s of wall time: {now['seconds']:.1f} s, {'met' if met else 'NOT met'}")
    before = results.get(f"latency model, before ({BASELINE_REV})")
    if before is not None:
        same = all(r[k] == before[k] for r in runs["latency model aws-eu-west-1"] + runs[f"latency model, before ({BASELINE_REV})"]
                   for k in ("deliveries", "events", "orders")) and \
            now["simulation"]["saga_ms"] == before["simulation"]["saga_ms"] and \
            now["simulation"]["virtual_seconds"] == before["simulation"]["virtual_seconds"]
        # On a shared machine the wall clock says more about the neighbours than about the code: judged on CPU time.
        faster = now["cpu_seconds"] <= before["cpu_seconds"]
        print(f"target: no slower than before ({BASELINE_REV}), in CPU time (each case's least of {rounds} round(s)): "
              f"{now['cpu_seconds']:.1f} s against "
              f"{before['cpu_seconds']:.1f} s ({before['cpu_seconds'] / now['cpu_seconds']:.2f}x; wall "
              f"{now['seconds']:.1f} s against {before['seconds']:.1f} s), {'met' if faster else 'NOT met'}")
        print(f"target: the same result as before (deliveries, events, orders, simulated latency and span): "
              f"{'met' if same else 'NOT met'}")
        met = met and faster and same
    return 0 if met else 1


def _recorded(sample: int, per_outcome: int) -> str:
    """What each replay recorded, said once in the output."""
    custom = (f"the first {per_outcome:,} of each outcome among them run and recorded, and the {sample:,} replayed as "
              "those of their own outcome (the sample's outcome mix kept)" if per_outcome else f"all {sample:,} recorded")
    return (f"recorded: the Classic replay, all {sample:,} orders of seed 1's workload; the Custom Event Bus replay, "
            f"{custom}")


def replays_only(simulated_seconds: float, sample: int, seeds: int, per_outcome: int, rate: float = 2_500.0) -> int:
    """The minute's two replays alone (Classic and Custom Event Bus), each against the 10 s target, recording included
    (a shorter run held to what its replay would take for the minute), in wall and CPU time."""
    orders = round(rate * simulated_seconds)
    print(f"about {orders:,} orders arriving at {rate:,.0f}/s for {simulated_seconds:g} simulated s, quota_scale 1.0, "
          f"the replays alone, one process per case ({_load()} at the start)")
    print(_recorded(sample, per_outcome))
    print(f"{'case':36}{'record s':>9}{'CPU':>7}{'replay s':>9}{'CPU':>7}{'minute s':>9}{'CPU':>7}{'deliveries':>12}"
          f"{'p50 ms':>10}{'p99 ms':>10}")
    scale, met = 60.0 / simulated_seconds, True
    for label, bus, count in [("replay, Classic bus", "classic", seeds), ("replay, Custom Event Bus", "custom", 1)]:
        r = run_child(REPLAY, [sample, rate, orders, count, bus, per_outcome if bus == "custom" else 0])
        record_cpu = r["cpu_seconds"] - r["replay_cpu_seconds"]
        minute = r["record_seconds"] + r["replay_seconds"] * scale
        minute_cpu = record_cpu + r["replay_cpu_seconds"] * scale
        saga = r["simulation"]["saga_ms"]
        print(f"{label:36}{r['record_seconds']:>9.1f}{record_cpu:>7.1f}{r['replay_seconds']:>9.1f}"
              f"{r['replay_cpu_seconds']:>7.1f}{minute:>9.1f}{minute_cpu:>7.1f}{r['deliveries']['total']:>12,}"
              f"{saga['p50']:>10,.1f}{saga['p99']:>10,.1f}")
        met = met and minute_cpu < REPLAY_MINUTE_TARGET_SECONDS
    print(f"({_load()} at the end) target: each minute replayed in under {REPLAY_MINUTE_TARGET_SECONDS:g} s, recording "
          f"included, judged in CPU time (wall counts the neighbours): {'met' if met else 'NOT met'}")
    return 0 if met else 1


def real_quotas(simulated_seconds: float, sample: int, seeds: int, per_outcome: int, rate: float = 2_500.0) -> int:
    """A simulated minute at 2,500 orders/s at real quotas: on measured time, in full, and replayed."""
    orders = round(rate * simulated_seconds)
    print(f"about {orders:,} orders arriving at {rate:,.0f}/s for {simulated_seconds:g} simulated s, quota_scale 1.0 "
          f"(eu-west-1 defaults), memory store, one process per case ({_load()} at the start)")
    print(_recorded(sample, per_outcome))
    print(f"{'case':52}{'wall s':>8}{'CPU s':>8}{'deliveries':>12}{'deliveries/s':>14}{'peak MB':>9}{'simulated s':>13}")
    measured = saga_case(orders, rate, "none")
    full = saga_case(orders, rate, "aws-eu-west-1")
    replayed = run_child(REPLAY, [sample, rate, orders, seeds, "classic", 0])
    # The same minute on the Custom Event Bus (--bus custom): its own recording, replayed with its limits per event
    # group and per bus and each group's order kept (one seed: its spread is not the question here).
    custom = run_child(REPLAY, [sample, rate, orders, 1, "custom", per_outcome])
    rows = [("saga on measured time (peer, no model)", measured, measured["seconds"], measured["cpu_seconds"]),
            ("full simulation, latency model aws-eu-west-1", full, full["seconds"], full["cpu_seconds"]),
            (f"replay: {sample:,} orders recorded, then replayed", replayed, replayed["seconds"],
             replayed["cpu_seconds"]),
            ("  of which the replay alone", replayed, replayed["replay_seconds"], replayed["replay_cpu_seconds"]),
            ("replay on the Custom Event Bus, recording included", custom, custom["seconds"], custom["cpu_seconds"]),
            ("  of which the replay alone", custom, custom["replay_seconds"], custom["replay_cpu_seconds"])]
    for label, r, seconds, cpu in rows:
        simulated = r["simulation"].get("virtual_seconds")
        print(f"{label:52}{seconds:>8.1f}{cpu:>8.1f}{r['deliveries']['total']:>12,}"
              f"{r['deliveries']['total'] / seconds:>14,.0f}{r['peak_mb']:>9,.0f}"
              f"{simulated if simulated is not None else '-':>13}")
    print(f"({_load()} at the end; the recording took {replayed['record_seconds']:.1f} s)")

    print("\nthe replay beside the full simulation of the same load (the same timing rules; other random draws, and the "
          f"replay's orders are the {sample:,} recorded ones in turn):")
    print(f"{'':32}{'full':>14}{'replay':>14}{'Custom Event Bus replay':>26}")
    for label, pick in [("saga p50 ms", lambda r: r["simulation"]["saga_ms"]["p50"]),
                        ("saga p99 ms", lambda r: r["simulation"]["saga_ms"]["p99"]),
                        ("orders finished", lambda r: r["simulation"]["saga_ms"]["orders"]),
                        ("orders refused (throttled)", lambda r: r["orders"]["refused"]),
                        ("deliveries", lambda r: r["deliveries"]["total"]),
                        ("deliveries failed, retried", lambda r: r["deliveries"]["failed"]),
                        ("events published", lambda r: r["events"]),
                        ("PutEvents requests throttled", lambda r: r["simulation"]["put_events_throttled"]),
                        ("PutEvents requests refused", lambda r: r["simulation"]["put_events_refused"]),
                        ("invocations throttled", lambda r: r["simulation"]["invocations_throttled"]),
                        ("waited for an environment", lambda r: r["simulation"]["waited_for_an_environment"]),
                        ("simulated seconds", lambda r: r["simulation"]["virtual_seconds"])]:
        print(f"{label:32}{pick(full):>14,}{pick(replayed):>14,}{pick(custom):>26,}")
    first = {"p50": replayed["simulation"]["saga_ms"]["p50"], "p99": replayed["simulation"]["saga_ms"]["p99"],
             "refused": replayed["orders"]["refused"], "failed": replayed["deliveries"]["failed"]}
    runs = [first] + replayed["other_seeds"]
    if len(runs) > 1:
        low, high = ({k: pick(r[k] for r in runs) for k in first} for pick in (min, max))
        print(f"the replay with seeds 1 to {len(runs)} (its own spread: near the PutEvents bucket's edge single runs "
              f"vary): p50 {low['p50']:,} to {high['p50']:,} ms, p99 {low['p99']:,} to {high['p99']:,} ms, "
              f"{low['refused']:,} to {high['refused']:,} orders refused, {low['failed']:,} to {high['failed']:,} "
              "deliveries failed and retried")

    # A shorter run is held to what its replay would take for the minute (the recording costs the same). On a shared
    # machine the wall clock also counts the neighbours' work: each figure is given in CPU time too, what it takes
    # a process that has a core to itself.
    scale = 60.0 / simulated_seconds
    minute = replayed["record_seconds"] + replayed["replay_seconds"] * scale
    minute_cpu = (replayed["cpu_seconds"] - replayed["replay_cpu_seconds"]) + replayed["replay_cpu_seconds"] * scale
    ratio = (replayed["deliveries"]["total"] / replayed["replay_seconds"]) / (measured["deliveries"]["total"] / measured["seconds"])
    ratio_cpu = ((replayed["deliveries"]["total"] / replayed["replay_cpu_seconds"])
                 / (measured["deliveries"]["total"] / measured["cpu_seconds"]))
    ratio_full = (replayed["deliveries"]["total"] / replayed["replay_seconds"]) / (full["deliveries"]["total"] / full["seconds"])
    met_minute, met_minute_cpu = minute < REPLAY_MINUTE_TARGET_SECONDS, minute_cpu < REPLAY_MINUTE_TARGET_SECONDS
    met_ratio, met_ratio_cpu = ratio >= REPLAY_RATIO_TARGET, ratio_cpu >= REPLAY_RATIO_TARGET
    verdict = {True: "met", False: "NOT met"}
    print(f"\ntarget: the minute replayed in under {REPLAY_MINUTE_TARGET_SECONDS:g} s, recording included: {minute:.1f} s "
          f"of wall time ({verdict[met_minute]}), {minute_cpu:.1f} s of CPU time ({verdict[met_minute_cpu]}); the full "
          f"simulation: {full['seconds']:.1f} s of wall time, {full['cpu_seconds']:.1f} s of CPU time")
    print(f"target: the replay's deliveries/s at least {REPLAY_RATIO_TARGET:g}x the full saga's on measured time: "
          f"{ratio:.1f}x by the wall clock ({verdict[met_ratio]}), {ratio_cpu:.1f}x in CPU time "
          f"({verdict[met_ratio_cpu]}); against the full simulation: {ratio_full:.1f}x by the wall clock")
    custom_minute = custom["record_seconds"] + custom["replay_seconds"] * scale
    custom_ratio = (custom["deliveries"]["total"] / custom["replay_seconds"]) / (measured["deliveries"]["total"] / measured["seconds"])
    print(f"the Custom Event Bus replay, beside it: the minute in {custom_minute:.1f} s of wall time, recording included "
          f"({verdict[custom_minute < REPLAY_MINUTE_TARGET_SECONDS]} against the same {REPLAY_MINUTE_TARGET_SECONDS:g} s), "
          f"its deliveries/s {custom_ratio:.1f}x the full saga's on measured time (Classic), "
          f"{custom['deliveries']['total'] / custom['replay_seconds']:,.0f} against the Classic replay's "
          f"{replayed['deliveries']['total'] / replayed['replay_seconds']:,.0f}")
    return 0 if met_minute and met_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
