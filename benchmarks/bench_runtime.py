"""How fast the local backend runs the whole saga, next to the same code before this work and the floor of
what Python can do.

Runs 20,000 orders (default) through the local bus with the memory store and with the file store, the same two
with the package as it was at ``--baseline-rev`` (read from git into a temporary folder: the peer, measured in the
same run), and a bare in-process dispatch loop doing the same hand-offs (the same events to the same handlers'
queues, in the same numbers) with no pattern matching, tracing, validation or state; and the saga on the memory
store with every write to the run database thrown away (the ceiling: what the bus's Python work alone allows,
however fast the database were). Prints deliveries per second
and peak memory for each, and each of issue 15's targets next to its figure: the child process's peak resident
set size, and how much it grew during the run (tracemalloc would slow Python down several times, so it is not
used). Each case runs in a fresh child process; ``--repeat`` keeps each case's best of several runs.

    python benchmarks/bench_runtime.py [--orders 20000] [--seed 1] [--baseline-rev 103ea37] [--repeat 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import resource
from pathlib import Path


from baseline import BASELINE_REV, ROOT, checkout, child_env

# Issue 15's targets: deliveries per second with the full trace, and peak RSS no higher than before.
TARGETS = {"memory": 100_000, "file": 50_000}
PEAK_RSS_TARGET_MIB = 73.0


def run_saga_case(store: str, orders: int, seed: int) -> dict:
    from yafdp.runs import RunOptions, run_saga

    with tempfile.TemporaryDirectory() as out:
        before = _peak_rss_mib()
        started = time.perf_counter()
        summary = run_saga(RunOptions(orders=orders, seed=seed, out=Path(out), store=store))
        seconds = time.perf_counter() - started
    deliveries = summary["deliveries"]["total"]
    return {"case": f"saga, {store} store", "deliveries": deliveries, "seconds": seconds,
            "deliveries_per_second": deliveries / seconds, "peak_mib": _peak_rss_mib(),
            "grew_mib": _peak_rss_mib() - before,
            "orders_terminal": summary["orders"]["placed"] - summary["orders"]["not_terminal"]}


def ceiling_case(orders: int, seed: int) -> dict:
    """The memory-store saga with every buffered write thrown away instead of written to the run database: the
    rate the bus's Python work alone allows (routing, handlers, schema checks, scheduling, bookkeeping), an
    upper bound for any faster database or trace store. Its run.db is empty, so nothing of it can be checked."""
    from yafdp.backends.local.run_writer import RunWriter

    discarded = collections.Counter()

    def discard(writer) -> None:
        discarded["deliveries"] += len(writer.deliveries)  # the trace rows it would have written
        writer.recent, writer.state = writer.state, {}  # as RunWriter.flush leaves them
        for buffered in (writer.processed, writer.events, writer.deliveries, writer.dead_letters, writer.pending_new,
                         writer.pending_changed, writer.pending_done, *writer.rows.values()):
            buffered.clear()

    RunWriter.flush = discard
    result = run_saga_case("memory", orders, seed)
    deliveries = discarded["deliveries"]
    result.update(case="saga, no database writes (ceiling)", orders_terminal=None, deliveries=deliveries,
                  deliveries_per_second=deliveries / result["seconds"])
    return result


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bare_loop_case(orders: int, seed: int) -> dict:
    """The same hand-offs as the saga (event → each subscribed handler), as plain function calls on a deque."""
    from yafdp.catalog import load_catalog
    from yafdp.runs.workload import planned_requests

    catalog = load_catalog()
    consumers = {name: [s.service for s in catalog.consumers(name)] for name in catalog.events}
    planned = planned_requests(catalog, orders, seed)
    # What each handler emits next, decided up front from the order's expected outcome (no state, no logic).
    paths = {
        "DELIVERY_SCHEDULED": {"Order_Initiated": ["Payment_Success"], "Payment_Success": ["Restaurant_Confirmed_Order"],
                               "Restaurant_Confirmed_Order": ["Delivery_Scheduled", "Loyalty_Points_Added"]},
        "CANCELLED: payment declined": {"Order_Initiated": ["Payment_Failed"]},
        "CANCELLED: restaurant rejected": {"Order_Initiated": ["Payment_Success"], "Payment_Success": ["Restaurant_Rejected_Order"],
                                           "Restaurant_Rejected_Order": ["Payment_Refunded"]},
        "CANCELLED: no courier": {"Order_Initiated": ["Payment_Success"], "Payment_Success": ["Restaurant_Confirmed_Order"],
                                  "Restaurant_Confirmed_Order": ["Delivery_Failed", "Loyalty_Points_Added"],
                                  "Delivery_Failed": ["Payment_Refunded", "Restaurant_Cancelled_Order", "Loyalty_Points_Reverted"]},
    }
    producers = {name: ev.service for name, ev in catalog.events.items()}
    before = _peak_rss_mib()
    started = time.perf_counter()
    queue, delivered = collections.deque(), 0
    for order in planned:
        path = paths[order.expected]
        queue.extend((c, "Order_Initiated", path) for c in consumers["Order_Initiated"])
        while queue:
            service, event, path = queue.popleft()
            delivered += 1
            for emitted in path.get(event, ()):
                if producers[emitted] == service:
                    queue.extend((c, emitted, path) for c in consumers[emitted])
    seconds = time.perf_counter() - started
    return {"case": "bare dispatch loop (floor)", "deliveries": delivered, "seconds": seconds,
            "deliveries_per_second": delivered / seconds, "peak_mib": _peak_rss_mib(),
            "grew_mib": _peak_rss_mib() - before, "orders_terminal": orders}


def run_case(case: str, orders: int, seed: int, repeat: int, pythonpath: Path | None = None) -> dict:
    """One case in fresh child processes (its best of ``repeat``), with ``pythonpath`` first on the path."""
    env = child_env(pythonpath)
    best = None
    for _ in range(repeat):
        child = subprocess.run([sys.executable, __file__, "--orders", str(orders), "--seed", str(seed), "--case", case],
                               capture_output=True, text=True, check=True, env=env, cwd=tempfile.gettempdir())
        result = json.loads(child.stdout)
        if best is None or result["deliveries_per_second"] > best["deliveries_per_second"]:
            best = result
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the best is kept")
    parser.add_argument("--baseline-rev", default=BASELINE_REV,
                        help=f"git revision of the peer, the code before (default {BASELINE_REV})")
    parser.add_argument("--case", choices=["memory", "file", "ceiling", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case, JSON on stdout
        cases = {"bare": bare_loop_case, "ceiling": ceiling_case}
        result = cases.get(args.case, lambda *a: run_saga_case(args.case, *a))(args.orders, args.seed)
        print(json.dumps(result))
        return 0

    baseline = checkout(args.baseline_rev)
    results = []
    for store in ("memory", "file"):
        results.append(run_case(store, args.orders, args.seed, args.repeat, ROOT))
        if baseline is not None:
            peer = run_case(store, args.orders, args.seed, args.repeat, baseline)
            peer["case"] += f" ({args.baseline_rev}, before)"
            results.append(peer)
    results.append(run_case("ceiling", args.orders, args.seed, args.repeat, ROOT))
    results.append(run_case("bare", args.orders, args.seed, args.repeat))
    floor = results[-1]["deliveries_per_second"]
    print(f"Saga runtime, {args.orders:,} orders (seed {args.seed}), Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if baseline is None:
        print(f"(no peer: this clone does not have {args.baseline_rev}; clone the whole history to measure it)")
    print(f"{'case':40} {'deliveries':>10} {'seconds':>8} {'deliveries/s':>13} {'vs floor':>9} {'peak RSS MiB':>13} {'grew MiB':>9}")
    for r in results:
        print(f"{r['case']:40} {r['deliveries']:>10,} {r['seconds']:>8.2f} {r['deliveries_per_second']:>13,.0f} "
              f"{r['deliveries_per_second'] / floor:>8.1%} {r['peak_mib']:>13.1f} {r['grew_mib']:>9.1f}")
    failed = False
    for store, target in TARGETS.items():
        now = next(r for r in results if r["case"] == f"saga, {store} store")
        before = next((r for r in results if r["case"].startswith(f"saga, {store} store (")), None)
        rate, peak = now["deliveries_per_second"], now["peak_mib"]
        failed |= rate < target or peak > PEAK_RSS_TARGET_MIB
        versus = f", {rate / before['deliveries_per_second']:.2f}x the peer's {before['deliveries_per_second']:,.0f}" if before else ""
        print(f"{store} store: {rate:,.0f} deliveries/s {'meets' if rate >= target else 'MISSES'} the target of "
              f"{target:,}{versus}; peak RSS {peak:.1f} MiB {'meets' if peak <= PEAK_RSS_TARGET_MIB else 'MISSES'} "
              f"the target of {PEAK_RSS_TARGET_MIB:g} MiB")
    ceiling = next(r for r in results if "ceiling" in r["case"])["deliveries_per_second"]
    print(f"ceiling: with no database writes at all the saga runs at {ceiling:,.0f} deliveries/s, "
          f"{'above' if ceiling >= TARGETS['memory'] else 'below'} the memory store's target of {TARGETS['memory']:,}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
