"""EventBridge's event envelope and its PutEvents limits, shared by every backend.

A service publishes ``(detail-type, detail)``; the bus wraps it in the envelope EventBridge delivers
(``version``, ``id``, ``detail-type``, ``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from yafdp.catalog.loader import read_json
from yafdp.catalog.model import CatalogError
from yafdp.errors import RefusedError
from yafdp.plan.model import ACCOUNT, REGION
from yafdp.runtime import json_text
from yafdp.shipped import QUOTAS_FILE

MAX_ENTRIES_PER_PUT = 10
# The Unix time a local run's clock starts at (2026-01-01T00:00:00Z), for envelope `time`: a fixed date, so a seeded
# run's events are the same bytes every time (yafdp.analysis.otlp places a local run's spans from it too).
CLOCK_ORIGIN = 1_767_225_600.0
ENTRY_SIZE_QUOTA = "eventbridge_put_events_entry_bytes"
REQUEST_SIZE_QUOTA = "eventbridge_put_events_request_bytes"


@lru_cache(maxsize=8)
def max_entry_bytes(quotas_file: Path = QUOTAS_FILE) -> int:
    """The largest PutEvents entry EventBridge accepts, in bytes as :func:`entry_size` counts them, read from
    ``data/quotas.json`` (``quotas.eventbridge_put_events_entry_bytes``, with its citation: 1 MB since
    29 January 2026, AWS Compute Blog "More room to build: serverless services now support payloads up to 1 MB").

    Raises :class:`~yafdp.catalog.model.CatalogError` when the file has no such quota.

    Examples
    --------
    >>> max_entry_bytes()
    1048576
    """
    return _byte_quota(Path(quotas_file), ENTRY_SIZE_QUOTA)


@lru_cache(maxsize=8)
def max_request_bytes(quotas_file: Path = QUOTAS_FILE) -> int:
    """The largest sum of :func:`entry_size` over a PutEvents request's entries, read from ``data/quotas.json``
    (``quotas.eventbridge_put_events_request_bytes``): over it EventBridge refuses the whole request ("You can batch
    multiple event entries into one request ... the total entry size must be less than" the limit, "Calculating
    PutEvents event entry size"; the figure since the 1 MB raise is an inference, said so in the file).

    Raises :class:`~yafdp.catalog.model.CatalogError` when the file has no such quota.

    Examples
    --------
    >>> max_request_bytes()
    1048576
    """
    return _byte_quota(Path(quotas_file), REQUEST_SIZE_QUOTA)


def _byte_quota(quotas_file: Path, name: str) -> int:
    entry = read_json(quotas_file).get("quotas", {}).get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), int) or "source" not in entry:
        raise CatalogError(quotas_file, f"quotas.{name}", "is missing, or has no integer value and source")
    return entry["value"]


class PublishError(RefusedError):
    """A PutEvents request was refused as a whole; nothing of it was published."""


def entry_size(source: str, detail_type: str, detail_json: str | None, resources: tuple[str, ...] = (),
               with_time: bool = False) -> int:
    """The size in bytes EventBridge counts for a PutEvents entry against :func:`max_entry_bytes`.

    AWS's documented formula ("Calculating Amazon EventBridge PutEvents event entry size",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html): ``Time`` is 14 bytes
    *if the entry specifies it*; ``Source`` and ``DetailType`` count the bytes of their UTF-8 forms; ``Detail``
    and each element of ``Resources`` count theirs if specified.

    Examples
    --------
    >>> entry_size("yafdp.payment", "Payment_Success", "{}")
    30
    >>> entry_size("yafdp.payment", "Payment_Success", "{}", with_time=True)
    44
    """
    size = (14 if with_time else 0) + len(source.encode()) + len(detail_type.encode())
    if detail_json:  # an ASCII text (str.isascii reads a flag) is a byte a character: not encoded again to count them
        size += len(detail_json) if detail_json.isascii() else len(detail_json.encode())
    if resources:
        size += sum(len(r.encode()) for r in resources if r is not None)
    return size


def iso_time(seconds: float) -> str:
    """An envelope ``time`` (RFC 3339, whole seconds, UTC) for a clock reading in epoch seconds."""
    return _iso_second(int(seconds))


@lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(time: str) -> float:
    """The epoch seconds of an envelope ``time`` (``YYYY-MM-DDTHH:MM:SSZ``), the inverse of :func:`iso_time`.

    Examples
    --------
    >>> epoch_of(iso_time(1_767_225_600.7))
    1767225600.0
    """
    return datetime.strptime(time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def make_envelope(event_id: str, source: str, detail_type: str, detail: dict, epoch_seconds: float,
                  region: str = REGION, account: str = ACCOUNT, resources: tuple[str, ...] = ()) -> dict:
    """The event as EventBridge delivers it to a target (``time`` from ``epoch_seconds``: the entry's own
    ``Time`` when it set one, else when EventBridge received it)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": iso_time(epoch_seconds),
        "region": region,
        "resources": list(resources),
        "detail": detail,
    }


def detail_json(detail: dict) -> str:
    """The ``Detail`` string of a PutEvents entry (compact JSON, as the SDKs send it).

    Raises ``ValueError`` for NaN or an infinity (EventBridge takes JSON, which has neither) and ``TypeError``
    for a value JSON cannot hold."""
    return json_text.dumps(detail)
