"""Reads an event pattern given as JSON text the way EventBridge does, syntax errors included.

EventBridge parses patterns with Jackson, so a malformed pattern is reported with Jackson's wording
and position (``... at [Source: (String)"..."; line: 1, column: 5]``); this reader reproduces that.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

from yafdp.patterns.errors import PatternError

_VALUE_LIST = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')"
_WHITESPACE = " \t\n\r"
_DIGITS = "0123456789"
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_SOURCE_LIMIT = 500  # Jackson quotes at most this many characters of the source


class WrittenNumber:
    """A JSON number that no double holds exactly (``1.00000000000000001``, ``1e400``), kept as it was written.

    event-ruler reads every number of a pattern or an event from its text: one whose nearest double does not
    write back to the same value (``BigDecimal.valueOf(double).compareTo(written) != 0``) cannot be compared as a
    number, so a ``numeric`` or ``anything-but`` operand like it is refused ("Cannot compare number"), and in an
    event or as an exact value it equals only the same text (aws/event-ruler ``ComparableNumber.generate``, PR
    #188; ``ByteMachine.transitionOn`` falls back to the value's text).
    """

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __eq__(self, other) -> bool:
        return type(other) is WrittenNumber and other.text == self.text

    def __hash__(self) -> int:
        return hash(("written-number", self.text))

    def __repr__(self) -> str:
        return self.text


def json_number(token: str) -> float | WrittenNumber:
    """A JSON number with a fraction or an exponent: the double it is, or a :class:`WrittenNumber` when no double
    holds it exactly (compared as decimals, as event-ruler compares ``BigDecimal`` values).

    Examples
    --------
    >>> json_number("0.1"), json_number("3e2"), json_number("1.00000000000000001")
    (0.1, 300.0, 1.00000000000000001)
    >>> type(json_number("1e400")).__name__
    'WrittenNumber'
    """
    number = float(token)
    if math.isfinite(number) and Decimal(repr(number)) == Decimal(token):
        return number
    return WrittenNumber(token)


def load_event_text(text: str):
    """An event given as JSON text, its numbers read as event-ruler reads them: integers exactly, and a number
    with a fraction or an exponent as a double or, when no double holds it, a :class:`WrittenNumber`.

    Raises ``json.JSONDecodeError`` for text that is not JSON, or that nests deeper than
    :data:`yafdp.reading.MAX_JSON_DEPTH` levels (Python's parser fails near 1,000: the project's limit, said first)."""
    from yafdp.reading import MAX_JSON_DEPTH, json_deeper_than

    if json_deeper_than(text):
        raise json.JSONDecodeError(f"nests deeper than {MAX_JSON_DEPTH} levels (this project's limit)", text, 0)
    return json.loads(text, parse_float=json_number)


class Pairs(list):
    """A JSON object whose keys repeat, kept as ``(key, value)`` pairs in document order.

    EventBridge reads a pattern as a stream, so a repeated key adds its fields to the rule (a later
    value for the same field wins) instead of replacing the whole earlier object as ``dict`` would.
    """


def members(obj):
    """The ``(key, value)`` pairs of a JSON object read from a pattern, in document order."""
    return obj if isinstance(obj, Pairs) else obj.items()


def is_object(value) -> bool:
    """Whether ``value`` is a JSON object (a ``dict`` or a :class:`Pairs`)."""
    return isinstance(value, (dict, Pairs))


def load_pattern_text(text: str):
    """Parse pattern JSON text into dicts (or :class:`Pairs`), lists and scalars.

    Like EventBridge, it reads only the first JSON value and ignores anything after it.

    Examples
    --------
    >>> load_pattern_text('{"source": ["aws.ec2"]}')
    {'source': ['aws.ec2']}
    >>> load_pattern_text('{"a": [1], "a": [2]}')
    [('a', [1]), ('a', [2])]
    """
    return _Reader(text).root()


def _char_desc(char: str) -> str:
    code = ord(char)
    if code < 32 or 127 <= code < 160:
        return f"(CTRL-CHAR, code {code})"
    if code > 255:
        return f"'{char}' (code {code} / 0x{code:x})"
    return f"'{char}' (code {code})"


def _is_identifier_part(char: str) -> bool:
    # Jackson quotes a bad token up to the first character Java would not allow in an identifier.
    return char.isalnum() or char in "_$"


class _Reader:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # -- errors -------------------------------------------------------------------------------

    def source(self) -> str:
        text = self.text
        if len(text) > _SOURCE_LIMIT:
            return f'(String)"{text[:_SOURCE_LIMIT]}"[truncated {len(text) - _SOURCE_LIMIT} chars]'
        return f'(String)"{text}"'

    def location(self, offset: int) -> str:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return f"[Source: {self.source()}; line: {line}, column: {column}]"

    def fail(self, reason: str, offset: int):
        raise PatternError(f"{reason}\n at {self.location(offset)}")

    def unexpected(self, offset: int, expectation: str):
        self.fail(f"Unexpected character ({_char_desc(self.text[offset])}): {expectation}", offset)

    def end_of_input(self, container: str, start: int):
        self.fail(
            f"Unexpected end-of-input: expected close marker for {container} "
            f"(start marker at {self.location(start)})",
            len(self.text),
        )

    # -- scanning -----------------------------------------------------------------------------

    def skip_whitespace(self) -> str | None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos
        return text[pos] if pos < len(text) else None

    def root(self):
        char = self.skip_whitespace()
        if char == "{":
            start = self.pos
            self.pos += 1
            return self.read_object(start)
        if char is None or char == "[":
            self.fail("Filter is not an object", self.pos + (char is not None))
        self.read_value(None, 0)
        self.fail("Filter is not an object", self.pos)

    def read_value(self, container: str | None, start: int):
        char = self.skip_whitespace()
        if char is None:
            if container is None:
                self.fail("Unexpected end-of-input: expected a value", self.pos)
            self.end_of_input(container, start)
        if char == "{":
            begin = self.pos
            self.pos += 1
            return self.read_object(begin)
        if char == "[":
            begin = self.pos
            self.pos += 1
            return self.read_array(begin)
        if char == '"':
            self.pos += 1
            return self.read_string()
        if char in "-0123456789":
            return self.read_number()
        if _is_identifier_part(char):
            return self.read_literal()
        self.unexpected(self.pos, f"expected a valid value {_VALUE_LIST}")

    def read_literal(self):
        text, start = self.text, self.pos
        end = start
        while end < len(text) and _is_identifier_part(text[end]):
            end += 1
        word = text[start:end]
        self.pos = end
        if word == "true":
            return True
        if word == "false":
            return False
        if word == "null":
            return None
        self.fail(f"Unrecognized token '{word}': was expecting {_VALUE_LIST}", end)

    def read_number(self):
        text, start = self.text, self.pos
        pos = start
        if text[pos] == "-":
            pos += 1
            if pos >= len(text) or text[pos] not in _DIGITS:
                self._number_error(pos, "expected digit (0-9) to follow minus sign, for valid numeric value")
        digits_start = pos
        while pos < len(text) and text[pos] in _DIGITS:
            pos += 1
        if text[digits_start] == "0" and pos - digits_start > 1:
            self.fail("Invalid numeric value: Leading zeroes not allowed", digits_start + 1)
        is_float = False
        if pos < len(text) and text[pos] == ".":
            is_float = True
            pos += 1
            if pos >= len(text) or text[pos] not in _DIGITS:
                self._number_error(pos, "Decimal point not followed by a digit")
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
        if pos < len(text) and text[pos] in "eE":
            is_float = True
            pos += 1
            if pos < len(text) and text[pos] in "+-":
                pos += 1
            if pos >= len(text) or text[pos] not in _DIGITS:
                self._number_error(pos, "Exponent indicator not followed by a digit")
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
        self.pos = pos
        token = text[start:pos]
        return json_number(token) if is_float else int(token)

    def _number_error(self, pos: int, expectation: str):
        if pos >= len(self.text):
            self.fail(f"Unexpected end-of-input in a Number value: {expectation}", pos)
        found = _char_desc(self.text[pos])
        self.fail(f"Unexpected character ({found}) in numeric value: {expectation}", pos + 1)

    def read_string(self) -> str:
        text = self.text
        pos = self.pos
        parts = []
        chunk_start = pos
        while True:
            if pos >= len(text):
                self.fail("Unexpected end-of-input: was expecting closing quote for a string value", pos)
            char = text[pos]
            if char == '"':
                parts.append(text[chunk_start:pos])
                self.pos = pos + 1
                break
            if char == "\\":
                parts.append(text[chunk_start:pos])
                pos += 1
                if pos >= len(text):
                    self.fail("Unexpected end-of-input in character escape sequence", pos)
                escape = text[pos]
                if escape in _ESCAPES:
                    parts.append(_ESCAPES[escape])
                    pos += 1
                elif escape == "u":
                    digits = text[pos + 1 : pos + 5]
                    for index, digit in enumerate(digits):
                        if digit not in "0123456789abcdefABCDEF":
                            self.unexpected(
                                pos + 1 + index, "expected a hex-digit for character escape sequence"
                            )
                    if len(digits) < 4:
                        self.fail("Unexpected end-of-input in character escape sequence", len(text))
                    parts.append(chr(int(digits, 16)))
                    pos += 5
                else:
                    self.fail(f"Unrecognized character escape {_char_desc(escape)}", pos + 1)
                chunk_start = pos
                continue
            if ord(char) < 32:
                self.fail(
                    f"Illegal unquoted character ({_char_desc(char)}): "
                    "has to be escaped using backslash to be included in string value",
                    pos + 1,
                )
            pos += 1
        value = "".join(parts)
        if any("\ud800" <= c <= "\udfff" for c in value):
            # \uXXXX escapes arrive as UTF-16 halves; join the pairs into real characters.
            value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        return value

    def read_object(self, start: int):
        pairs = []
        char = self.skip_whitespace()
        if char is None:
            self.end_of_input("Object", start)
        if char == "}":
            self.pos += 1
            return {}
        while True:
            if char != '"':
                self.unexpected(self.pos, "was expecting double-quote to start field name")
            self.pos += 1
            key = self.read_string()
            char = self.skip_whitespace()
            if char is None:
                self.end_of_input("Object", start)
            if char != ":":
                self.unexpected(self.pos, "was expecting a colon to separate field name and value")
            self.pos += 1
            pairs.append((key, self.read_value("Object", start)))
            char = self.skip_whitespace()
            if char is None:
                self.end_of_input("Object", start)
            self.pos += 1
            if char == "}":
                break
            if char != ",":
                self.unexpected(self.pos - 1, "was expecting comma to separate Object entries")
            char = self.skip_whitespace()
            if char is None:
                self.end_of_input("Object", start)
        keys = {key for key, _ in pairs}
        return dict(pairs) if len(keys) == len(pairs) else Pairs(pairs)

    def read_array(self, start: int) -> list:
        items: list = []
        char = self.skip_whitespace()
        if char is None:
            self.end_of_input("Array", start)
        if char == "]":
            self.pos += 1
            return items
        while True:
            items.append(self.read_value("Array", start))
            char = self.skip_whitespace()
            if char is None:
                self.end_of_input("Array", start)
            self.pos += 1
            if char == "]":
                return items
            if char != ",":
                self.unexpected(self.pos - 1, "was expecting comma to separate Array entries")
