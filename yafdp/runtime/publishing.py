"""What may be published, checked the same way by every backend before an event reaches the bus: the one place
that prepares PutEvents entries and answers for each of them.

A service may only publish its own ``source`` (as the IAM condition ``events:source`` enforces on AWS), only
the detail-types its catalog entry allows (``events:detail-type``), only details that are JSON objects and
satisfy the event's schema, and only entries within EventBridge's size limit.

PutEvents answers per entry (PutEventsResultEntry, EventBridge API reference,
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html): every entry gets an
``EventId`` or an ``ErrorCode`` and ``ErrorMessage``, in request order, and "if an individual entry within a
request fails, EventBridge continues processing the rest of the entries" ("Sending events with PutEvents",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevents.html). Only a request-level problem
fails the whole call: no entries, more than 10, or entries whose sizes add up to more than the request limit
(``data/quotas.json``; "the total entry size must be less than" it, "Calculating PutEvents event entry size",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html; AWS answers ValidationException
"Total size of the entries in the request is over the limit."). The project's own checks (an unknown
detail-type, a detail that breaks the catalog's schema) answer per entry too, with codes that start with
``yafdp.``: AWS does not make them.

Of the entry codes PutEventsResultEntry lists, these are answered here: ``InvalidArgument`` (a required
parameter missing or empty, ``Source``, ``DetailType`` or ``Detail``, with AWS's words "Parameter Detail is not
valid. Reason: Detail is a required argument."; ``Resources`` that are not a list of strings; a ``Time`` that
is not a time; an entry over the entry limit), ``MalformedDetail`` (a ``Detail`` that is not a JSON object),
``NotAuthorizedForSourceException`` and ``NotAuthorizedForDetailTypeException`` (the IAM conditions), and the
retryable ``ThrottlingException`` and ``InternalFailure`` when a backend injects them. ``AccessDeniedException``
(no ``events:PutEvents`` at all), ``InvalidAccountIdException`` (a cross-account bus) and ``RedactionFailure``
(CloudTrail events) cannot arise from a service of the plan. One choice of the project's own: an entry without a
``Source`` key is sent with its service's source (``put_events(..., sender=...)`` knows it); a ``Source`` given
empty or null is refused as AWS refuses it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, NamedTuple

import fastjsonschema

from yafdp.catalog import Catalog
from yafdp.catalog.model import CustomBusSettings
from yafdp.errors import YafdpError
from yafdp.runtime.envelope import (MAX_ENTRIES_PER_PUT, PublishError, detail_json, entry_size, max_entry_bytes,
                                    max_request_bytes)

MAX_EVENTS_PER_CALL = 100

# PutEventsResultEntry.ErrorCode, as the EventBridge API reference lists them.
INTERNAL_FAILURE = "InternalFailure"  # retryable
THROTTLING = "ThrottlingException"  # retryable
ACCESS_DENIED = "AccessDeniedException"
INVALID_ARGUMENT = "InvalidArgument"
MALFORMED_DETAIL = "MalformedDetail"
NOT_AUTHORIZED_FOR_SOURCE = "NotAuthorizedForSourceException"
NOT_AUTHORIZED_FOR_DETAIL_TYPE = "NotAuthorizedForDetailTypeException"
RETRYABLE_ENTRY_ERRORS = frozenset({INTERNAL_FAILURE, THROTTLING})
# A careful producer's retries of what PutEvents refused with a retryable code (InternalFailure, ThrottlingException,
# for an entry or, throttled, for the whole request): 3 tries in all, exponential backoff with full jitter from
# 0.1 s, as the AWS SDKs' standard retry mode does for retryable errors ("Retry behavior",
# https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html: three attempts by default). The
# 0.1 s base is this project's choice (the SDKs differ); every backend's producer and the latency model use it.
PUBLISH_ATTEMPTS = 3
PUBLISH_BACKOFF_SECONDS = 0.1
# How a handler's uncaught exception is reported: Lambda's FunctionError for it ("Unhandled"; Invoke, Lambda API
# reference, https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html). Neither SQS nor EventBridge records
# why a function failed: this is the function's own trace.
FUNCTION_ERROR = "Unhandled"
# The project's own checks, which AWS does not make (it accepts any detail-type and any JSON object detail).
UNKNOWN_DETAIL_TYPE = "yafdp.UnknownDetailType"
SCHEMA_VIOLATION = "yafdp.SchemaViolation"


class DeliveryError(YafdpError):
    """Why a handler call failed its delivery, with a code (e.g. the PutEvents ``ErrorCode`` of an entry it
    could not publish)."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


