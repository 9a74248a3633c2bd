"""Checks an event pattern as EventBridge does and expands it into branches of per-field alternatives.

A pattern becomes a list of branches (one per combination of ``$or`` choices); a branch maps each
dotted field path (``detail.state``) to its alternatives. The rules, and the wording of every
error, follow event-ruler, the library EventBridge matches with.
"""

from __future__ import annotations

import json
from typing import Any

from yafdp.patterns import operators as op
from yafdp.patterns.errors import PatternError
from yafdp.patterns.ipranges import address, cidr_range
from yafdp.patterns.jsontext import is_object, load_pattern_text, members
from yafdp.patterns.wildcard import check_complexity, wildcard_tokens

MAX_PATTERN_LENGTH = 2048  # EventBridge's default quota for one event pattern, in characters
MAX_FIELDS_PER_BRANCH = 256  # event-ruler's MAXIMUM_RULE_SIZE
# Nested $or multiplies out; a pattern whose $or choices combine into more than 1000 branches is
# refused. The figure is issue 13's statement of AWS's documented limit; the stored copies of the
# EventBridge user guide searched here (awsdocs/amazon-eventbridge-user-guide, archived before $or
# was documented) do not carry the sentence, so neither the figure's source page nor the exact
# wording of AWS's message could be checked: the reason below is ours, in EventBridge's style.
MAX_BRANCHES = 1000

_OR = "$or"
_RESERVED_INSIDE_OR = frozenset(
    {
        "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard",
        "numeric", "cidr", "=", "<", "<=", ">", ">=", "regex", "not-wildcard",
        "not-equals-ignore-case", "date-after", "date-on-or-after", "date-before",
        "date-on-or-before", "in-date-range", "ip-address-in-range", "ip-address-not-in-range",
    }
)  # fmt: skip
_TOO_MANY_ELEMENTS = "Too many elements in numeric expression"
_ONE_KEY = "Only one key allowed in match expression"
_END = object()  # stands for the end of an array, where EventBridge's parser reads "]"

Branch = dict[str, list[op.Alt]]


def load_pattern(pattern: dict | str, max_length: int = MAX_PATTERN_LENGTH) -> Any:
    """The pattern as a JSON object, parsed from text if need be, with EventBridge's size check."""
    if isinstance(pattern, str):
        length = len(pattern)
    elif is_object(pattern):
        length = len(pattern_text(pattern))
    else:
        raise PatternError("Filter is not an object")
    if length > max_length:
        raise PatternError(
            f"Event pattern is {length} characters long; the maximum is {max_length}"
        )
    return load_pattern_text(pattern) if isinstance(pattern, str) else pattern


def expand(pattern: Any) -> list[Branch]:
    """Validate a parsed pattern and expand it into branches, as EventBridge does.

    EventBridge tries ``$or`` as an operator first; if that reading is invalid it reads ``"$or"``
    as a plain field name, so ``{"$or": {"a": ["x"]}}`` matches a field called ``$or``.

    Examples
    --------
    >>> [sorted(branch) for branch in expand({"source": ["a"], "$or": [{"x": [1]}, {"y": [2]}]})]
    [['source', 'x'], ['source', 'y']]
    """
    try:
        return _Expander(or_operator=True).run(pattern)
    except PatternError as error:
        if not _mentions_or(pattern):
            raise
        try:
            return _Expander(or_operator=False).run(pattern)
        except PatternError:
            raise error from None


