"""A subscriber's filters: one EventBridge event pattern per scope (``DATA``, ``METADATA``, ``SYSTEM_METADATA``),
all of which must match.

From UG "Filtering events" (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-filtering.html):
at most one filter per scope; no configuration means every event; ``wildcard`` and ``anything-but`` with
wildcard are rejected ("Filter pattern must not contain wildcard matchers (wildcard, anything-but wildcard)");
all filters together at most 4,096 bytes; ``METADATA`` takes exact values only and never matches a ``PutEvents``
event (its Metadata is empty). Patterns are the project's own EventBridge pattern engine (:mod:`yafdp.patterns`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from yafdp.custom_event_bus.errors import invalid
from yafdp.custom_event_bus.events import StoredEvent
from yafdp.custom_event_bus.limits import FILTER_LANGUAGES, FILTER_SCOPES, MAX_FILTER_BYTES
from yafdp.patterns import Pattern, PatternError, compile_pattern

WILDCARD_REFUSAL = "Filter pattern must not contain wildcard matchers (wildcard, anything-but wildcard)"
_METADATA_OPERATORS_REFUSED = ("prefix", "suffix", "numeric", "exists", "anything-but", "equals-ignore-case",
                               "cidr", "wildcard")


@dataclass(frozen=True)
class SubscriberFilter:
    """The compiled filters of one subscriber: ``data``, ``metadata`` and ``system`` patterns (None: that scope
    is not filtered); ``document`` the ``FilterConfiguration`` as stored (None: every event)."""

    data: Pattern | None = None
    metadata: Pattern | None = None
    system: Pattern | None = None
    document: dict | None = None

    def matches(self, event: StoredEvent, delivery_type: str = "LIVE", *, data_matched: bool | None = None) -> bool:
        """Whether every filter matches ``event``; ``data_matched`` when the ``DATA`` scope was already decided
        (the bus routes live events through one rule set of every subscriber's ``DATA`` pattern)."""
        if self.data is not None and not (data_matched if data_matched is not None else self.data.matches(event.data)):
            return False
        if self.metadata is not None and not (event.metadata and self.metadata.matches(event.metadata)):
            return False
        if self.system is not None and not self.system.matches(event.system_metadata(delivery_type)):
            return False
        return True


EVERY_EVENT = SubscriberFilter()


def compile_filters(configuration: dict | None, member: str = "FilterConfiguration") -> SubscriberFilter:
    """Check and compile a ``FilterConfiguration``; raises ``InvalidInputException`` naming the member.

    Examples
    --------
    >>> f = compile_filters({"Filters": [{"Scope": "DATA", "Pattern": '{"source": ["yafdp.order"]}'}]})
    >>> f.data is not None, f.system is None
    (True, True)
    """
    if configuration is None:
        return EVERY_EVENT
    if not isinstance(configuration, dict):
        raise invalid(member, "must be a structure with Filters")
    filters = configuration.get("Filters")
    language = configuration.get("Language", "EVENT_BRIDGE_PATTERN")
    if language not in FILTER_LANGUAGES:
        raise invalid(f"{member}.Language", f"must be one of {', '.join(FILTER_LANGUAGES)}, got {language!r}")
    if not isinstance(filters, list) or not filters:
        raise invalid(f"{member}.Filters", "must list at least one filter (leave FilterConfiguration out to receive "
                      "every event)")
    scopes: dict[str, Pattern] = {}
    total = 0
    for i, item in enumerate(filters):
        where = f"{member}.Filters[{i}]"
        if not isinstance(item, dict):
            raise invalid(where, "must be a structure with Scope and Pattern")
        scope, text = item.get("Scope"), item.get("Pattern")
        if scope not in FILTER_SCOPES:
            raise invalid(f"{where}.Scope", f"must be one of {', '.join(FILTER_SCOPES)}, got {scope!r}")
        if scope in scopes:
            raise invalid(f"{where}.Scope", f"a subscriber has at most one filter per scope; {scope} is given twice")
        if not isinstance(text, str):
            raise invalid(f"{where}.Pattern", "must be the event pattern as a JSON string")
        total += len(text.encode())
        if total > MAX_FILTER_BYTES:
            raise invalid(f"{member}.Filters", f"the filters add up to more than {MAX_FILTER_BYTES:,} bytes, the most "
                          "all filters of a subscriber together may have")
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise invalid(f"{where}.Pattern", f"is not valid JSON ({exc})") from None
        if not isinstance(document, dict):
            raise invalid(f"{where}.Pattern", "must be a JSON object")
        if _has_wildcard(document):
            raise invalid(f"{where}.Pattern", WILDCARD_REFUSAL)
        if scope == "METADATA":
            _exact_values_only(document, f"{where}.Pattern")
        try:
            scopes[scope] = compile_pattern(document, max_length=MAX_FILTER_BYTES)
        except PatternError as exc:
            raise invalid(f"{where}.Pattern", str(exc)) from None
    return SubscriberFilter(scopes.get("DATA"), scopes.get("METADATA"), scopes.get("SYSTEM_METADATA"),
                            {"Filters": [dict(f) for f in filters], "Language": language})


def _has_wildcard(node) -> bool:
    if isinstance(node, dict):
        if "wildcard" in node:
            return True
        inner = node.get("anything-but")
        if isinstance(inner, dict) and "wildcard" in inner:
            return True
        return any(_has_wildcard(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_wildcard(v) for v in node)
    return False


def _exact_values_only(document: dict, where: str) -> None:
    """``METADATA`` patterns: "exact values only (each value a JSON array of literals); no prefix, numeric,
    exists, $or" (UG filtering)."""
    for key, value in document.items():
        if key == "$or":
            raise invalid(where, "a METADATA filter takes exact values only: no $or")
        if not isinstance(value, list) or any(isinstance(v, (dict, list)) for v in value):
            raise invalid(where, f"a METADATA filter takes exact values only: {key!r} must be a JSON array of "
                          f"literal values (no {', '.join(_METADATA_OPERATORS_REFUSED)})")
