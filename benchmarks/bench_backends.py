"""The same workload on the local bus and on the plan deployed to moto, side by side: wall time, deliveries
per second, latency per hop and handler time (measured wall-clock, p50 and p95).

moto runs the AWS APIs over HTTP in this process and the handlers are polled from SQS queues here too, so
its numbers are what this emulation costs, not what AWS costs. At an arrival rate above what it sustains,
its queues grow and hop latency measures the backlog: the slow arrival rate shows the cost of one hop.

    python benchmarks/bench_backends.py [--orders 40] [--seed 4]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from pathlib import Path


def case(backend: str, orders: int, seed: int, arrival_rate: float) -> dict:
    from yafdp.runs import RunOptions, run_saga
    from yafdp.analysis.trace import hop_latency, load_run

    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(io.StringIO()):
        summary = run_saga(RunOptions(orders=orders, seed=seed, out=Path(out), backend=backend,
                                      arrival_rate=arrival_rate))
        hops = hop_latency(load_run(out))
    ms = lambda series, q: series.quantile(q) * 1000  # noqa: E731
    return {"backend": backend, "orders/s": arrival_rate, "wall s": summary["wall_seconds"],
            "deliveries/s": summary["deliveries_per_second"],
            "hop p50 ms": ms(hops["latency_s"], 0.5), "hop p95 ms": ms(hops["latency_s"], 0.95),
            "handler p50 ms": ms(hops["processing_s"], 0.5), "handler p95 ms": ms(hops["processing_s"], 0.95),
            "not terminal": summary["orders"]["not_terminal"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rows = [case(backend, args.orders, args.seed, rate) for backend in ("local", "moto") for rate in (50.0, 2.0)]
    columns = list(rows[0])
    print(f"{args.orders} orders, seed {args.seed}, measured wall-clock")
    print("  ".join(f"{c:>14}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]:>14.3f}" if isinstance(row[c], float) else f"{row[c]:>14}" for c in columns))


if __name__ == "__main__":
    main()
