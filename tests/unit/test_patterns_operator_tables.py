"""One table per operator: a condition, an event value, and the answer written out by hand.

These expectations are literal booleans, not the output of another part of the engine, so they
catch a change of meaning that ``RuleSet`` and ``Pattern.matches`` would otherwise share (say,
``prefix`` turning case-insensitive in both). Each row is ``(condition, event value, expected)``;
the condition is the list a pattern gives field ``f``, and ``MISSING`` means the event has no ``f``.
"""

from __future__ import annotations

import pytest

from yafdp.patterns import RuleSet, compile_pattern

class _Missing:
    """The value of a field the event does not have (its repr names it, so test ids are the same in every process)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def _decide(condition: list, value) -> bool:
    pattern = {"f": condition}
    event = {} if value is MISSING else {"f": value}
    single = compile_pattern(pattern).matches(event)
    rules = RuleSet()
    rules.add("r", pattern)
    assert (rules.matching(event) == ["r"]) is single, "RuleSet and Pattern.matches disagree"
    return single


def _rows(tables: dict) -> list:
    return [
        pytest.param(condition, value, expected, id=f"{operator}:{condition}-{value!r}")
        for operator, table in tables.items()
        for condition, value, expected in table
    ]


EXACT = [
    (["Order"], "Order", True),
    (["Order"], "order", False),
    (["Order"], "Order ", False),
    ([""], "", True),
    ([""], MISSING, False),
    ([300], 300.0, True),
    ([300], 3e2, True),
    ([300], "300", False),
    (["300"], 300, False),
    ([None], None, True),
    ([None], MISSING, False),
    ([None], "", False),
    ([True], True, True),
    ([True], 1, False),
    ([1], True, False),
    (["a"], ["b", "a"], True),
    (["a"], [], False),
]

PREFIX = [
    ([{"prefix": "Order"}], "OrderPlaced", True),
    ([{"prefix": "Order"}], "orderPlaced", False),  # case-sensitive
    ([{"prefix": "Order"}], "ORDERPLACED", False),
    ([{"prefix": "Order"}], "Orde", False),
    ([{"prefix": "1"}], 12, False),  # never a number
    ([{"prefix": ""}], "", True),
    ([{"prefix": ""}], 0, False),
    ([{"prefix": "é"}], "ecole", False),
    ([{"prefix": "é"}], "école", True),
    ([{"prefix": "a"}], MISSING, False),
]

PREFIX_IGNORE_CASE = [
    ([{"prefix": {"equals-ignore-case": "EventB"}}], "eventbridge", True),
    ([{"prefix": {"equals-ignore-case": "EventB"}}], "EVENTBUS", True),
    ([{"prefix": {"equals-ignore-case": "EventB"}}], "Event", False),
    ([{"prefix": {"equals-ignore-case": "É"}}], "école", True),
]

SUFFIX = [
    ([{"suffix": ".png"}], "cat.png", True),
    ([{"suffix": ".png"}], "cat.PNG", False),  # case-sensitive
    ([{"suffix": "5"}], 5, False),  # never a number
    ([{"suffix": "5"}], 15, False),
    ([{"suffix": "5"}], "15", True),
    ([{"suffix": {"equals-ignore-case": ".png"}}], "cat.PNG", True),
    ([{"suffix": {"equals-ignore-case": ".png"}}], "cat.pn", False),
]

EQUALS_IGNORE_CASE = [
    ([{"equals-ignore-case": "Alice"}], "aLICE", True),
    ([{"equals-ignore-case": "Alice"}], "Alice ", False),
    ([{"equals-ignore-case": "ÉCOLE"}], "école", True),  # folds Unicode case, not only ASCII
    ([{"equals-ignore-case": "ΣΟΦΊΑ"}], "σοφία", True),
    ([{"equals-ignore-case": "e"}], "é", False),  # case, not accents
    ([{"equals-ignore-case": "1"}], 1, False),
]

ANYTHING_BUT = [
    ([{"anything-but": "stopped"}], "running", True),
    ([{"anything-but": "stopped"}], "stopped", False),
    ([{"anything-but": "stopped"}], MISSING, False),  # a missing field never matches
    ([{"anything-but": "stopped"}], None, True),
    ([{"anything-but": "stopped"}], 5, True),
    ([{"anything-but": [100, 200]}], 100.0, False),
    ([{"anything-but": [100, 200]}], 150, True),
    ([{"anything-but": [100, 200]}], "100", True),
    ([{"anything-but": [100, 200]}], MISSING, False),
    ([{"anything-but": {"prefix": "init"}}], "initializing", False),
    ([{"anything-but": {"prefix": "init"}}], "running", True),
    ([{"anything-but": {"prefix": "init"}}], MISSING, False),
    ([{"anything-but": {"suffix": ".png"}}], "a.png", False),
    ([{"anything-but": {"suffix": ".png"}}], "a.jpg", True),
    ([{"anything-but": {"equals-ignore-case": "Stopped"}}], "STOPPED", False),
    ([{"anything-but": {"equals-ignore-case": "Stopped"}}], "stop", True),
    ([{"anything-but": {"wildcard": "*/lib/*"}}], "/usr/lib/x", False),
    ([{"anything-but": {"wildcard": "*/lib/*"}}], "/usr/bin/x", True),
]

EXISTS = [
    ([{"exists": True}], "x", True),
    ([{"exists": True}], None, True),
    ([{"exists": True}], MISSING, False),
    ([{"exists": True}], [], False),  # an empty array is no value
    ([{"exists": True}], {"g": 1}, False),  # only leaves exist
    ([{"exists": False}], MISSING, True),
    ([{"exists": False}], [], True),
    ([{"exists": False}], None, False),
    ([{"exists": False}], "", False),
    ([{"exists": False}], {"g": 1}, True),
]

NUMERIC = [
    ([{"numeric": [">", 0, "<=", 5]}], 5, True),
    ([{"numeric": [">", 0, "<=", 5]}], 0, False),
    ([{"numeric": [">", 0, "<=", 5]}], 5.000001, False),
    ([{"numeric": ["=", 3.018e2]}], 301.8, True),
    ([{"numeric": ["<", 10]}], "9", False),  # never a string
    ([{"numeric": ["<", 10]}], True, False),  # never a boolean
    ([{"numeric": ["<", 10]}], None, False),
    ([{"numeric": ["<", 10]}], MISSING, False),
    ([{"numeric": [">=", -1e9, "<=", 1e9]}], -1e9, True),
    ([{"numeric": [">=", -1e9, "<=", 1e9]}], 1e9, True),
    ([{"numeric": [">=", -1e9, "<=", 1e9]}], 1000000000.000001, False),
]

WILDCARD = [
    ([{"wildcard": "*.png"}], "dir/a.png", True),
    ([{"wildcard": "*.png"}], "a.PNG", False),
    ([{"wildcard": "a*b"}], "ab", True),
    ([{"wildcard": "a*b"}], "axxb", True),
    ([{"wildcard": "a\\*b"}], "a*b", True),  # an escaped star is a star
    ([{"wildcard": "a\\*b"}], "axb", False),
    ([{"wildcard": "a\\\\b"}], "a\\b", True),  # an escaped backslash is a backslash
    ([{"wildcard": ""}], "", True),
    ([{"wildcard": ""}], "x", False),
    ([{"wildcard": "*"}], 1, False),  # never a number
]

CIDR = [
    ([{"cidr": "10.0.0.0/24"}], "10.0.0.0", True),
    ([{"cidr": "10.0.0.0/24"}], "10.0.0.255", True),
    ([{"cidr": "10.0.0.0/24"}], "10.0.1.0", False),
    ([{"cidr": "10.0.0.0/24"}], "10.0.0", False),
    ([{"cidr": "10.0.0.0/24"}], 167772161, False),
    ([{"cidr": "10.0.0.5/24"}], "10.0.0.1", True),  # the block's network: host bits cleared
    ([{"cidr": "2001:db8::/32"}], "2001:0DB8:ffff::1", True),
    ([{"cidr": "2001:db8::/32"}], "2001:db9::1", False),
    ([{"cidr": "2001:db8::/32"}], "10.0.0.1", False),
]


TABLES = {
    "exact": EXACT, "prefix": PREFIX, "prefix-ignore-case": PREFIX_IGNORE_CASE, "suffix": SUFFIX,
    "equals-ignore-case": EQUALS_IGNORE_CASE, "anything-but": ANYTHING_BUT, "exists": EXISTS,
    "numeric": NUMERIC, "wildcard": WILDCARD, "cidr": CIDR,
}


@pytest.mark.parametrize(("condition", "value", "expected"), _rows(TABLES))
def test_operator(condition, value, expected):
    assert _decide(condition, value) is expected


OR = [
    ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"a": "1"}, True),
    ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"b": "2"}, True),
    ({"$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"a": "2", "b": "1"}, False),
    ({"s": ["x"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"s": "y", "a": "1"}, False),
    ({"s": ["x"], "$or": [{"a": ["1"]}, {"b": ["2"]}]}, {"s": "x", "b": "2"}, True),
    ({"$or": [{"a": [{"numeric": [">", 5]}]}, {"a": [{"prefix": "x"}]}]}, {"a": "xy"}, True),
    ({"$or": [{"a": [{"numeric": [">", 5]}]}, {"a": [{"prefix": "x"}]}]}, {"a": 5}, False),
]

ARRAYS_OF_OBJECTS = [
    ({"items": {"sku": ["A"], "qty": [2]}}, {"items": [{"sku": "A", "qty": 2}]}, True),
    ({"items": {"sku": ["A"], "qty": [2]}}, {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}, False),
    ({"items": {"sku": [{"suffix": "-1"}], "qty": [{"numeric": [">", 1]}]}},
     {"items": [{"sku": "X-1", "qty": 1}, {"sku": "X-2", "qty": 5}]}, False),
    ({"items": {"sku": [{"suffix": "-1"}], "qty": [{"numeric": [">", 1]}]}},
     {"items": [{"sku": "X-2", "qty": 1}, {"sku": "X-1", "qty": 5}]}, True),
    ({"kind": ["o"], "items": {"sku": ["B"]}}, {"kind": "o", "items": [{"sku": "A"}, {"sku": "B"}]}, True),
    ({"items": {"sku": ["A"], "wrap": [{"exists": False}]}}, {"items": [{"sku": "A", "wrap": True}, {"sku": "B"}]}, False),
    ({"items": {"sku": ["A"], "wrap": [{"exists": False}]}}, {"items": [{"sku": "B", "wrap": True}, {"sku": "A"}]}, True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), OR + ARRAYS_OF_OBJECTS)
def test_or_and_arrays_of_objects(pattern, event, expected):
    rules = RuleSet()
    rules.add("r", pattern)
    assert compile_pattern(pattern).matches(event) is expected
    assert rules.matching(event) == (["r"] if expected else [])