class PreparedEntry(NamedTuple):
    """A PutEvents entry that passed every check: ``detail`` parsed, ``text`` the ``Detail`` string sent;
    ``time`` the entry's own ``Time`` (epoch seconds) or None, ``resources`` its ``Resources``."""

    source: str
    detail_type: str
    detail: dict
    text: str
    time: float | None = None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntryRefusal:
    """A PutEvents entry that failed: its ``ErrorCode`` and ``ErrorMessage``."""

    code: str
    message: str

    @property
    def retryable(self) -> bool:
        """Whether a careful client sends the entry again (``InternalFailure``, ``ThrottlingException``)."""
        return self.code in RETRYABLE_ENTRY_ERRORS

    def to_aws(self) -> dict:
        return {"ErrorCode": self.code, "ErrorMessage": self.message}


def check_entry(catalog: Catalog, service: str, allowed: frozenset[str], entry: dict,
                limit: int | None = None) -> PreparedEntry | EntryRefusal:
    """Check one PutEvents entry (``{"DetailType", "Detail"[, "Source", "Time", "Resources"]}``) that
    ``service`` wants to publish; ``Detail`` is a dict or its JSON text, ``Source`` defaults to the service's own.

    Returns the :class:`PreparedEntry`, or the :class:`EntryRefusal` AWS (or the project) answers for it:
    ``InvalidArgument`` for a ``Source``, ``DetailType`` or ``Detail`` given empty, ``Resources`` that are not
    strings, a ``Time`` that is not one, or an entry over ``limit`` bytes (default :func:`max_entry_bytes`);
    ``MalformedDetail`` for a detail that is not a JSON object; ``NotAuthorizedForSourceException`` /
    ``NotAuthorizedForDetailTypeException`` where the IAM conditions ``events:source`` / ``events:detail-type``
    refuse it; ``yafdp.UnknownDetailType`` and ``yafdp.SchemaViolation`` for the catalog's checks.
    """
    own_source = catalog.services[service].source
    source = entry.get("Source", own_source)
    detail_type = entry.get("DetailType")
    detail = entry.get("Detail")
    for name, value in (("Source", source), ("DetailType", detail_type), ("Detail", detail)):
        if value is None or value == "":
            return EntryRefusal(INVALID_ARGUMENT, f"Parameter {name} is not valid. Reason: {name} is a required argument.")
    if not isinstance(source, str):
        return EntryRefusal(INVALID_ARGUMENT, "Parameter Source is not valid. Reason: Source must be a string.")
    if not isinstance(detail_type, str):
        return EntryRefusal(INVALID_ARGUMENT, "Parameter DetailType is not valid. Reason: DetailType must be a string.")
    resources = entry.get("Resources") or ()
    if not isinstance(resources, (list, tuple)) or not all(isinstance(r, str) for r in resources):
        return EntryRefusal(INVALID_ARGUMENT, "Parameter Resources is not valid. Reason: Resources must be a list of "
                            "strings (ARNs).")
    time = entry.get("Time")
    if isinstance(time, datetime):
        time = time.timestamp()
    elif time is not None and (isinstance(time, bool) or not isinstance(time, (int, float))):
        return EntryRefusal(INVALID_ARGUMENT, f"Parameter Time is not valid. Reason: {time!r} is not a time (a "
                            "timestamp in seconds or a datetime).")
    if source != own_source:
        return EntryRefusal(NOT_AUTHORIZED_FOR_SOURCE, f"service {service!r} may only put events with source "
                            f"{own_source!r}, not {source!r} (IAM condition events:source)")
    if detail_type not in catalog.events:
        return EntryRefusal(UNKNOWN_DETAIL_TYPE, f"unknown detail-type {detail_type!r}: not in the catalog")
    if detail_type not in allowed:
        return EntryRefusal(NOT_AUTHORIZED_FOR_DETAIL_TYPE, f"service {service!r} may not put {detail_type!r} "
                            "here (IAM condition events:detail-type)")
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError as exc:
            return EntryRefusal(MALFORMED_DETAIL, f"Detail is malformed: {detail_type} Detail is not valid JSON: {exc}")
    if not isinstance(detail, dict):
        return EntryRefusal(MALFORMED_DETAIL, f"Detail is malformed: {detail_type} Detail must be a JSON object, not "
                            f"{type(detail).__name__}")
    return _prepare(catalog, source, detail_type, detail, tuple(resources), time,
                    max_entry_bytes() if limit is None else limit)


