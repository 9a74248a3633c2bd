"""The event-pattern engine: each operator (examples from the EventBridge docs), arrays, types, errors,
the indexed RuleSet against a plain loop, and the ``yafdp test-pattern`` command."""

from __future__ import annotations

import json
import random

import pytest

from yafdp.cli import main
from yafdp.patterns import Pattern, PatternError, RuleSet, compile_pattern
from yafdp.patterns.jsontext import load_event_text


def matches(pattern, event) -> bool:
    return compile_pattern(pattern).matches(event)


def reason(pattern) -> str:
    with pytest.raises(PatternError) as raised:
        compile_pattern(pattern)
    assert str(raised.value).startswith("Event pattern is not valid. Reason: ")
    return raised.value.reason


EC2_EVENT = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
}


# -- exact values ----------------------------------------------------------------------------


def test_exact_values_match_the_documented_ec2_example():
    pattern = {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["terminated"]},
    }
    assert matches(pattern, EC2_EVENT)
    assert not matches({**pattern, "detail": {"state": ["running"]}}, EC2_EVENT)


def test_any_value_of_the_list_matches():
    assert matches({"source": ["aws.s3", "aws.ec2"]}, EC2_EVENT)


def test_empty_string_matches_only_empty_string():
    event = {"detail": {"eventVersion": "", "responseElements": None}}
    assert matches({"detail": {"eventVersion": [""]}}, event)
    assert not matches({"detail": {"responseElements": [""]}}, event)
    assert not matches({"detail": {"missing": [""]}}, event)


def test_null_matches_null_only():
    event = {"detail": {"eventVersion": "", "responseElements": None}}
    assert matches({"detail": {"responseElements": [None]}}, event)
    assert not matches({"detail": {"eventVersion": [None]}}, event)
    assert not matches({"detail": {"missing": [None]}}, event)
    assert not matches({"detail": {"responseElements": ["null"]}}, event)


def test_booleans_are_not_numbers():
    assert matches({"flag": [True]}, {"flag": True})
    assert not matches({"flag": [1]}, {"flag": True})
    assert not matches({"flag": [True]}, {"flag": 1})
    assert not matches({"flag": [False]}, {"flag": 0})


def test_numbers_and_strings_are_different_types():
    assert not matches({"count": [300]}, {"count": "300"})
    assert not matches({"count": ["300"]}, {"count": 300})


def test_equal_numbers_match_whatever_their_spelling():
    assert matches({"number": [300]}, {"number": 300.0})
    assert matches({"number": [3e2]}, {"number": 300})
    assert not matches({"number": [300]}, {"number": 300.5})


def test_missing_field_never_matches_a_value():
    assert not matches({"detail": {"state": ["terminated"]}}, {"detail": {}})
    assert not matches({"detail": {"state": ["terminated"]}}, {})


def test_field_names_are_case_sensitive():
    assert not matches({"SOURCE": ["aws.ec2"]}, EC2_EVENT)


def test_ip_address_value_matches_other_spellings_of_that_address():
    # EventBridge reads a plain value that is an IP address as that address.
    assert matches({"ip": ["2001:db8::1"]}, {"ip": "2001:0db8:0000:0000:0000:0000:0000:0001"})
    assert matches({"ip": ["10.0.0.1"]}, {"ip": "10.0.0.1"})
    assert not matches({"ip": ["10.0.0.1"]}, {"ip": "10.0.0.2"})


# -- nesting and dotted names ----------------------------------------------------------------


def test_dotted_pattern_key_reaches_nested_event_field():
    assert matches({"detail": {"state.status": ["running"]}}, {"detail": {"state": {"status": "running"}}})


def test_nested_pattern_reaches_dotted_event_key():
    assert matches({"detail": {"state": {"status": ["running"]}}}, {"detail": {"state.status": "running"}})


def test_pattern_does_not_look_inside_json_encoded_strings():
    assert not matches({"detail": {"my-key": ["my-value"]}}, {"detail": '{"my-key": "my-value"}'})


# -- prefix and suffix -----------------------------------------------------------------------


def test_prefix_matches_start_of_string():
    assert matches({"time": [{"prefix": "2017-12-22"}]}, EC2_EVENT)
    assert not matches({"time": [{"prefix": "2017-10-02"}]}, EC2_EVENT)


def test_prefix_does_not_match_numbers():
    assert not matches({"count": [{"prefix": "1"}]}, {"count": 12})


def test_empty_prefix_matches_any_string_but_nothing_else():
    assert matches({"source": [{"prefix": ""}]}, EC2_EVENT)
    assert not matches({"count": [{"prefix": ""}]}, {"count": 1})
    assert not matches({"count": [{"prefix": ""}]}, {"count": None})


def test_prefix_ignoring_case():
    pattern = {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}}
    assert matches(pattern, {"detail": {"service": "eventbridge"}})
    assert matches(pattern, {"detail": {"service": "EVENTBRIDGE"}})
    assert not matches(pattern, {"detail": {"service": "sns"}})


def test_suffix_matches_end_of_string_and_is_case_sensitive():
    assert matches({"FileName": [{"suffix": ".png"}]}, {"FileName": "image.png"})
    assert not matches({"FileName": [{"suffix": ".png"}]}, {"FileName": "image.PNG"})


