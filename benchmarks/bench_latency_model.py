"""Benchmark: 100,000 orders simulated with the latency model, next to the same workload with measured time.

Each case runs in a process of its own, so that its peak memory is its own; each prints wall seconds, orders
and deliveries per wall second, peak memory and the simulated time span. The target for the simulated case
is well under a minute on 2 cores.

    python benchmarks/bench_latency_model.py [--orders 100000] [--arrival-rate 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CASE = """
import json, resource, sys, time
from pathlib import Path
from yafdp.runs import RunOptions, run_saga
orders, rate, model, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
started = time.perf_counter()
summary = run_saga(RunOptions(orders=orders, seed=1, out=Path(out), arrival_rate=rate, latency_model=model))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "deliveries": summary["deliveries"]["total"],
                  "not_terminal": summary["orders"]["not_terminal"],
                  "virtual_seconds": summary.get("simulation", {}).get("virtual_seconds"),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_case(orders: int, rate: float, model: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, "-c", CASE, str(orders), str(rate), model, out],
                                capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--arrival-rate", type=float, default=200.0, help="orders per simulated second (default 200)")
    args = parser.parse_args()
    print(f"{args.orders:,} orders arriving at {args.arrival_rate:g}/s, memory store, one process per case")
    print(f"{'case':<34}{'wall s':>8}{'orders/s':>10}{'deliveries/s':>14}{'peak MB':>9}{'simulated s':>13}")
    for label, model in (("measured time (peer, no model)", "none"), ("latency model aws-eu-west-1", "aws-eu-west-1")):
        r = run_case(args.orders, args.arrival_rate, model)
        if r["not_terminal"]:
            print(f"  {label}: {r['not_terminal']} orders did not finish", file=sys.stderr)
            return 1
        simulated = f"{r['virtual_seconds']:,.0f}" if r["virtual_seconds"] is not None else "-"
        print(f"{label:<34}{r['seconds']:>8.1f}{args.orders / r['seconds']:>10,.0f}"
              f"{r['deliveries'] / r['seconds']:>14,.0f}{r['peak_mb']:>9,.0f}{simulated:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