def pattern_text(value: Any) -> str:
    """An event pattern as compact JSON text: the characters EventBridge's pattern size quota counts here, and what
    the deployer sends as ``PutRule``'s ``EventPattern``, so a pattern this module accepts is one AWS takes."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _mentions_or(value: Any) -> bool:
    if is_object(value):
        return any(key == _OR or _mentions_or(item) for key, item in members(value))
    if isinstance(value, list):
        return any(_mentions_or(item) for item in value)
    return False


def _java_text(value: Any) -> str:
    # The text EventBridge's parser would show for this token in a message.
    if value is _END:
        return "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_object(value):
        return "{"
    if isinstance(value, list):
        return "["
    return str(value)


def _comparable(number: Any) -> float:
    """A ``numeric`` or ``anything-but`` operand as the double it is compared as.

    event-ruler (every version since its 2024 move to full-float64 numbers, aws/event-ruler PR #188;
    see ComparableNumber) refuses an operand that a double cannot hold exactly, with a message that
    starts "Cannot compare number"; the rest of our reason is ours.
    """
    if not op.exact_double(number):
        raise PatternError(f"Cannot compare number {number}: a double cannot represent it exactly")
    return op.value_key(number)


def _first_member(expression: Any) -> tuple[str, Any, int]:
    pairs = list(members(expression))
    if not pairs:
        return "", None, 0
    name, value = pairs[0]
    return name, value, len(pairs)


class _Expander:
    def __init__(self, or_operator: bool):
        self.or_operator = or_operator

    def run(self, pattern: Any) -> list[Branch]:
        if not is_object(pattern):
            raise PatternError("Filter is not an object")
        branches: list[Branch] = []
        self.object(branches, "", pattern, inside_or=False)
        for branch in branches:
            if len(branch) > MAX_FIELDS_PER_BRANCH:
                raise PatternError(f"Size of rule exceeds max value of {MAX_FIELDS_PER_BRANCH}")
        wildcards: dict[str, set[str]] = {}
        for branch in branches:
            for path, alts in branch.items():
                for alt in alts:
                    if alt.kind == op.WILDCARD:
                        wildcards.setdefault(path, set()).add(alt.arg)
                    elif alt.kind == op.ANYTHING_BUT_WILDCARD:
                        wildcards.setdefault(path, set()).update(alt.arg)
        for values in wildcards.values():
            check_complexity(values)
        return branches

    # -- structure ----------------------------------------------------------------------------

    def object(self, branches: list[Branch], path: str, obj: Any, inside_or: bool) -> None:
        empty = True
        for key, value in members(obj):
            empty = False
            if key == _OR and self.or_operator:
                self.or_relationship(branches, path, value)
                continue
            if inside_or and key in _RESERVED_INSIDE_OR:
                raise PatternError(f"{key} is Ruler reserved fieldName which cannot be used inside $or.")
            field_path = f"{path}.{key}" if path else key
            if is_object(value):
                self.object(branches, field_path, value, inside_or)
            elif isinstance(value, list):
                self.field(branches, field_path, value)
            else:
                raise PatternError(f'"{key}" must be an object or an array')
        if empty:
            raise PatternError("Empty objects are not allowed")

    def or_relationship(self, branches: list[Branch], path: str, value: Any) -> None:
        if is_object(value) or not isinstance(value, list):
            raise PatternError("It must be an Array followed with $or.")
        before = [dict(branch) for branch in branches]
        branches.clear()
        for element in value:
            if not is_object(element):
                raise PatternError("Only JSON object is allowed in array of $or relationship.")
            alternative = [dict(branch) for branch in before] or [{}]
            self.object(alternative, path, element, inside_or=True)
            branches.extend(alternative)
            if len(branches) > MAX_BRANCHES:
                raise PatternError(
                    f"Rule is too complex - its $or combinations exceed {MAX_BRANCHES}"
                )
        if len(value) < 2:
            raise PatternError("There must have at least 2 Objects in $or relationship.")

    def field(self, branches: list[Branch], path: str, values: list) -> None:
        alts = [self.value(value) for value in values]
        if not alts:
            raise PatternError("Empty arrays are not allowed")
        if not branches:
            branches.append({})
        for branch in branches:
            branch[path] = alts  # a later value for the same path replaces the earlier one

    # -- values -------------------------------------------------------------------------------

    def value(self, value: Any) -> op.Alt:
        if is_object(value):
            return self.match_expression(value)
        if isinstance(value, str):
            ip = address(value)
            return op.Alt(op.IP, ip) if ip is not None else op.Alt(op.EXACT, value)
        if value is None or isinstance(value, bool) or op.is_number(value):
            return op.Alt(op.EXACT, op.value_key(value))
        raise PatternError("Match value must be String, number, true, false, or null")

    def match_expression(self, expression: Any) -> op.Alt:
        name, value, size = _first_member(expression)
        if size == 0:
            raise PatternError("Match expression name not found")
        handler = _EXPRESSIONS.get(name)
        if handler is None:
            raise PatternError(f"Unrecognized match type {name}")
        alt = handler(self, value)
        if size > 1:
            raise PatternError(_TOO_MANY_ELEMENTS if name in ("numeric", "anything-but") else _ONE_KEY)
        return alt

    def exactly(self, value: Any) -> op.Alt:
        if not isinstance(value, str):
            raise PatternError("exact match pattern must be a string")
        return op.Alt(op.EXACT, value)

    def prefix(self, value: Any) -> op.Alt:
        if is_object(value):
            return op.Alt(op.PREFIX_IGNORE_CASE, self.ignore_case_operand(value, "Prefix", "prefix"))
        if not isinstance(value, str):
            raise PatternError("prefix match pattern must be a string")
        return op.Alt(op.PREFIX, value)

    def suffix(self, value: Any) -> op.Alt:
        if is_object(value):
            return op.Alt(op.SUFFIX_IGNORE_CASE, self.ignore_case_operand(value, "Suffix", "suffix"))
        if not isinstance(value, str):
            raise PatternError("suffix match pattern must be a string")
        return op.Alt(op.SUFFIX, value)

    @staticmethod
    def ignore_case_operand(value: Any, title: str, operator: str) -> str:
        name, text, size = _first_member(value)
        if size == 0:
            raise PatternError(f"{title} expression name not found")
        if name != "equals-ignore-case":
            raise PatternError(f"Unsupported {operator} pattern: {name}")
        if not isinstance(text, str):
            raise PatternError("equals-ignore-case match pattern must be a string")
        if size > 1:
            raise PatternError(_ONE_KEY)
        return text

    def equals_ignore_case(self, value: Any) -> op.Alt:
        if not isinstance(value, str):
            raise PatternError("equals-ignore-case match pattern must be a string")
        return op.Alt(op.EQUALS_IGNORE_CASE, value)

    def wildcard(self, value: Any) -> op.Alt:
        if not isinstance(value, str):
            raise PatternError("wildcard match pattern must be a string")
        wildcard_tokens(value)
        return op.Alt(op.WILDCARD, value)

    def exists(self, value: Any) -> op.Alt:
        if value is True:
            return op.Alt(op.EXISTS)
        if value is False:
            return op.Alt(op.ABSENT)
        raise PatternError("exists match pattern must be either true or false.")

    def cidr(self, value: Any) -> op.Alt:
        if not isinstance(value, str):
            raise PatternError("prefix match pattern must be a string")
        return op.Alt(op.CIDR, cidr_range(value))

    def numeric(self, value: Any) -> op.Alt:
        if is_object(value) or not isinstance(value, list):
            raise PatternError("Value of numeric must be an array.")
        items = list(value) + [_END]

        def item(index: int) -> Any:
            return items[index] if index < len(items) else _END

        operator = item(0)
        if not isinstance(operator, str):
            raise PatternError(f"Invalid member in numeric match: {_java_text(operator)}")
        operand = item(1)
        if operator not in ("=", ">=", ">", "<=", "<"):
            raise PatternError(f"Unrecognized numeric range operator: {operator}")
        if not op.is_number(operand):
            name = "equals" if operator == "=" else operator
            raise PatternError(f"Value of {name} must be numeric")
        number = _comparable(operand)
        following = item(2)
        if operator == "=":
            if following is not _END:
                raise PatternError(_TOO_MANY_ELEMENTS)
            return op.Alt(op.NUMERIC, (number, False, number, False))
        if operator in ("<", "<="):
            if following is not _END:
                raise PatternError(_TOO_MANY_ELEMENTS)
            return op.Alt(op.NUMERIC, (-float("inf"), False, number, operator == "<"))
        if following is _END:
            return op.Alt(op.NUMERIC, (number, operator == ">", float("inf"), False))
        if not isinstance(following, str):
            raise PatternError(f"Bad value in numeric range: {_java_text(following)}")
        if following not in ("<", "<="):
            raise PatternError(f"Bad numeric range operator: {following}")
        top = item(3)
        if not op.is_number(top):
            raise PatternError(f"Value of {following} must be numeric")
        if item(4) is not _END:
            raise PatternError("Too many terms in numeric range expression")
        top_number = _comparable(top)
        if top_number <= number:
            raise PatternError("Bottom must be less than top")
        return op.Alt(op.NUMERIC, (number, operator == ">", top_number, following == "<"))

    def anything_but(self, value: Any) -> op.Alt:
        kind = op.ANYTHING_BUT
        inner_size = 0
        if is_object(value):
            name, value, inner_size = _first_member(value)
            if inner_size == 0:
                raise PatternError("Anything-But expression name not found")
            kind = _ANYTHING_BUT_KINDS.get(name)
            if kind is None:
                raise PatternError(f"Unsupported anything-but pattern: {name}")
        if not (isinstance(value, (list, str)) or op.is_number(value)) or is_object(value):
            raise PatternError("Value of anything-but must be an array or single string/number value.")
        is_list = isinstance(value, list)
        alt = self.anything_but_values(kind, value if is_list else [value], is_list)
        if inner_size > 1:
            raise PatternError(_TOO_MANY_ELEMENTS)
        return alt

    @staticmethod
    def anything_but_values(kind: str, values: list, is_list: bool) -> op.Alt:
        if kind == op.ANYTHING_BUT:
            strings, numbers = set(), set()
            for item in values:
                if isinstance(item, str):
                    strings.add(item)
                elif op.is_number(item):
                    numbers.add(_comparable(item))
                else:
                    raise PatternError("Inside anything but list, start|null|boolean is not supported.")
            if is_list and bool(strings) == bool(numbers):
                raise PatternError(
                    "Inside anything but list, either all values are number or string, "
                    "mixed type is not supported"
                )
            return op.Alt(kind, (frozenset(strings), frozenset(numbers)))
        texts = []
        for item in values:
            if not isinstance(item, str):
                if kind == op.ANYTHING_BUT_IGNORE_CASE:
                    raise PatternError(
                        "Inside anything-but/equals-ignore-case list, "
                        "number|start|null|boolean is not supported."
                    )
                if kind == op.ANYTHING_BUT_WILDCARD:
                    raise PatternError("wildcard match pattern must be a string")
                raise PatternError("prefix/suffix match pattern must be a string")
            if not item and kind in (op.ANYTHING_BUT_PREFIX, op.ANYTHING_BUT_SUFFIX):
                raise PatternError("Null prefix/suffix not allowed")
            texts.append(item)
        if kind == op.ANYTHING_BUT_WILDCARD:
            for text in texts:
                wildcard_tokens(text)
        return op.Alt(kind, tuple(dict.fromkeys(texts)))


_EXPRESSIONS = {
    "exactly": _Expander.exactly,
    "prefix": _Expander.prefix,
    "suffix": _Expander.suffix,
    "numeric": _Expander.numeric,
    "anything-but": _Expander.anything_but,
    "exists": _Expander.exists,
    "cidr": _Expander.cidr,
    "equals-ignore-case": _Expander.equals_ignore_case,
    "wildcard": _Expander.wildcard,
}
_ANYTHING_BUT_KINDS = {
    "equals-ignore-case": op.ANYTHING_BUT_IGNORE_CASE,
    "prefix": op.ANYTHING_BUT_PREFIX,
    "suffix": op.ANYTHING_BUT_SUFFIX,
    "wildcard": op.ANYTHING_BUT_WILDCARD,
}