def test_suffix_ignoring_case():
    pattern = {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}
    assert matches(pattern, {"detail": {"FileName": "image.PNG"}})
    assert not matches(pattern, {"detail": {"FileName": "image.jpg"}})


def test_suffix_does_not_match_numbers():
    assert not matches({"n": [{"suffix": "0"}]}, {"n": 10})


# -- equals-ignore-case ----------------------------------------------------------------------


def test_equals_ignore_case_matches_any_casing():
    pattern = {"detail-type": [{"equals-ignore-case": "ec2 instance state-change notification"}]}
    assert matches(pattern, EC2_EVENT)
    assert not matches({"detail-type": [{"equals-ignore-case": "ec2 instance"}]}, EC2_EVENT)


def test_equals_ignore_case_handles_non_ascii_letters():
    assert matches({"name": [{"equals-ignore-case": "ÉTÉ"}]}, {"name": "été"})
    assert not matches({"name": [{"equals-ignore-case": "k"}]}, {"name": "\u212a"})  # Kelvin sign


def test_equals_ignore_case_only_matches_strings():
    assert not matches({"n": [{"equals-ignore-case": "1"}]}, {"n": 1})


# -- wildcard --------------------------------------------------------------------------------


def test_wildcard_matches_documented_examples():
    assert matches({"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
                   {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus"})
    assert matches({"FileName": [{"wildcard": "*.png"}]}, {"FileName": "dir/image.png"})
    assert not matches({"FileName": [{"wildcard": "*.png"}]}, {"FileName": "image.jpg"})


def test_wildcard_star_matches_empty_and_many_characters():
    pattern = {"key": [{"wildcard": "a*b"}]}
    assert matches(pattern, {"key": "ab"})
    assert matches(pattern, {"key": "a/x/y/b"})
    assert not matches(pattern, {"key": "a/x/y/bc"})


def test_wildcard_escaped_star_and_backslash_are_literal():
    assert matches({"key": [{"wildcard": "a\\*b"}]}, {"key": "a*b"})
    assert not matches({"key": [{"wildcard": "a\\*b"}]}, {"key": "axb"})
    assert matches({"key": [{"wildcard": "a\\\\*"}]}, {"key": "a\\anything"})


def test_empty_wildcard_matches_only_empty_string():
    assert matches({"key": [{"wildcard": ""}]}, {"key": ""})
    assert not matches({"key": [{"wildcard": ""}]}, {"key": "x"})


def test_wildcard_does_not_match_numbers():
    assert not matches({"key": [{"wildcard": "*"}]}, {"key": 5})


class _Scanned(str):
    """A string that counts the characters a search in it looks at: ``find`` over ``[start, end)`` looks at those
    up to the end of what it found, or all of them when it finds nothing."""

    def find(self, piece, start=0, end=None):
        end = len(self) if end is None else end
        found = str.find(self, piece, start, end)
        self.looked_at = getattr(self, "looked_at", 0) + ((found + len(piece)) if found >= 0 else end) - start
        return found


@pytest.mark.parametrize(("wildcard", "value", "expected"), [
    ("*a*a*a*b", "a" * 100_000, False),                 # the backtracking regular expression took 12 s at 800
    ("*a*a*a*b", "a" * 100_000 + "cb", True),
    ("*a*a*a*b", "a" * 100_000 + "b", True),
    ("x*y*y*z", "x" + "y" * 50_000 + "a" * 50_000 + "z", True),
    ("x*q*y*z", "x" + "y" * 100_000 + "z", False),       # q is never found: one scan of the value, not one per y
    ("*\\**a*b", "*" * 100_000 + "ab", True),           # an escaped star is a literal
])
def test_wildcard_matching_looks_at_each_character_of_the_value_at_most_once(wildcard, value, expected):
    """Linear time in the value: the searches for the pieces between the stars look at disjoint stretches of it,
    so no character is looked at twice, whatever the pattern (the complexity check accepts ``*a*a*a*b``)."""
    from yafdp.patterns.wildcard import check_complexity, wildcard_matcher

    check_complexity([wildcard])
    scanned = _Scanned(value)
    assert wildcard_matcher(wildcard)(scanned) is expected
    assert getattr(scanned, "looked_at", 0) <= len(value)
    assert matches({"key": [{"wildcard": wildcard}]}, {"key": value}) is expected
    assert matches({"key": [{"anything-but": {"wildcard": wildcard}}]}, {"key": value}) is not expected


def test_wildcard_matching_agrees_with_a_plain_search_over_every_split():
    """Taking each piece at its leftmost place never misses a match: checked against trying every way to split
    the value, on short random values and patterns over a two-letter alphabet (where overlaps abound)."""
    from functools import lru_cache

    from yafdp.patterns.wildcard import wildcard_matcher

    def reference(pattern: str, value: str) -> bool:
        @lru_cache(maxsize=None)
        def at(p: int, v: int) -> bool:
            if p == len(pattern):
                return v == len(value)
            if pattern[p] == "*":
                return at(p + 1, v) or (v < len(value) and at(p, v + 1))
            return v < len(value) and value[v] == pattern[p] and at(p + 1, v + 1)
        return at(0, 0)

    rng = random.Random(27)
    for _ in range(3000):
        pattern = "".join(rng.choice("ab*") for _ in range(rng.randrange(8))).replace("**", "*")
        value = "".join(rng.choice("ab") for _ in range(rng.randrange(10)))
        assert wildcard_matcher(pattern)(value) is reference(pattern, value), (pattern, value)


# -- anything-but ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operand", "excluded", "allowed"),
    [
        ("initializing", "initializing", "pending"),
        (123, 123, 789),
        (["stopped", "overloaded"], "stopped", "pending"),
        ([100, 200, 300], 300.0, 999),
        ({"prefix": "init"}, "init-prefix", "post-init"),
        ({"suffix": ".txt"}, "file.txt", "file.txt.bak"),
        ({"suffix": [".txt", ".jpg"]}, "file.jpg", "file.png"),
        ({"equals-ignore-case": "initializing"}, "INITIALIZING", "pending"),
        ({"equals-ignore-case": ["initializing", "stopped"]}, "Stopped", "pending"),
        ({"wildcard": "*/lib/*"}, "/usr/lib/x", "/usr/bin/x"),
        ({"wildcard": ["*/init/*", "*/dir/*"]}, "a/dir/b", "a/post/b"),
    ],
)
def test_anything_but_excludes_its_values_and_allows_others(operand, excluded, allowed):
    pattern = {"detail": {"field": [{"anything-but": operand}]}}
    assert not matches(pattern, {"detail": {"field": excluded}})
    assert matches(pattern, {"detail": {"field": allowed}})


@pytest.mark.parametrize(
    "operand",
    ["x", 1, ["x", "y"], [1, 2], {"prefix": "x"}, {"suffix": "x"}, {"equals-ignore-case": "x"}, {"wildcard": "x*"}],
)
def test_anything_but_never_matches_a_missing_field(operand):
    assert not matches({"detail": {"field": [{"anything-but": operand}]}}, {"detail": {}})


@pytest.mark.parametrize("operand", ["x", ["x"], {"prefix": "x"}, {"suffix": "x"}, {"wildcard": "x*"}])
def test_anything_but_matches_null_and_other_types(operand):
    pattern = {"field": [{"anything-but": operand}]}
    assert matches(pattern, {"field": None})
    assert matches(pattern, {"field": 12})
    assert matches(pattern, {"field": True})


def test_anything_but_number_matches_a_string_of_that_number():
    assert matches({"field": [{"anything-but": [100]}]}, {"field": "100"})


def test_anything_but_on_array_matches_when_some_element_is_not_excluded():
    pattern = {"tags": [{"anything-but": "red"}]}
    assert matches(pattern, {"tags": ["red", "blue"]})
    assert not matches(pattern, {"tags": ["red", "red"]})
    assert not matches(pattern, {"tags": []})


def test_anything_but_wildcard_empty_excludes_only_empty_string():
    pattern = {"path": [{"anything-but": {"wildcard": ""}}]}
    assert matches(pattern, {"path": "dir/file"})
    assert not matches(pattern, {"path": ""})


# -- numeric ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "inside", "outside"),
    [
        (["=", 301.8], 301.8, 301.9),
        (["=", 3.018e2], 301.8, 300),
        (["<", 10], 9, 10),
        (["<=", 10], 10, 10.5),
        ([">", 0], 0.1, 0),
        ([">=", 0], 0, -1),
        ([">", 0, "<=", 5], 5, 0),
        ([">", 0, "<", 5], 4.99, 5),
        ([">=", 0, "<", 5], 0, 5),
        ([">=", -5e9, "<=", 5e9], 4_999_999_999, 5_000_000_001),
    ],
)
def test_numeric_comparisons(condition, inside, outside):
    pattern = {"detail": {"n": [{"numeric": condition}]}}
    assert matches(pattern, {"detail": {"n": inside}})
    assert not matches(pattern, {"detail": {"n": outside}})


def test_numbers_compare_as_doubles_even_beyond_five_billion():
    # event-ruler compares IEEE doubles since 2024 (PR #188); older docs quoted a +/-5e9 limit.
    assert matches({"n": [{"numeric": [">", 1e10]}]}, {"n": 10**11})
    assert matches({"n": [10**20]}, {"n": 1e20})


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        # The user guide's statement: numeric matching on values from -1.0e9 to +1.0e9 inclusive,
        # with 15 digits of precision (six to the right of the decimal point).
        ([">=", -1e9, "<=", 1e9], -1_000_000_000, True),
        ([">=", -1e9, "<=", 1e9], 1_000_000_000, True),
        ([">=", -1e9, "<=", 1e9], 1_000_000_000.000001, False),
        ([">", 999_999_999.999998], 999_999_999.999999, True),
        (["<", -999_999_999.999998], -999_999_999.999999, True),
        (["=", 123_456_789.123456], 123_456_789.123456, True),
        (["=", 123_456_789.123456], 123_456_789.123457, False),
        (["<", 0.000001], 0.0000005, True),
        ([">", 0.000001], 0.000002, True),
    ],
)
def test_documented_numeric_range_and_precision(condition, value, expected):
    assert matches({"n": [{"numeric": condition}]}, {"n": value}) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        {"n": [{"numeric": ["=", 9007199254740993]}]},
        {"n": [{"numeric": [">", 0, "<", 9007199254740993]}]},
        {"n": [{"anything-but": 9007199254740993}]},
        {"n": [{"anything-but": [1, 10**400]}]},
        '{"n": [{"numeric": [">", 9007199254740993]}]}',
    ],
)
def test_numeric_operand_a_double_cannot_hold_is_refused(pattern):
    # event-ruler since 2024 refuses these ("Cannot compare number ..."); 2**53 + 1 has no double.
    assert reason(pattern).startswith("Cannot compare number ")


