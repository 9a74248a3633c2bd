"""The run's JSON text: orjson's speed, the standard library's answers."""

import json
import math

import pytest

from yafdp.backends.local.run_writer import ItemFilter
from yafdp.runtime import json_text


@pytest.mark.parametrize("value", [
    {"order_id": "ord-1", "amount": 12.5, "items": [{"q": 2}], "note": None},
    {"text": "Zürich café ✓", "nested": {"a": [1, 2.0, None, True, False]}},
    {"big": 2 ** 70, "negative": -(2 ** 65)},  # orjson refuses beyond 64 bits: the standard library writes them
    {1: "a non-string key"},
    [],
])
def test_the_text_is_what_the_standard_library_writes(value):
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json_text.dumps(value) == expected
    assert json_text.loads(json_text.dumps(value)) == json.loads(expected)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_float_that_is_not_finite_is_refused_however_deep_unless_allowed(bad):
    value = {"order_id": "ord-1", "note": None, "items": [{"unit_price": bad}]}
    with pytest.raises(ValueError):
        json_text.dumps(value)
    assert json_text.dumps(value, allow_nan=True) == json.dumps(value, separators=(",", ":"))
    assert math.isnan(json_text.loads('{"a":NaN}')["a"])


def test_what_json_cannot_hold_is_a_type_error():
    import datetime
    with pytest.raises(TypeError):
        json_text.dumps({"at": datetime.datetime(2026, 1, 1)})
    with pytest.raises(ValueError):
        json_text.loads("{not json")


def test_the_item_filter_never_forgets_an_item_and_rarely_claims_one():
    known = ItemFilter()
    added = [("notification", "message", f"ord-{i}#Payment_Success") for i in range(50_000)]
    for where in added:
        known.add(where)
    assert all(where in known for where in added)
    others = sum(("notification", "message", f"ord-{i}#Payment_Failed") in known for i in range(50_000))
    assert others < 50  # false positives only cost a SQLite read; at 50,000 items they are about 0.01%


class _Text(str):
    pass


@pytest.mark.parametrize("value", [
    {"order_id": "ord-1", "customer_id": "cus-0001", "deadline_seconds": 900},  # what orjson writes (a deadline)
    {"b": [1, 2.5, None, True], "a": {"z": 0.0001, "y": -0.0}},
    {"small": 9.9e-05, "smaller": 1e-05, "tiny": 5e-324},  # "9.9e-05", where orjson writes 0.000099
    {"large": 1e16, "largest": 1.7976931348623157e308, "just_below": 9999999999999998.0},  # "1e+16", not 1e16
    {"del": "\x7f", "accent": "Zürich", "line": "a\u2028b", "controls": "\x00\x1f\b\t\n\f\r\"\\"},  # escaped as \uXXXX
    {"nan": math.nan, "inf": -math.inf, "none": None},  # NaN and Infinity, which orjson writes as null
    {"big": 2 ** 64, "u64": 2 ** 64 - 1, 1: "a non-string key"},
    {"subclass": _Text("written as a str")},
    (1, "ord-1", '{"a":1}', None),  # a request row, as workload_record hashes it
])
def test_standard_text_is_the_standard_librarys_byte_for_byte(value):
    compact = json.JSONEncoder(separators=(",", ":")).encode
    assert json_text.standard_text(compact)(value) == compact(value)
    assert json_text.compact_ascii(value) == compact(value)
    ordered = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
    if not any(isinstance(key, int) for key in (value if isinstance(value, dict) else ())):
        assert json_text.standard_text(ordered)(value) == ordered(value)


def test_standard_text_refuses_what_the_standard_library_refuses():
    strict = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    with pytest.raises(ValueError):
        json_text.standard_text(strict)({"amount": math.nan})
    with pytest.raises(TypeError):
        json_text.compact_ascii({"when": object()})
