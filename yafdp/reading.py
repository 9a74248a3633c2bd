"""Reading a file someone names (a catalog folder's JSON, an orders file, a latency profile, a pattern or an
event for ``yafdp test-pattern``): never more than its kind's limit, checked before reading and while reading.

A regular file larger than the limit is refused from its size, before a byte is read; a device, a pipe or a file
of ``/proc`` (whose size says nothing: ``/dev/zero`` never ends) is read up to one byte past the limit and refused
there. So no input can make yafdp read without end or hold more than the limit in memory for the file itself.
The limits are documented in the README ("Input size limits").
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from yafdp.errors import RefusedError

MIB = 1 << 20
# Each JSON file of a catalog folder (bus.json, services/*.json, marketplace.json), a latency profile, quotas and
# prices: the shipped ones are under 40 KB.
CATALOG_FILE_BYTES = 1 * MIB
# An orders file: about 400,000 order requests of the usual size. A larger workload is generated (--orders).
ORDERS_FILE_BYTES = 128 * MIB
# A pattern or an event given to `yafdp test-pattern` as @FILE: EventBridge's largest PutEvents entry is 1 MB
# (data/quotas.json, eventbridge_put_events_entry_bytes), and a rule's pattern is far smaller.
TEST_PATTERN_FILE_BYTES = 1 * MIB
# A run folder's lock file: one line naming its holder.
LOCK_FILE_BYTES = 4096


# How deeply a JSON value from outside may nest: an orders file's requests, and every JSON record of a run's
# database (an event's detail, a state item, a request). JSON and EventBridge set no limit; Python's json module
# recurses once per level and fails near 1,000 (RecursionError), so the project sets one, far above what its own
# records need (3 levels) and far below that: a setting, said in the README.
MAX_JSON_DEPTH = 64


def json_depth(text: str) -> int:
    """How deeply the JSON text ``text`` nests (objects and arrays; 0 for a scalar), found without parsing it and
    without recursion, so it can be asked of any text before it is parsed. Brackets inside strings do not count.

    Examples
    --------
    >>> json_depth('{"a": [1, {"b": "[[["}]}'), json_depth("3"), json_depth("[" * 5000 + "]" * 5000)
    (3, 0, 5000)
    """
    depth = deepest = 0
    for bracket in _NOT_A_BRACKET.sub("", _STRING.sub("", text)):  # the brackets outside strings, in order
        if bracket in "{[":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def json_deeper_than(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``text`` nests deeper than ``limit``: counted brackets first (as many as the depth is
    necessary for it), measured (:func:`json_depth`) only when there are that many.

    Examples
    --------
    >>> json_deeper_than('{"a": [1, 2]}'), json_deeper_than("[" * 65 + "]" * 65)
    (False, True)
    """
    return text.count("{") + text.count("[") > limit and json_depth(text) > limit


def nesting(value, beyond: int = MAX_JSON_DEPTH) -> int:
    """How deeply a parsed JSON value nests (dicts and lists; 0 for a scalar), walked without recursion; the walk
    stops, returning ``beyond + 1``, as soon as the value is found to nest deeper than ``beyond``.

    Examples
    --------
    >>> nesting([{"items": [{"id": 1}]}]), nesting(3), nesting([[[[]]]], beyond=2)
    (4, 0, 3)
    """
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > beyond:
            return beyond + 1
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_A_BRACKET = re.compile(r"[^{}\[\]]+")


class TooLargeError(RefusedError):
    """A file is larger than its kind's limit; nothing of it was used. ``problem`` says so without the path."""

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


def read_bytes(path: str | Path, limit: int, kind: str) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Raises :class:`TooLargeError` (naming the file, its ``kind`` and the limit) for a larger file, and
    :class:`OSError` when it cannot be read.

    Examples
    --------
    >>> read_bytes("/dev/zero", 1024, "an orders file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    yafdp.reading.TooLargeError: /dev/zero: more than 1,024 bytes, the limit of an orders file; not read
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > limit:
            raise TooLargeError(path, f"{size:,} bytes, more than {limit:,}, the limit of {kind}; not read")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(path, f"more than {limit:,} bytes, the limit of {kind}; not read")
    return data
