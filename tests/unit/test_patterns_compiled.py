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
