"""Reading a file someone names (a catalog folder's JSON, an orders file, a latency profile, a pattern or an
event for ``yafdp test-pattern``): never more than its kind's limit, checked before reading and while reading.

A regular file larger than the limit is refused from its size, before a byte is read; a device, a pipe or a file
of ``/proc`` (whose size says nothing: ``/dev/zero`` never ends) is read up to one byte past the limit and refused
there. So no input can make yafdp read without end or hold more than the limit in memory for the file itself.
The limits are documented in the README ("Input size limits").
"""

from __future__ import annotations

import os
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
