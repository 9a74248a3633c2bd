"""The engine against a frozen table of its own earlier decisions, not against itself.

``data/frozen_pattern_decisions.json`` holds 200 patterns and 150 events drawn with a fixed seed
from the benchmark's generator, and the patterns each event matched when the file was written
(``benchmarks/freeze_pattern_decisions.py``). Both ways of matching must reproduce every one of
the 30,000 decisions, so a change of meaning cannot pass by changing ``RuleSet`` and ``Pattern``
together.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yafdp.patterns import RuleSet, compile_pattern

FROZEN = json.loads((Path(__file__).parent / "data" / "frozen_pattern_decisions.json").read_text(encoding="utf-8"))


def _name(index: int) -> str:
    return f"p{index:03d}"


@pytest.fixture(scope="module")
def compiled():
    return [compile_pattern(pattern) for pattern in FROZEN["patterns"]]


def test_the_table_is_a_real_sample():
    assert len(FROZEN["patterns"]) * len(FROZEN["events"]) >= 30_000
    assert sum(map(len, FROZEN["matches"])) > 300  # enough matches for a change to show


def test_pattern_matches_reproduces_every_frozen_decision(compiled):
    for event, expected in zip(FROZEN["events"], FROZEN["matches"]):
        assert [index for index, pattern in enumerate(compiled) if pattern.matches(event)] == expected, event["id"]


def test_ruleset_reproduces_every_frozen_decision(compiled):
    rules = RuleSet()
    for index, pattern in enumerate(FROZEN["patterns"]):
        rules.add(_name(index), pattern)
    for event, expected in zip(FROZEN["events"], FROZEN["matches"]):
        assert rules.matching(event) == [_name(index) for index in expected], event["id"]


def test_ruleset_reproduces_the_table_with_rules_added_in_reverse_and_some_removed():
    rules = RuleSet()
    indices = list(range(len(FROZEN["patterns"])))
    for index in reversed(indices):
        rules.add(_name(index), FROZEN["patterns"][index])
    removed = set(indices[::7])
    for index in removed:
        rules.remove(_name(index))
    order = [index for index in reversed(indices) if index not in removed]
    for event, expected in zip(FROZEN["events"], FROZEN["matches"]):
        wanted = set(expected) - removed
        assert rules.matching(event) == [_name(index) for index in order if index in wanted], event["id"]