def request_size(entries: list, own_source: str) -> int:
    """The sum of the entries' sizes (:func:`~yafdp.runtime.envelope.entry_size`) that EventBridge holds against the
    request limit; an entry without a ``Source`` counts ``own_source``, one that is not an object counts nothing, and
    a ``Detail`` given as a dict counts the JSON text that would be sent.

    Examples
    --------
    >>> request_size([{"DetailType": "Payment_Success", "Detail": "{}"}] * 2, "yafdp.payment")
    60
    """
    total = 0
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        parts = [entry.get("Source", own_source), entry.get("DetailType"), entry.get("Detail")]
        if isinstance(parts[2], dict):
            try:
                parts[2] = detail_json(parts[2])
            except (TypeError, ValueError):
                parts[2] = None  # refused on its own as MalformedDetail
        source, detail_type, detail = (p if isinstance(p, str) else "" for p in parts)
        resources = entry.get("Resources")
        resources = tuple(r for r in resources if isinstance(r, str)) if isinstance(resources, (list, tuple)) else ()
        total += entry_size(source, detail_type, detail, resources, with_time=entry.get("Time") is not None)
    return total


def _prepare(catalog: Catalog, source: str, detail_type: str, detail: dict, resources: tuple[str, ...],
             time: float | None, limit: int) -> PreparedEntry | EntryRefusal:
    """The checks of an entry whose source, detail-type and detail (an object) passed: the schema, JSON, size."""
    try:
        catalog.validate_detail(detail_type, detail)
        text = detail_json(detail)
    except fastjsonschema.JsonSchemaValueException as exc:
        return EntryRefusal(SCHEMA_VIOLATION, f"{detail_type} detail breaks its schema: {exc.message}")
    except (TypeError, ValueError) as exc:
        return EntryRefusal(MALFORMED_DETAIL, f"{detail_type} detail is not JSON: {exc}")
    size = entry_size(source, detail_type, text, resources, with_time=time is not None)
    if size > limit:
        return EntryRefusal(INVALID_ARGUMENT, f"{detail_type} entry is {size} bytes; EventBridge's limit is {limit}")
    return PreparedEntry(source, detail_type, detail, text, time, resources)


def check_outbox(catalog: Catalog, service: str, allowed: frozenset[str], outbox) -> list[PreparedEntry]:
    """Check the ``(source or None, detail_type, detail)`` entries a handler or API call wants to publish.

    Returns them prepared. Raises :class:`DeliveryError` (code: the entry's ``ErrorCode``) for the first
    entry that may not be published, or when there are more than :data:`MAX_EVENTS_PER_CALL`: the call
    then fails, and nothing of it is committed.
    """
    if len(outbox) > MAX_EVENTS_PER_CALL:
        raise DeliveryError(INVALID_ARGUMENT, f"one handler call may publish at most {MAX_EVENTS_PER_CALL} events, "
                            f"not {len(outbox)}")
    prepared = []
    limit = max_entry_bytes()
    own, events = catalog.services[service].source, catalog.events
    for source, detail_type, detail in outbox:
        if (source is None or source == own) and detail_type in allowed and detail_type in events \
                and type(detail) is dict:  # what handlers publish: only the schema, JSON and size to check
            checked = _prepare(catalog, own, detail_type, detail, (), None, limit)
        else:
            entry = {"DetailType": detail_type, "Detail": detail}
            if source is not None:
                entry["Source"] = source
            checked = check_entry(catalog, service, allowed, entry, limit)
        if isinstance(checked, EntryRefusal):
            raise DeliveryError(checked.code, checked.message)
        prepared.append(checked)
    return prepared