def test_numbers_a_double_can_hold_are_accepted_as_operands():
    assert matches({"n": [{"numeric": ["=", 9007199254740992]}]}, {"n": 9007199254740992})
    assert matches({"n": [{"anything-but": [0.1]}]}, {"n": 0.2})


def test_event_number_beyond_double_precision_is_compared_as_text():
    # event-ruler compares 10000000000000001 (no double holds it) by its text, not as 1e16.
    big = 10_000_000_000_000_001
    assert not matches({"n": [1e16]}, {"n": big})
    assert matches({"n": [1e16]}, {"n": 10_000_000_000_000_000})
    assert matches({"n": [big]}, {"n": big})
    assert not matches({"n": [big]}, {"n": 1e16})
    assert not matches({"n": [{"numeric": [">", 0]}]}, {"n": big})
    assert matches({"n": [{"numeric": [">", 0]}]}, {"n": 10_000_000_000_000_000})
    assert matches({"n": [{"anything-but": [5]}]}, {"n": big})
    assert not matches({"n": [{"numeric": [">", 0]}]}, {"n": 10**400})


@pytest.mark.parametrize("operand", ["1.00000000000000001", "1.0000000000000000000001e3", "3.14159265358979323846",
                                     "1e400", "-4.9e-325"])
@pytest.mark.parametrize("template", ['{"n": [{"numeric": [">", %s]}]}', '{"n": [{"numeric": [">", 0, "<=", %s]}]}',
                                      '{"n": [{"numeric": ["=", %s]}]}', '{"n": [{"anything-but": %s}]}',
                                      '{"n": [{"anything-but": [7, %s]}]}'])
