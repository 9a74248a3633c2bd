"""`make workbook`'s time, beside the workbook as it was at an earlier revision, built in turn on the same machine.

Each side builds the whole workbook with `yafdp workbook` into a folder of its own: once to learn how long each
chapter takes (the runner then starts the longest first), then ``--rounds`` times, measured, the two sides taking
turns so that both meet the same load. A build's wall time depends on what else the machine runs, so each line
also gives the load average when the build started; the chapters' CPU seconds (their kernels' included), which
depend much less on it, are printed where the side's runner reports them (this revision's does).

    python benchmarks/bench_workbook.py [--rounds 2] [--rev 988cba5]

The target (issue 25): under 40 s after setup on a 2-core machine with nothing else running.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline import ROOT, child_env

TARGET_SECONDS = 40.0
# The revision whose `make workbook` the README measured before this work (59.5 s first build, 51.9 s second).
PEER_REV = "988cba5"


def peer_checkout(rev: str) -> Path | None:
    """``yafdp/``, ``data/`` and ``notebooks/`` as they were at ``rev`` (``git archive``), or None when this clone
    does not have that revision."""
    folder = Path(tempfile.mkdtemp(prefix="yafdp-workbook-peer-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "yafdp", "data", "notebooks"], capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def build(code: Path | None, out: Path) -> dict:
    """One `yafdp workbook` of the package at ``code`` (this checkout when None) into ``out``: wall seconds, the
    load average when it started, and the chapters' CPU seconds when the runner says them."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "yafdp", "workbook", "--out", str(out)], cwd=code or ROOT,
                          env=child_env(code), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"yafdp workbook failed ({code or ROOT}):\n{done.stderr[-2000:]}")
    cpu = re.search(r"\(([\d.]+) s of CPU in the chapters\)", done.stdout)
    return {"wall": wall, "load": load, "cpu": float(cpu.group(1)) if cpu else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="measured builds of each side (after one to warm up)")
    parser.add_argument("--rev", default=PEER_REV, help="the peer's revision")
    args = parser.parse_args()
    peer = peer_checkout(args.rev)
    sides = {"this checkout": None, **({f"peer ({args.rev})": peer} if peer else {})}
    if peer is None:
        print(f"(no peer: this clone does not have {args.rev})")
    results: dict[str, list[dict]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory(prefix="yafdp-bench-workbook-") as scratch:
        for round_ in range(args.rounds + 1):
            for name, code in sides.items():
                measured = build(code, Path(scratch) / name.split(" ")[0])
                label = "first build (course order)" if round_ == 0 else f"build {round_} (longest first)"
                cpu = f", {measured['cpu']:.1f} s of CPU in the chapters" if measured["cpu"] is not None else ""
                print(f"{name:>22}  {label:28}  {measured['wall']:6.1f} s{cpu}  (load average {measured['load']:.2f})",
                      flush=True)
                if round_:
                    results[name].append(measured)
    print()
    for name, measured in results.items():
        walls = [m["wall"] for m in measured]
        print(f"{name:>22}  median of {len(walls)}: {statistics.median(walls):.1f} s")
    now = statistics.median(m["wall"] for m in results["this checkout"])
    met = now < TARGET_SECONDS
    print(f"target: under {TARGET_SECONDS:.0f} s with nothing else running: {'met' if met else 'not met'} "
          f"({now:.1f} s; the load averages above say how quiet the machine was)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
