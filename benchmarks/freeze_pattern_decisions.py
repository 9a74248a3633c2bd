"""Writes ``tests/unit/data/frozen_pattern_decisions.json``: the engine's decisions on a fixed sample of the benchmark's workload.

The file holds the patterns, the events and, for each event, the indices of the patterns that
match it, as the engine answered when the file was written. ``tests/unit/test_patterns_frozen.py``
replays it against ``RuleSet`` and ``Pattern.matches``, so an engine change that alters any
decision fails a test even if ``RuleSet`` and ``Pattern`` change alike.

Run it again only to record a deliberate change of semantics (and say so in the commit):
``python benchmarks/freeze_pattern_decisions.py``
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_patterns import make_event, make_rule  # noqa: E402

from yafdp.patterns import compile_pattern  # noqa: E402

SEED = 20260415
PATTERNS = 200
EVENTS = 150
OUT = ROOT / "tests" / "unit" / "data" / "frozen_pattern_decisions.json"


def main() -> int:
    rng = random.Random(SEED)
    patterns = [make_rule(rng) for _ in range(PATTERNS)]
    events = [make_event(rng, number) for number in range(EVENTS)]
    compiled = [compile_pattern(pattern) for pattern in patterns]
    matches = [[index for index, pattern in enumerate(compiled) if pattern.matches(event)] for event in events]
    document = {
        "about": "Decisions of yafdp.patterns on a sample of benchmarks/bench_patterns.py's workload; "
                 "written by benchmarks/freeze_pattern_decisions.py",
        "seed": SEED,
        "patterns": patterns,
        "events": events,
        "matches": matches,
    }
    OUT.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    pairs = PATTERNS * EVENTS
    print(f"{OUT.relative_to(ROOT)}: {pairs:,} (pattern, event) pairs, {sum(map(len, matches)):,} matches, "
          f"{OUT.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
