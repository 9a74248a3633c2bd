"""EventBridge's event envelope and its PutEvents limits, shared by every backend.

A service publishes ``(detail-type, detail)``; the bus wraps it in the envelope EventBridge delivers
(``version``, ``id``, ``detail-type``, ``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache

from yafdp.errors import RefusedError
from yafdp.plan.model import ACCOUNT, REGION

MAX_ENTRIES_PER_PUT = 10
MAX_ENTRY_BYTES = 256 * 1024


class PublishError(RefusedError):
    """A PutEvents request was refused as a whole; nothing of it was published."""


def entry_size(source: str, detail_type: str, detail_json: str, resources: tuple[str, ...] = (),
               with_time: bool = True) -> int:
    """The entry size EventBridge counts against its 256 KB limit (its documented formula)."""
    size = 14 if with_time else 0
    size += len(source.encode()) + len(detail_type.encode()) + len(detail_json.encode())
    return size + sum(len(r.encode()) for r in resources)


def iso_time(seconds: float) -> str:
    """An envelope ``time`` (RFC 3339, whole seconds, UTC) for a clock reading in epoch seconds."""
    return _iso_second(int(seconds))


@lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_envelope(event_id: str, source: str, detail_type: str, detail: dict, epoch_seconds: float,
                  region: str = REGION, account: str = ACCOUNT) -> dict:
    """The event as EventBridge delivers it to a target."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": iso_time(epoch_seconds),
        "region": region,
        "resources": [],
        "detail": detail,
    }


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def detail_json(detail: dict) -> str:
    """The ``Detail`` string of a PutEvents entry (compact JSON, as the SDKs send it)."""
    return _COMPACT(detail)
