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
# ``json.dumps(value, separators=(",", ":"))`` (ASCII, the standard library's text exactly: what a hash or an AWS
# request is made of), its encoder made once rather than on every call
compact_ascii = json.JSONEncoder(separators=(",", ":")).encode
_OPTIONS = (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS) if orjson else 0


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