def test_a_written_operand_with_more_digits_than_a_double_holds_is_refused(template, operand):
    # event-ruler reads the operand's text as a BigDecimal and refuses it when its double writes back otherwise
    # (ComparableNumber.generate: "Cannot compare number"); Python's float() would have rounded it silently.
    assert reason(template % operand).startswith("Cannot compare number " + operand)


@pytest.mark.parametrize("operand", ["0.1", "0.30000000000000004", "1.10", "3e2", "-0.0", "1.7976931348623157e308"])
def test_a_written_operand_a_double_holds_is_accepted(operand):
    assert matches('{"n": [{"numeric": [">=", %s]}]}' % operand, {"n": float(operand)})


def test_an_event_number_written_with_more_digits_than_a_double_holds_is_compared_as_its_text():
    # The same rule for the event: the number is not comparable, so numeric never matches it and an exact value only
    # matches the same text (ByteMachine.transitionOn falls back to the value's text).
    event = load_event_text('{"n": 1.00000000000000001}')
    assert not matches({"n": [{"numeric": [">", 0]}]}, event)
    assert not matches({"n": [1]}, event) and not matches('{"n": [1.0]}', event)
    assert matches('{"n": [1.00000000000000001]}', event)
    assert not matches('{"n": [1.000000000000000010]}', event)  # another text of the same decimal
    assert not matches('{"n": [1.00000000000000001]}', {"n": 1.0})
    assert matches({"n": [{"anything-but": [1]}]}, event)
    assert matches({"n": [{"exists": True}]}, event)
    rules = RuleSet()
    rules.add("exact", '{"n": [1.00000000000000001]}')
    rules.add("range", {"n": [{"numeric": [">", 0]}]})
    assert rules.matching(event) == ["exact"]


def test_cli_compares_the_events_numbers_as_written(capsys):
    event = {**EC2_EVENT, "detail": {"total": 0}}
    text = json.dumps(event).replace('"total": 0', '"total": 1.00000000000000001')
    assert main(["test-pattern", "--pattern", '{"detail": {"total": [{"numeric": [">", 0]}]}}', "--event", text]) == 1
    assert main(["test-pattern", "--pattern", '{"detail": {"total": [1.00000000000000001]}}', "--event", text]) == 0
    assert capsys.readouterr().out == "false\ntrue\n"


def test_numeric_only_matches_json_numbers():
    pattern = {"n": [{"numeric": [">", 100]}]}
    assert matches(pattern, {"n": 101.0})
    assert not matches(pattern, {"n": "300"})
    assert not matches(pattern, {"n": None})
    assert not matches(pattern, {"n": True})


