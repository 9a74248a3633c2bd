"""Wildcard matching time against the value's length: the linear matcher next to the backtracking regular
expression it replaced (``yafdp/patterns/wildcard.py`` at ``BEFORE``, read from git), on values that make a
backtracking engine try every split (``*a*a*a*b`` is accepted by EventBridge's complexity check).

    python benchmarks/bench_wildcard.py [--limit SECONDS]

Each measurement of the old matcher runs in a child process stopped after ``--limit`` seconds (default 20).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BEFORE = "2e8aab5"  # the last commit that matched wildcards with a regular expression
CASES = [("*a*a*a*b", "a"), ("*a*a*b", "a"), ("x*q*y*z", "y")]
LENGTHS = [100, 200, 400, 800, 1_600, 15_000, 1_000_000]


def old_matcher_module() -> types.ModuleType | None:
    """``yafdp.patterns.wildcard`` as it was at ``BEFORE``; None when this clone lacks that commit."""
    shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE}:yafdp/patterns/wildcard.py"],
                           capture_output=True, text=True)
    if shown.returncode != 0:
        return None
    module = types.ModuleType("wildcard_before")
    exec(compile(shown.stdout, f"wildcard.py@{BEFORE}", "exec"), module.__dict__)
    return module


def seconds(matcher, wildcard: str, value: str) -> float:
    start = time.perf_counter()
    matcher(wildcard)(value)
    return time.perf_counter() - start


def value_for(wildcard: str, letter: str, length: int) -> str:
    return ("x" if wildcard.startswith("x") else "") + letter * length + ("z" if wildcard.endswith("z") else "")


def old_seconds(wildcard: str, letter: str, length: int, limit: float) -> float | None:
    """The old matcher's time in a child process, or None if it did not finish within ``limit`` seconds."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "from bench_wildcard import old_matcher_module, seconds, value_for; "
            f"m = old_matcher_module(); print(seconds(m.wildcard_matcher, {wildcard!r}, "
            f"value_for({wildcard!r}, {letter!r}, {length})))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return None
    return float(done.stdout) if done.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=float, default=20.0, help="seconds the old matcher gets per case")
    args = parser.parse_args()
    from yafdp.patterns.wildcard import wildcard_matcher

    have_old = old_matcher_module() is not None
    print(f"| wildcard | value length | linear matcher | regular expression ({BEFORE}) |")
    print("|---|---:|---:|---:|")
    for wildcard, letter in CASES:
        gave_up = False
        for length in LENGTHS:
            new = seconds(wildcard_matcher, wildcard, value_for(wildcard, letter, length))
            if not have_old:
                old = "(not in this clone)"
            elif gave_up:
                old = "not tried (a shorter value did not finish)"
            else:
                measured = old_seconds(wildcard, letter, length, args.limit)
                gave_up = measured is None
                old = f"over {args.limit:g} s (stopped)" if gave_up else f"{measured * 1000:,.3f} ms"
            print(f"| `{wildcard}` | {length:,} | {new * 1000:,.3f} ms | {old} |")


if __name__ == "__main__":
    main()
