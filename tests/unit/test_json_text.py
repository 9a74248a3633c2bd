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
