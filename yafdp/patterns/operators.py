"""One field's list of alternatives (``["a", {"prefix": "b"}, ...]``) turned into a single fast test.

Values in events keep their JSON types: a string never equals a number, ``null`` is neither ``""``
nor missing, and ``true`` is not ``1``; numbers compare as IEEE doubles, so ``300``, ``300.0`` and
``3e2`` are equal.

A number a double cannot hold exactly (an integer such as ``10000000000000001``, or a number written
with more digits than a double keeps, ``1.00000000000000001``, read from JSON text as a
:class:`~yafdp.patterns.jsontext.WrittenNumber`) is not compared as a double: like event-ruler since its
full-float64 numbers (aws/event-ruler PR #188, issue #179, 2024; ComparableNumber), such a value is only
ever equal to the same number written the same way, and never satisfies ``numeric``. Within the range the EventBridge user guide documents for numeric
matching (-1.0e9 to +1.0e9, "15 digits of precision, or six digits to the right of the decimal
point"; awsdocs/amazon-eventbridge-user-guide, eb-event-patterns-content-based-filtering.md)
every such number is an exact double, so the two readings agree there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

from yafdp.patterns.ipranges import address
from yafdp.patterns.jsontext import WrittenNumber
from yafdp.patterns.wildcard import wildcard_matcher

Test = Callable[[Any], bool]

# Kinds of alternative. EXACT, PREFIX and SUFFIX are the ones a RuleSet can index.
EXACT = "exact"
IP = "ip"
PREFIX = "prefix"
SUFFIX = "suffix"
PREFIX_IGNORE_CASE = "prefix-ignore-case"
SUFFIX_IGNORE_CASE = "suffix-ignore-case"
EQUALS_IGNORE_CASE = "equals-ignore-case"
WILDCARD = "wildcard"
NUMERIC = "numeric"
CIDR = "cidr"
EXISTS = "exists"
ABSENT = "absent"
ANYTHING_BUT = "anything-but"
ANYTHING_BUT_PREFIX = "anything-but-prefix"
ANYTHING_BUT_SUFFIX = "anything-but-suffix"
ANYTHING_BUT_IGNORE_CASE = "anything-but-ignore-case"
ANYTHING_BUT_WILDCARD = "anything-but-wildcard"

_TRUE = ("true",)  # keys for booleans that cannot collide with 1 and 0, as True == 1 in Python
_FALSE = ("false",)
_NO_KEY = ("unmatchable",)
_TEXT = "number-text"  # first item of the key of a number beyond a double's precision
EXACT_INTS = 2**53  # every int of at most this size is exactly a double


def exact_double(number: int | float) -> bool:
    """Whether a JSON number is exactly a double (every float is; an int only if no digit is lost).

    Examples
    --------
    >>> exact_double(9007199254740992), exact_double(9007199254740993), exact_double(0.1)
    (True, False, True)
    """
    if type(number) is WrittenNumber:
        return False
    if type(number) is not int:
        return True
    try:
        return float(number) == number  # Python compares an int and a float exactly
    except OverflowError:
        return False


class Alt(NamedTuple):
    """One alternative of a field: a kind (above) and its compiled argument."""

    kind: str
    arg: Any = None


def value_key(value: Any) -> Any:
    """The key under which an event or pattern scalar is compared for equality.

    Strings are themselves, numbers are doubles, booleans and ``null`` get keys of their own.

    Examples
    --------
    >>> value_key(300) == value_key(300.0) == value_key(3e2)
    True
    >>> value_key(True) == value_key(1)
    False
    >>> value_key(10000000000000001) == value_key(1e16)
    False
    """
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return _TRUE if value else _FALSE
    if kind is float:
        return value
    if kind is int:
        if -EXACT_INTS <= value <= EXACT_INTS or exact_double(value):
            return float(value)
        return (_TEXT, str(value))  # compared as its text, as event-ruler does
    if value is None:
        return None
    if kind is WrittenNumber:
        return (_TEXT, value.text)
    return _NO_KEY


def is_number(value: Any) -> bool:
    """Whether ``value`` is a JSON number (booleans are not; a :class:`WrittenNumber` is)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or type(value) is WrittenNumber


def always(_value: Any) -> bool:
    return True


def _exact_test(keys: frozenset) -> Test:
    if all(type(key) is str for key in keys):
        return keys.__contains__  # a non-string is never in a set of strings
    return lambda value: (value if type(value) is str else value_key(value)) in keys


def _numeric_test(low: float, low_open: bool, high: float, high_open: bool) -> Test:
    def test(value: Any) -> bool:
        kind = type(value)
        if kind is float:
            number = value
        elif kind is int:
            number = value_key(value)  # compared as a double, like EventBridge
            if type(number) is not float:
                return False  # beyond a double's precision: event-ruler compares it as text only
        else:
            return False
        if number < low or (low_open and number == low):
            return False
        return number < high or (not high_open and number == high)

    return test


def _cidr_test(size: int, low: int, high: int) -> Test:
    def test(value: Any) -> bool:
        if type(value) is not str:
            return False
        parsed = address(value)
        return parsed is not None and parsed[0] == size and low <= parsed[1] <= high

    return test