def prepare_put_events(catalog: Catalog, sender: str, entries: Iterable[dict],
                       max_entries: int = MAX_ENTRIES_PER_PUT) -> list[PreparedEntry | EntryRefusal]:
    """Check a PutEvents request made by service ``sender``, as every backend's bus does before anything is
    published: one :class:`PreparedEntry` or :class:`EntryRefusal` per entry, in request order.

    Raises :class:`~yafdp.runtime.envelope.PublishError` (the whole request is refused, nothing published) for a
    request of no entries or more than ``max_entries`` (10 on the Classic bus; a Custom Event Bus takes 100), entries
    whose sizes add up to more than :func:`~yafdp.runtime.envelope.max_request_bytes` (1 MB; the Custom Event Bus's
    engine counts its own limit too, the same figure), or an unknown sender.
    """
    entries = list(entries)
    if not 1 <= len(entries) <= max_entries:
        raise PublishError(f"PutEvents takes 1 to {max_entries} entries, got {len(entries)}")
    service = catalog.services.get(sender)
    if service is None:
        raise PublishError(f"unknown sender {sender!r}: not a service of the catalog")
    total, request_limit = request_size(entries, service.source), max_request_bytes()
    if total > request_limit:
        raise PublishError(f"ValidationException: Total size of the entries in the request is over the limit: {total} "
                           f"bytes, EventBridge's limit is {request_limit} (data/quotas.json)")
    allowed, limit = service.may_emit(), max_entry_bytes()
    return [check_entry(catalog, sender, allowed, entry, limit) if isinstance(entry, dict)
            else EntryRefusal(INVALID_ARGUMENT, "an entry must be an object") for entry in entries]


def put_events_response(results: Iterable[str | EntryRefusal]) -> dict:
    """PutEvents' answer for per-entry ``results`` (an event id, or a refusal), in request order:
    ``{"FailedEntryCount": n, "Entries": [{"EventId"} or {"ErrorCode", "ErrorMessage"}, ...]}``.

    Examples
    --------
    >>> put_events_response(["ev-1", EntryRefusal("MalformedDetail", "not an object")])["FailedEntryCount"]
    1
    """
    entries = [r.to_aws() if isinstance(r, EntryRefusal) else {"EventId": r} for r in results]
    return {"FailedEntryCount": sum("ErrorCode" in e for e in entries), "Entries": entries}


def event_ids(response: dict) -> list[str | None]:
    """The ``EventId`` of each entry of a PutEvents response (None for a failed one)."""
    return [entry.get("EventId") for entry in response["Entries"]]


# ---------------------------------------------------------------- on a Custom Event Bus

def deduplication_id(published_by: str, index: int) -> str:
    """The ``DeduplicationId`` of the ``index``-th event a unit of work published: the same on every retry of
    that unit of work, at most 128 characters (API Reference, PutEventsSystemMetadata).

    Examples
    --------
    >>> deduplication_id("yafdp-payment-charges-order#0190", 0)
    'yafdp-payment-charges-order#0190#0'
    """
    text = f"{published_by}#{index}"
    return text if len(text) <= 128 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def custom_bus_entries(prepared: list[PreparedEntry], settings: CustomBusSettings, published_by: str | None,
                       by_id: bool) -> list[dict]:
    """Prepared entries as a Custom Event Bus ``PutEvents`` takes them (``Source``, ``DetailType``, ``Detail``,
    ``Resources``, ``Time``, ``SystemMetadata``): ``EventGroupId`` the catalog's event group of the event (e.g.
    its order id) and, with ``by_id`` and a unit of work ``published_by``, a ``DeduplicationId`` naming that unit
    of work and the entry's place in its outbox (:func:`deduplication_id`), so a producer that publishes the same
    outbox again is answered ``DEDUPLICATED`` (the Custom Event Bus's deduplication at publish, UG "Ordering and
    deduplication", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html)."""
    entries = []
    for index, (source, detail_type, detail, text, time, resources) in enumerate(prepared):
        system = {}
        group = settings.group_of({"detail": detail})
        if group is not None:
            system["EventGroupId"] = group
        if by_id and published_by is not None:
            system["DeduplicationId"] = deduplication_id(published_by, index)
        entry = {"Source": source, "DetailType": detail_type, "Detail": text, "SystemMetadata": system}
        if resources:
            entry["Resources"] = list(resources)
        if time is not None:
            entry["Time"] = time
        entries.append(entry)
    return entries
