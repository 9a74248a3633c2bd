"""The compiled reader and router give what the generic ones give, on random events and rules (seeded)."""

import random
from collections import Counter

import pytest

from yafdp.patterns.flatten import compile_reader, flatten_planned, path_prefixes, reading_plan

KEYS = ["a", "b", "c", "a.b", "b.c", 1, "x"]
PATHS = ["a", "b", "a.b", "a.b.c", "b.c", "c", "1", "a.1", "b.c.a"]


def random_value(rng: random.Random, depth: int):
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return rng.choice(["s", "t", 1, 2.5, True, False, None, 0])
    if roll < 0.75:
        return {rng.choice(KEYS[:5] if rng.random() < 0.9 else KEYS): random_value(rng, depth + 1)
                for _ in range(rng.randint(0, 3))}
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]


def normalised(leaves):
    return {path: Counter(map(repr, values)) for path, values in leaves.items()}


@pytest.mark.parametrize("seed", range(20))
def test_compiled_reader_reads_what_the_generic_reader_reads(seed):
    rng = random.Random(seed)
    plan = reading_plan(path_prefixes(rng.sample(PATHS, rng.randint(1, len(PATHS)))))
    read = compile_reader(plan)
    for _ in range(300):
        event = random_value(rng, 0)
        if not isinstance(event, dict):
            event = {"a": event}
        leaves, array_paths = read(event)
        expected_leaves, expected_array_paths = flatten_planned(event, plan)
        assert normalised(leaves) == normalised(expected_leaves), event
        assert array_paths == expected_array_paths, event


CONDITIONS = [
    ["x", "y"], [{"prefix": "x"}], [{"suffix": "y"}], [{"anything-but": ["x"]}], [{"anything-but": [1, 2]}],
    [{"numeric": [">", 1]}], [{"numeric": [">=", 0, "<", 2.5]}], [{"numeric": ["=", 9007199254740992]}], [9007199254740993],
    [{"exists": True}], [{"exists": False}], [{"equals-ignore-case": "X"}], [1, True, None], [{"wildcard": "x*"}],
]
VALUES = ["x", "y", "xy", "X", 0, 1, 2, 2.5, 9007199254740993, 2**60, True, None, float("nan")]


def random_rule(rng: random.Random) -> dict:
    pattern = {}
    for field in rng.sample(["a", "b", "c"], rng.randint(1, 3)):
        condition = rng.choice(CONDITIONS)
        if field == "c":
            pattern.setdefault("items", {})["c"] = condition
        else:
            pattern[field] = condition
    if rng.random() < 0.3:
        pattern["items"] = {"d": rng.choice(CONDITIONS), **pattern.get("items", {})}
    return pattern


def random_event(rng: random.Random) -> dict:
    event = {}
    for field in ("a", "b"):
        if rng.random() < 0.8:
            event[field] = rng.choice(VALUES) if rng.random() < 0.8 else rng.sample(VALUES, 2)
    if rng.random() < 0.7:
        event["items"] = [{key: rng.choice(VALUES) for key in rng.sample(["c", "d"], rng.randint(0, 2))}
                          for _ in range(rng.randint(0, 3))]
    return event


@pytest.mark.parametrize("seed", range(10))
def test_compiled_routing_agrees_with_each_pattern_alone_as_rules_come_and_go(seed):
    from yafdp.patterns import RuleSet, compile_pattern

    rng = random.Random(seed)
    rules, patterns = RuleSet(), {}
    for step in range(40):
        name = f"r{rng.randrange(12)}"
        if name in patterns and rng.random() < 0.3:
            rules.remove(name)
            del patterns[name]
        else:
            patterns[name] = compile_pattern(random_rule(rng))
            rules.add(name, patterns[name])
        for _ in range(20):
            event = random_event(rng)
            expected = {n for n, p in patterns.items() if p.matches(event)}
            assert set(rules.matching(event)) == expected, (step, event)
