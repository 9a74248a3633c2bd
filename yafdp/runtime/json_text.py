"""Compact JSON text for what a run stores and sends (event details, state items), and reading it back.

The text is the standard library's ``json`` with ``separators=(",", ":")`` and ``ensure_ascii=False``. When
`orjson <https://github.com/ijl/orjson>`_ is installed (it is a dependency of the project, and about ten times
faster on these small objects), it writes the text; whatever orjson writes differently or refuses is handed to
the standard library, so the result is the same either way, apart from how a float's exponent is spelled
(``1e-7`` for ``1e-07``; both are the same JSON number). The Lambda zip does not ship orjson, a native
extension: there the standard library does it all.

- orjson writes ``NaN`` and infinities as ``null``; the standard library writes ``NaN``/``Infinity`` (not JSON,
  and refused with ``allow_nan=False``). A text with ``null`` in it is therefore made again by the standard
  library, which decides, when the value holds a float that is not finite.
- orjson refuses integers beyond 64 bits and keys that are not strings (``TypeError``); the standard library
  writes them.
- orjson would write dates and dataclasses; the standard library refuses them (``TypeError``), as before.
"""

from __future__ import annotations

import json

try:
    import orjson
except ImportError:  # pragma: no cover - the Lambda zip, or an environment without it
    orjson = None

_STRICT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_LENIENT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson else 0
# Where orjson's compact text may differ from the standard library's ASCII text (ensure_ascii): a byte past 0x7e (the
# standard library escapes DEL and every non-ASCII character as \uXXXX; orjson writes UTF-8), and a float with an
# exponent ("1e16" for "1e+16") or below 1e-4 ("0.00001" for "1e-05"). Anything else it writes alike: the same
# separators, key order, escapes (\" \\ \b \f \n \r \t, \u00XX in lower case) and shortest float repr. Such text
# inside a string is taken for a number too, which costs only the standard library's slower encoding. (Byte searches
# and a translation, not a regular expression: one scanning every byte of a request's text cost more than encoding it.)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def _written_alike(written: bytes) -> bool:
    return (written.isascii() and written.find(b"\x7f") < 0 and written.find(b"0.0000") < 0
            and written.translate(_DIGITS_AS_ZERO).find(b"0e") < 0)


# Subclasses of str, int, dict and list go to the standard library too, which encodes them by their base type.
_ASCII_OPTIONS = (_OPTIONS | orjson.OPT_PASSTHROUGH_SUBCLASS) if orjson else 0


def standard_text(encode):
    """``encode`` (a standard library ``json.JSONEncoder(..., ensure_ascii=True).encode``, compact or ``sort_keys``),
    made by orjson when its text is certain to be the same, byte for byte, and by ``encode`` otherwise: the same
    text, what a hash or an AWS request is made of, about ten times faster on a small object (the standard library
    builds its encoder again at each call: 4.5 us for a deadline's four-field detail, orjson 0.3 us).

    orjson is used when it writes the value at all (it refuses integers beyond 64 bits, keys that are not strings, a
    date, a dataclass, a subclass: ``TypeError``), when no byte of its text can differ (:func:`_written_alike`) and
    when a ``null`` in it is no NaN or infinity (which orjson writes as null). It writes an ``enum.Enum`` or a
    ``uuid.UUID`` where the standard library, without a ``default``, refuses one: no caller hands it either (they
    encode JSON read back, request rows and details their schemas passed).
    """
    if orjson is None:  # pragma: no cover - the Lambda zip, or an environment without it
        return encode
    options = _ASCII_OPTIONS | (orjson.OPT_SORT_KEYS if encode.__self__.sort_keys else 0)

    def text(value) -> str:
        try:
            written = orjson.dumps(value, option=options)
        except TypeError:
            return encode(value)
        if _written_alike(written) and (written.find(b"null") < 0 or _finite(value)):
            return written.decode()
        return encode(value)

    return text


# ``json.dumps(value, separators=(",", ":"))`` (ASCII, the standard library's text exactly: what a hash or an AWS
# request is made of)
compact_ascii = standard_text(json.JSONEncoder(separators=(",", ":")).encode)


def dumps(value, *, allow_nan: bool = False) -> str:
    """``value`` as compact JSON text.

    Raises ``ValueError`` for NaN or an infinity unless ``allow_nan`` (then written as ``NaN``/``Infinity``, as
    the standard library does), and ``TypeError`` for what JSON cannot hold.
    """
    if orjson is not None:
        try:
            text = orjson.dumps(value, option=_OPTIONS)
        except TypeError:  # a 65-bit integer, a non-string key, a date: the standard library decides
            pass
        else:
            # no NaN or infinity that orjson turned into null. (find, not ``b"null" in text``: bytes' ``in`` first
            # tries its operand as an integer, and raising and clearing that TypeError costs more than the search.)
            if text.find(b"null") < 0 or _finite(value):
                return text.decode()
    return (_LENIENT if allow_nan else _STRICT)(value)


def _finite(value) -> bool:
    """Whether no float in ``value`` (dicts and lists walked) is NaN or infinite."""
    if isinstance(value, float):
        return value - value == 0.0  # NaN - NaN and inf - inf are NaN
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return True
    for item in value:
        if not _finite(item):
            return False
    return True


def loads(text: str | bytes):
    """The value of JSON ``text`` (``NaN`` and ``Infinity`` read as the standard library reads them).

    Raises ``ValueError`` (``json.JSONDecodeError``) for text that is not JSON.
    """
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