def test_numeric_and_anything_but_alternatives():
    pattern = {"N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}
    assert matches(pattern, {"N": "42"})
    assert matches(pattern, {"N": 101})
    assert not matches(pattern, {"N": "101"})


def test_documented_complex_example():
    pattern = {
        "time": [{"prefix": "2017-10-02"}],
        "detail": {
            "state": [{"anything-but": "initializing"}],
            "c-count": [{"numeric": [">", 0, "<=", 5]}],
            "d-count": [{"numeric": ["<", 10]}],
            "x-limit": [{"anything-but": [100, 200, 300]}],
        },
    }
    event = {"time": "2017-10-02T18:43:48Z",
             "detail": {"state": "running", "c-count": 5, "d-count": 3, "x-limit": 301.8}}
    assert matches(pattern, event)
    assert not matches(pattern, {**event, "detail": {**event["detail"], "x-limit": 300}})


# -- cidr ------------------------------------------------------------------------------------


def test_cidr_matches_ipv4_block():
    pattern = {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}
    assert matches(pattern, {"detail": {"sourceIPAddress": "10.0.0.255"}})
    assert not matches(pattern, {"detail": {"sourceIPAddress": "10.0.1.0"}})
    assert not matches(pattern, {"detail": {"sourceIPAddress": "10.0.0.256"}})
    assert not matches(pattern, {"detail": {"sourceIPAddress": 167772161}})


def test_cidr_matches_ipv6_block():
    pattern = {"ip": [{"cidr": "2001:db8:1234:1a00::/64"}]}
    assert matches(pattern, {"ip": "2001:0db8:1234:1a00:0000:0000:0000:0001"})
    assert not matches(pattern, {"ip": "2001:db8:1234:1a01::"})
    assert not matches(pattern, {"ip": "10.0.0.1"})


def test_cidr_block_covers_its_network_whatever_the_host_bits_written():
    # AWS's answer (issue 13; the user guide's "IP address matching"): 10.0.0.5/24 names the
    # network 10.0.0.0/24, so it matches 10.0.0.1 although that is below the written address.
    pattern = {"ip": [{"cidr": "10.0.0.5/24"}]}
    assert matches(pattern, {"ip": "10.0.0.1"})
    assert matches(pattern, {"ip": "10.0.0.0"})
    assert matches(pattern, {"ip": "10.0.0.255"})
    assert not matches(pattern, {"ip": "10.0.1.0"})
    assert matches({"ip": [{"cidr": "2001:db8::ffff/32"}]}, {"ip": "2001:db8::1"})


# -- exists ----------------------------------------------------------------------------------


def test_exists_true_matches_any_leaf_value_including_null():
    pattern = {"detail": {"state": [{"exists": True}]}}
    assert matches(pattern, {"detail": {"state": "pending"}})
    assert matches(pattern, {"detail": {"state": None}})
    assert not matches(pattern, {"detail": {"other": 1}})


def test_exists_only_sees_leaves():
    assert not matches({"detail": {"c-count": [{"exists": True}]}}, {"detail": {"c-count": {"c1": 100}}})
    assert matches({"detail": {"c-count": [{"exists": False}]}}, {"detail": {"c-count": {"c1": 100}}})


def test_exists_false_matches_missing_field_and_empty_array():
    assert matches({"detail": {"state": [{"exists": False}]}}, {"detail": {}})
    assert matches({"resources": [{"exists": False}]}, {"resources": []})
    assert not matches({"resources": [{"exists": True}]}, {"resources": []})
    assert not matches({"detail": {"state": [{"exists": False}]}}, {"detail": {"state": None}})


def test_exists_false_or_value_alternatives():
    pattern = {"S": [{"anything-but": ["roses"]}, {"exists": False}]}
    assert matches(pattern, {"S": "tulips"})
    assert matches(pattern, {"other": 1})
    assert not matches(pattern, {"S": "roses"})


# -- arrays ----------------------------------------------------------------------------------


def test_array_in_event_matches_when_any_element_matches():
    pattern = {"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0", "other"]}
    assert matches(pattern, {"resources": ["x", "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]})
    assert not matches(pattern, {"resources": ["x", "y"]})


def test_fields_from_different_array_elements_do_not_combine():
    pattern = {"detail": {"items": {"sku": ["A"], "qty": [2]}}}
    assert matches(pattern, {"detail": {"items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]}})
    assert not matches(pattern, {"detail": {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}})


def test_nested_arrays_of_objects_keep_element_consistency():
    pattern = {"a": {"b": {"x": [1], "y": [2]}}}
    assert matches(pattern, {"a": [{"b": [{"x": 1, "y": 3}, {"x": 1, "y": 2}]}]})
    assert not matches(pattern, {"a": [{"b": [{"x": 1}]}, {"b": [{"y": 2}]}]})


def test_field_outside_array_combines_with_any_element():
    pattern = {"detail": {"kind": ["order"], "items": {"sku": ["B"]}}}
    assert matches(pattern, {"detail": {"kind": "order", "items": [{"sku": "A"}, {"sku": "B"}]}})


def test_exists_within_array_elements():
    pattern = {"detail": {"automations": {"id": [{"exists": True}]}}}
    assert matches(pattern, {"detail": {"automations": [{"key1": "v"}, {"id": "x"}]}})


def test_exists_false_is_judged_within_the_chosen_array_element():
    # EventBridge checks absence against the element chosen for the fields before it (by path).
    pattern = {"items": {"a": [1], "b": [{"exists": False}]}}
    assert matches(pattern, {"items": [{"a": 1}, {"b": 2}]})
    assert not matches(pattern, {"items": [{"a": 1, "b": 2}]})


def test_empty_array_in_event_is_like_a_missing_field():
    assert not matches({"resources": [None]}, {"resources": []})


# -- $or -------------------------------------------------------------------------------------


def test_or_matches_when_any_branch_matches():
    pattern = {"detail": {"$or": [
        {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
        {"d-count": [{"numeric": ["<", 10]}]},
        {"x-limit": [{"numeric": ["=", 3.018e2]}]},
    ]}}
    assert matches(pattern, {"detail": {"c-count": 0, "d-count": 0, "x-limit": 901.8}})
    assert not matches(pattern, {"detail": {"c-count": 0, "d-count": 10, "x-limit": 901.8}})


def test_or_combines_with_sibling_fields():
    pattern = {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]}
    assert matches(pattern, {"source": "aws.cloudwatch", "namespace": "AWS/EC2"})
    assert not matches(pattern, {"source": "aws.ec2", "namespace": "AWS/EC2"})


def test_nested_or_inside_or():
    pattern = {"$or": [
        {"a": ["1"]},
        {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]},
    ]}
    assert matches(pattern, {"b": "2", "d": "4"})
    assert not matches(pattern, {"b": "2"})


def test_or_not_followed_by_an_array_is_an_ordinary_field_name():
    pattern = {"source": ["aws.cloudwatch"], "$or": {"metricType": ["MetricType"]}}
    assert matches(pattern, {"source": "aws.cloudwatch", "$or": {"metricType": "MetricType"}})


def test_or_with_a_single_object_is_invalid():
    assert reason({"$or": [{"a": ["x"]}]}) == "There must have at least 2 Objects in $or relationship."


def test_or_cannot_contain_operator_names():
    assert reason({"$or": [{"numeric": [1]}, {"a": ["x"]}]}) == (
        "numeric is Ruler reserved fieldName which cannot be used inside $or."
    )


def _or_product(*sizes: int) -> dict:
    """A short pattern whose $or choices multiply out to the product of ``sizes`` branches."""
    return {f"k{group}": {"$or": [{f"v{choice}": ["1"]} for choice in range(size)]}
            for group, size in enumerate(sizes)}


def test_or_is_refused_beyond_1000_combinations():
    assert len(compile_pattern(_or_product(10, 10, 10)).branches) == 1000
    assert reason(_or_product(7, 11, 13)) == "Rule is too complex - its $or combinations exceed 1000"  # 1001
    assert reason(_or_product(2, 2, 2, 2, 2, 2, 2, 2, 2, 2)).startswith("Rule is too complex")  # 1024


# -- duplicate keys and text input -----------------------------------------------------------


def test_pattern_accepted_as_json_text():
    assert matches('{"source": ["aws.ec2"]}', EC2_EVENT)


def test_repeated_key_in_text_replaces_the_earlier_value():
    text = '{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "us-east"}]}}'
    assert matches(text, {"detail": {"location": "eu-central-1"}})


def test_repeated_object_key_in_text_merges_fields():
    text = '{"detail": {"a": ["1"]}, "detail": {"b": ["2"]}}'
    assert matches(text, {"detail": {"a": "1", "b": "2"}})
    assert not matches(text, {"detail": {"b": "2"}})


# -- invalid patterns ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"int": 42}, '"int" must be an object or an array'),
        ({"resources": []}, "Empty arrays are not allowed"),
        ({"detail": {}}, "Empty objects are not allowed"),
        ({"a": [[1]]}, "Match value must be String, number, true, false, or null"),
        ({"a": [{}]}, "Match expression name not found"),
        ({"a": [{"EXISTS": True}]}, "Unrecognized match type EXISTS"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, "Only one key allowed in match expression"),
        ({"a": [{"prefix": 123}]}, "prefix match pattern must be a string"),
        ({"a": [{"prefix": {"equals-ignore-case": 1}}]}, "equals-ignore-case match pattern must be a string"),
        ({"a": [{"prefix": {"wildcard": "x"}}]}, "Unsupported prefix pattern: wildcard"),
        ({"a": [{"suffix": ["x"]}]}, "suffix match pattern must be a string"),
        ({"a": [{"equals-ignore-case": ["x"]}]}, "equals-ignore-case match pattern must be a string"),
        ({"a": [{"wildcard": 1}]}, "wildcard match pattern must be a string"),
        ({"a": [{"wildcard": "a**"}]}, "Consecutive wildcard characters at pos 2"),
        ({"a": [{"wildcard": "a\\b"}]}, "Invalid escape character at pos 2"),
        ({"a": [{"wildcard": "*:*:*:*:*:event-bus/*"}]},
         "Rule is too complex - try using fewer wildcard characters or fewer repeating character "
         "sequences after a wildcard character"),
        ({"a": [{"exists": "yes"}]}, "exists match pattern must be either true or false."),
        ({"a": [{"numeric": 10}]}, "Value of numeric must be an array."),
        ({"a": [{"numeric": []}]}, "Invalid member in numeric match: ]"),
        ({"a": [{"numeric": ["==", 1]}]}, "Unrecognized numeric range operator: =="),
        ({"a": [{"numeric": ["=", "1"]}]}, "Value of equals must be numeric"),
        ({"a": [{"numeric": [">", 0, "<"]}]}, "Value of < must be numeric"),
        ({"a": [{"numeric": [">", 0, ">", 0]}]}, "Bad numeric range operator: >"),
        ({"a": [{"numeric": ["<", 5, ">", 0]}]}, "Too many elements in numeric expression"),
        ({"a": [{"numeric": [">", 0, "<", 5, 6]}]}, "Too many terms in numeric range expression"),
        ({"a": [{"numeric": [">", 5, "<", 1]}]}, "Bottom must be less than top"),
        ({"a": [{"anything-but": None}]}, "Value of anything-but must be an array or single string/number value."),
        ({"a": [{"anything-but": ["x", None]}]}, "Inside anything but list, start|null|boolean is not supported."),
        ({"a": [{"anything-but": ["x", 1]}]},
         "Inside anything but list, either all values are number or string, mixed type is not supported"),
        ({"a": [{"anything-but": {"exists": True}}]}, "Unsupported anything-but pattern: exists"),
        ({"a": [{"anything-but": {"prefix": ""}}]}, "Null prefix/suffix not allowed"),
        ({"a": [{"anything-but": {"suffix": [1]}}]}, "prefix/suffix match pattern must be a string"),
        ({"a": [{"anything-but": {"equals-ignore-case": 1}}]},
         "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
        ({"a": [{"anything-but": {"wildcard": ["a**"]}}]}, "Consecutive wildcard characters at pos 2"),
        ({"a": [{"cidr": ["10.0.0.0/8"]}]}, "prefix match pattern must be a string"),
        ({"a": [{"cidr": "10.0.0.0"}]}, "Malformed CIDR, one '/' required"),
        ({"a": [{"cidr": "10.0.0.0/x"}]}, "Malformed CIDR, mask bits must be an integer"),
        ({"a": [{"cidr": "xx.11.xx/8"}]}, "Nonstandard IP address: xx.11.xx"),
        ({"a": [{"cidr": "10.0.0.300/8"}]}, "Invalid IP address: 10.0.0.300"),
        ({"a": [{"cidr": "10.0.0.0/32"}]}, "IPv4 mask bits must be < 32"),
        ({"$or": {"a": 1}}, "It must be an Array followed with $or."),
    ],
)
def test_invalid_pattern_reports_eventbridge_reason(pattern, expected):
    assert reason(pattern) == expected


def test_pattern_error_is_a_value_error():
    assert issubclass(PatternError, ValueError)


def test_pattern_that_is_not_an_object_is_invalid():
    assert reason(["source"]) == "Filter is not an object"


def test_malformed_json_text_is_located_like_eventbridge():
    assert reason('{"source": ["aws.ec2"],}') == (
        "Unexpected character ('}' (code 125)): was expecting double-quote to start field name\n"
        ' at [Source: (String)"{"source": ["aws.ec2"],}"; line: 1, column: 24]'
    )


def test_pattern_longer_than_the_quota_is_invalid():
    long_pattern = {"source": ["x" * 2100]}
    assert "maximum is 2048" in reason(long_pattern)
    assert compile_pattern(long_pattern, max_length=4096).matches({"source": "x" * 2100})


def test_four_wildcards_with_shared_start_are_too_complex_but_three_are_not():
    names = ["SharedStack", "DataStack", "ApiStack", "MonitoringStack"]
    three = {"stack": [{"wildcard": f"*:stack/{name}/*"} for name in names[:3]]}
    assert isinstance(compile_pattern(three), Pattern)
    assert reason({"stack": [{"wildcard": f"*:stack/{name}/*"} for name in names]}).startswith("Rule is too complex")


# -- RuleSet ---------------------------------------------------------------------------------


def test_ruleset_returns_matching_rules_in_insertion_order():
    rules = RuleSet()
    rules.add("b", {"source": ["aws.ec2"]})
    rules.add("a", {"detail": {"state": [{"prefix": "term"}]}})
    rules.add("c", {"source": ["aws.s3"]})
    assert rules.matching(EC2_EVENT) == ["b", "a"]


def test_ruleset_forgets_removed_rules():
    rules = RuleSet()
    rules.add("ec2", {"source": ["aws.ec2"]})
    rules.add("state", {"detail": {"state": [{"exists": True}]}})
    rules.remove("ec2")
    assert rules.matching(EC2_EVENT) == ["state"]
    assert "ec2" not in rules and len(rules) == 1
    with pytest.raises(KeyError):
        rules.remove("ec2")


def test_adding_a_rule_again_replaces_it_in_place():
    rules = RuleSet()
    rules.add("first", {"source": ["aws.ec2"]})
    rules.add("second", {"source": ["aws.ec2"]})
    rules.add("first", {"detail-type": [{"prefix": "EC2"}]})
    assert rules.matching(EC2_EVENT) == ["first", "second"]
    assert rules.matching({"source": "aws.ec2"}) == ["second"]
    assert list(rules) == ["first", "second"]


def test_invalid_rule_leaves_the_ruleset_unchanged():
    rules = RuleSet()
    rules.add("r", {"source": ["aws.ec2"]})
    with pytest.raises(PatternError):
        rules.add("r", {"source": "aws.ec2"})
    assert rules.matching(EC2_EVENT) == ["r"]


def test_rule_with_only_absence_conditions_is_checked_for_every_event():
    rules = RuleSet()
    rules.add("no-detail-state", {"detail": {"state": [{"exists": False}]}})
    assert rules.matching({"source": "x"}) == ["no-detail-state"]
    assert rules.matching(EC2_EVENT) == []


_PATHS = ["source", "detail-type", "detail.a", "detail.b", "detail.items.c", "detail.items.d"]
_STRINGS = ["x", "xy", "xyz", "y", "", "10.0.0.1", "Xy", "a/b/c"]


def _random_alternative(rng: random.Random):
    word = rng.choice(_STRINGS)
    choices = [
        lambda: word,
        lambda: rng.choice([0, 1, 2.5, -3, True, False, None]),
        lambda: {"prefix": word},
        lambda: {"suffix": word},
        lambda: {"prefix": {"equals-ignore-case": word}},
        lambda: {"equals-ignore-case": word},
        lambda: {"wildcard": rng.choice(["x*", "*y", "a/*/c", "*"])},
        lambda: {"numeric": rng.choice([[">", 0], ["<=", 1], [">=", -3, "<", 2.5], ["=", 1]])},
        lambda: {"exists": rng.choice([True, False])},
        lambda: {"cidr": "10.0.0.0/24"},
        lambda: {"anything-but": rng.choice([word, [word, "y"], 1, [0, 1], {"prefix": "x"}, {"suffix": "y"},
                                              {"equals-ignore-case": "xy"}, {"wildcard": "x*"}])},
    ]
    return rng.choice(choices)()


def _nest(flat: dict) -> dict:
    nested: dict = {}
    for path, values in flat.items():
        node = nested
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = values
    return nested


def _random_pattern(rng: random.Random) -> dict:
    def fields() -> dict:
        chosen = rng.sample(_PATHS, rng.randint(1, 3))
        return _nest({path: [_random_alternative(rng) for _ in range(rng.randint(1, 2))] for path in chosen})

    pattern = fields()
    if rng.random() < 0.25:
        pattern["$or"] = [fields(), fields()]
    return pattern


def _random_scalar(rng: random.Random):
    return rng.choice(_STRINGS + [0, 1, 2.5, -3, True, False, None])


def _random_event(rng: random.Random) -> dict:
    event: dict = {"source": _random_scalar(rng), "detail-type": _random_scalar(rng)}
    detail: dict = {}
    for key in ("a", "b"):
        roll = rng.random()
        if roll < 0.6:
            detail[key] = _random_scalar(rng)
        elif roll < 0.8:
            detail[key] = [_random_scalar(rng) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.6:
        detail["items"] = [
            {key: _random_scalar(rng) for key in ("c", "d") if rng.random() < 0.7} for _ in range(rng.randint(0, 3))
        ]
    if detail or rng.random() < 0.5:
        event["detail"] = detail
    return event


def test_ruleset_agrees_with_matching_every_pattern_in_turn():
    rng = random.Random(20240229)
    rules = RuleSet()
    patterns: dict[str, Pattern] = {}
    for number in range(400):
        try:
            pattern = compile_pattern(_random_pattern(rng))
        except PatternError:
            continue
        patterns[f"rule-{number}"] = pattern
        rules.add(f"rule-{number}", pattern)
    for name in rng.sample(sorted(patterns), 50):
        rules.remove(name)
        del patterns[name]
    assert len(patterns) > 200
    hits = 0
    for _ in range(600):
        event = _random_event(rng)
        expected = [name for name, pattern in patterns.items() if pattern.matches(event)]
        assert rules.matching(event) == expected, event
        hits += len(expected)
    assert hits > 5000  # the events do exercise the rules (600 events: 17,378 matches of 210,000 decisions)


# -- yafdp test-pattern ----------------------------------------------------------------------


def test_cli_prints_true_and_exits_0_on_match(capsys):
    code = main(["test-pattern", "--pattern", '{"source": ["aws.ec2"]}', "--event", json.dumps(EC2_EVENT)])
    assert (code, capsys.readouterr().out) == (0, "true\n")


def test_cli_prints_false_and_exits_1_on_no_match(capsys):
    code = main(["test-pattern", "--pattern", '{"source": ["aws.s3"]}', "--event", json.dumps(EC2_EVENT)])
    assert (code, capsys.readouterr().out) == (1, "false\n")


def test_cli_exits_2_with_eventbridge_message_on_invalid_pattern(capsys):
    code = main(["test-pattern", "--pattern", '{"source": "aws.ec2"}', "--event", json.dumps(EC2_EVENT)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.strip() == ('yafdp test-pattern: --pattern: Event pattern is not valid. Reason: "source" must '
                                    'be an object or an array')


def test_cli_reads_pattern_and_event_from_files(tmp_path, capsys):
    (tmp_path / "pattern.json").write_text('{"detail": {"state": [{"prefix": "term"}]}}', encoding="utf-8")
    (tmp_path / "event.json").write_text(json.dumps(EC2_EVENT), encoding="utf-8")
    code = main(["test-pattern", "--pattern", f"@{tmp_path / 'pattern.json'}", "--event", f"@{tmp_path / 'event.json'}"])
    assert (code, capsys.readouterr().out) == (0, "true\n")


def test_cli_exits_2_on_event_that_is_not_a_json_object(capsys):
    code = main(["test-pattern", "--pattern", '{"source": ["a"]}', "--event", '["not", "an", "object"]'])
    assert code == 2 and capsys.readouterr().err.startswith("yafdp test-pattern: --event: Parameter Event is not valid")


@pytest.mark.parametrize("field", ["id", "account", "source", "time", "region", "resources", "detail-type"])
def test_cli_refuses_an_event_without_a_field_test_event_pattern_requires(capsys, field):
    event = {k: v for k, v in EC2_EVENT.items() if k != field}
    code = main(["test-pattern", "--pattern", '{"source": ["aws.ec2"]}', "--event", json.dumps(event)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(f"yafdp test-pattern: --event: Parameter Event is not valid: it lacks {field} ")
    assert len(captured.err.strip().splitlines()) == 1


def test_cli_exits_2_on_unreadable_file(tmp_path, capsys):
    code = main(["test-pattern", "--pattern", f"@{tmp_path / 'missing.json'}", "--event", "{}"])
    assert code == 2 and "cannot read" in capsys.readouterr().err
