"""What may be published, checked the same way by every backend before an event reaches the bus.

A service may only publish its own ``source`` (as the IAM condition ``events:source`` enforces on AWS), only
the detail-types its catalog entry allows (``events:detail-type``), only details that satisfy the event's
schema, and only entries within EventBridge's size limit.
"""

from __future__ import annotations

from typing import Iterable

import fastjsonschema

from yafdp.catalog import Catalog
from yafdp.errors import YafdpError
from yafdp.runtime.envelope import MAX_ENTRIES_PER_PUT, MAX_ENTRY_BYTES, PublishError, detail_json, entry_size

MAX_EVENTS_PER_CALL = 100


class DeliveryError(YafdpError):
    """Why a target failed an event, with the code EventBridge would put in the dead-letter queue."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


def check_outbox(catalog: Catalog, service: str, allowed: frozenset[str], outbox) -> list[tuple]:
    """Check ``(source or None, detail_type, detail)`` entries a service wants to publish.

    Returns ``(source, detail_type, detail, detail_json)`` tuples ready for the bus; raises
    :class:`DeliveryError` for the first entry that may not be published (then nothing is).
    """
    own_source = catalog.services[service].source
    if len(outbox) > MAX_EVENTS_PER_CALL:
        raise DeliveryError("INVALID_PARAMETER", f"one handler call may publish at most {MAX_EVENTS_PER_CALL} events, not {len(outbox)}")
    prepared = []
    for source, detail_type, detail in outbox:
        source = source or own_source
        if source != own_source:
            raise DeliveryError("NO_PERMISSIONS", f"AccessDeniedException: service {service!r} may only put events "
                                f"with source {own_source!r}, not {source!r} (IAM condition events:source)")
        if detail_type not in catalog.events:
            raise DeliveryError("INVALID_PARAMETER", f"unknown detail-type {detail_type!r}: not in the catalog")
        if detail_type not in allowed:
            raise DeliveryError("NO_PERMISSIONS", f"AccessDeniedException: service {service!r} may not put "
                                f"{detail_type!r} here (IAM condition events:detail-type)")
        if not isinstance(detail, dict):
            raise DeliveryError("INVALID_JSON", f"{detail_type} detail must be a JSON object, not {type(detail).__name__}")
        try:
            catalog.validate_detail(detail_type, detail)
            text = detail_json(detail)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise DeliveryError("INVALID_PARAMETER", f"{detail_type} detail breaks its schema: {exc.message}") from None
        except (TypeError, ValueError) as exc:
            raise DeliveryError("INVALID_JSON", f"{detail_type} detail is not JSON: {exc}") from None
        size = entry_size(source, detail_type, text)
        if size > MAX_ENTRY_BYTES:
            raise DeliveryError("INVALID_PARAMETER", f"{detail_type} entry is {size} bytes; EventBridge's limit is {MAX_ENTRY_BYTES}")
        prepared.append((source, detail_type, detail, text))
    return prepared


def prepare_put_events(catalog: Catalog, sender: str, entries: Iterable[dict]) -> list[tuple]:
    """Check a PutEvents request (``{"DetailType", "Detail"[, "Source"]}`` entries) made by service ``sender``,
    as every backend's bus does before anything is published.

    Returns the entries as :func:`check_outbox` prepares them. Raises :class:`~yafdp.runtime.envelope.PublishError`
    (the whole request is refused) for a request of no entries or more than 10, an unknown sender, or an entry
    that may not be published.
    """
    entries = list(entries)
    if not 1 <= len(entries) <= MAX_ENTRIES_PER_PUT:
        raise PublishError(f"PutEvents takes 1 to {MAX_ENTRIES_PER_PUT} entries, got {len(entries)}")
    service = catalog.services.get(sender)
    if service is None:
        raise PublishError(f"unknown sender {sender!r}: not a service of the catalog")
    try:
        return check_outbox(catalog, sender, service.may_emit(),
                            [(e.get("Source"), e.get("DetailType"), e.get("Detail")) for e in entries])
    except DeliveryError as exc:
        raise PublishError(str(exc)) from None