def _ip_test(size: int, number: int) -> Test:
    wanted = (size, number)
    return lambda value: type(value) is str and address(value) == wanted


def _case_variants_regex(text: str) -> str:
    # EventBridge folds case character by character: each pattern character also matches its
    # lower- and upper-case forms, and nothing else.
    parts = []
    for char in text:
        variants = sorted({char, char.lower(), char.upper()})
        parts.append("(?:" + "|".join(re.escape(variant) for variant in variants) + ")")
    return "".join(parts)


def ignore_case_test(text: str, where: str) -> Test:
    """A test for strings equal to (``where="equals"``), starting with or ending with ``text``, ignoring case.

    Examples
    --------
    >>> ignore_case_test("EventB", "prefix")("eventbridge")
    True
    >>> ignore_case_test(".png", "suffix")("IMAGE.PNG")
    True
    """
    size = len(text)
    if text.isascii():
        # An ASCII character's case variants are ASCII, so only ASCII text can match.
        lowered = text.lower()
        if where == "equals":
            return lambda v: type(v) is str and len(v) == size and v.isascii() and v.lower() == lowered
        if size == 0:
            return lambda v: type(v) is str
        if where == "prefix":
            return lambda v: type(v) is str and (head := v[:size]).isascii() and head.lower() == lowered
        return lambda v: type(v) is str and (tail := v[-size:]).isascii() and tail.lower() == lowered
    body = _case_variants_regex(text)
    if where == "equals":
        fullmatch = re.compile(body, re.DOTALL).fullmatch
        return lambda v: type(v) is str and fullmatch(v) is not None
    if where == "prefix":
        match = re.compile(body, re.DOTALL).match
        return lambda v: type(v) is str and match(v) is not None
    search = re.compile("(?:" + body + r")\Z", re.DOTALL).search
    return lambda v: type(v) is str and search(v) is not None


def _negated(test: Test) -> Test:
    return lambda value: not test(value)


def _any_of(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]

    def test(value: Any) -> bool:
        for each in tests:
            if each(value):
                return True
        return False

    return test


def _alternative_test(alt: Alt) -> Test:
    kind, arg = alt
    if kind == IP:
        return _ip_test(*arg)
    if kind == PREFIX_IGNORE_CASE:
        return ignore_case_test(arg, "prefix")
    if kind == SUFFIX_IGNORE_CASE:
        return ignore_case_test(arg, "suffix")
    if kind == EQUALS_IGNORE_CASE:
        return ignore_case_test(arg, "equals")
    if kind == WILDCARD:
        matches = wildcard_matcher(arg)
        return lambda v: type(v) is str and matches(v)
    if kind == NUMERIC:
        return _numeric_test(*arg)
    if kind == CIDR:
        return _cidr_test(*arg)
    if kind == ANYTHING_BUT:
        strings, numbers = arg
        if numbers:
            return lambda v: not ((type(v) is int or type(v) is float) and value_key(v) in numbers)
        return lambda v: v not in strings  # only strings are in the set, so other types pass
    if kind == ANYTHING_BUT_PREFIX:
        return lambda v: not (type(v) is str and v.startswith(arg))
    if kind == ANYTHING_BUT_SUFFIX:
        return lambda v: not (type(v) is str and v.endswith(arg))
    if kind == ANYTHING_BUT_IGNORE_CASE:
        if not arg:
            return always
        return _negated(_any_of([ignore_case_test(text, "equals") for text in arg]))
    if kind == ANYTHING_BUT_WILDCARD:
        matchers = [wildcard_matcher(text) for text in arg]
        return lambda v: not (type(v) is str and any(m(v) for m in matchers))
    raise AssertionError(f"unknown alternative {kind}")


def field_test(alts: list[Alt]) -> tuple[Test | None, bool]:
    """Combine a field's alternatives into ``(test on one event value, matches when absent)``.

    ``test`` is ``None`` when the only alternative is ``{"exists": false}``.

    Examples
    --------
    >>> test, absent_ok = field_test([Alt(EXACT, "a"), Alt(PREFIX, "b")])
    >>> test("a"), test("bcd"), test("c"), absent_ok
    (True, True, False, False)
    """
    absent_ok = any(alt.kind == ABSENT for alt in alts)
    if any(alt.kind == EXISTS for alt in alts):
        return always, absent_ok
    exact = frozenset(alt.arg for alt in alts if alt.kind == EXACT)
    prefixes = tuple(alt.arg for alt in alts if alt.kind == PREFIX)
    suffixes = tuple(alt.arg for alt in alts if alt.kind == SUFFIX)
    tests: list[Test] = []
    if exact:
        tests.append(_exact_test(exact))
    if prefixes:
        tests.append(lambda v: type(v) is str and v.startswith(prefixes))
    if suffixes:
        tests.append(lambda v: type(v) is str and v.endswith(suffixes))
    tests.extend(
        _alternative_test(alt) for alt in alts if alt.kind not in (EXACT, PREFIX, SUFFIX, ABSENT)
    )
    return (_any_of(tests) if tests else None), absent_ok
