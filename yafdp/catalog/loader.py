"""Reading the catalog from a folder (``bus.json`` and ``services/<name>.json``), checking every file and
every cross-reference; each problem is a :class:`~yafdp.catalog.model.CatalogError` naming the file and key.

:func:`read_json` and :func:`shape_check` are the helpers the other loaders of ``data/`` (marketplace,
latency profiles, quotas) use too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import fastjsonschema

from yafdp.catalog.model import (BUS_KINDS, CUSTOM_BUS_DEFAULT_RETRY_POLICY, DEDUPLICATION_MODES, EVENT_KINDS,
                                 EVENTBRIDGE_DEFAULT_RETRY_POLICY, PATHS, QUEUE_TYPES, SCHEDULE_TARGETS,
                                 SUBSCRIBER_TYPES, TARGET_KINDS, Bus, Catalog, CatalogError, CustomBusSettings,
                                 Entrypoint, EventType, Service, Subscription, compiled_schema, envelope_pattern)
from yafdp.catalog.saga import OUTCOME_KINDS, STEP_KINDS
from yafdp.patterns import PatternError, compile_pattern
from yafdp.patterns.jsontext import json_number
from yafdp.reading import CATALOG_FILE_BYTES, MAX_JSON_DEPTH, TooLargeError, json_deeper_than, read_bytes
from yafdp.shipped import DATA_DIR

DEFAULT_DATA_DIR = DATA_DIR  # the shipped catalog (yafdp.shipped says where it is)

RULE_NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")
DETAIL_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Load and check the catalog in ``path`` (default: the shipped ``data/``).

    Raises
    ------
    CatalogError
        naming the file and the key of the first problem found.

    Examples
    --------
    >>> catalog = load_catalog()
    >>> catalog.events["Payment_Success"].service
    'payment'
    """
    root = Path(path) if path is not None else DEFAULT_DATA_DIR
    bus_document = read_json(root / "bus.json")
    bus = _load_bus(root / "bus.json", bus_document)
    files = sorted(p for p in (root / "services").glob("*.json") if not p.name.startswith("."))  # not a draft
    if not files:
        raise CatalogError(root / "services", "", "no service files (services/<name>.json) found")
    services: dict[str, Service] = {}
    events: dict[str, EventType] = {}
    documents: dict[str, Any] = {"bus.json": bus_document}
    for file in files:
        document = read_json(file)
        service, service_events = _load_service(file, document, bus)
        documents[f"services/{file.name}"] = document
        if service.name in services:
            raise CatalogError(file, "service", f"service {service.name!r} is also defined in {services[service.name].file}")
        for name, ev in service_events.items():
            if name in events:
                raise CatalogError(file, f"events.{name}", f"event {name!r} is already produced by service {events[name].service!r}")
            events[name] = ev
        services[service.name] = service
    _check_cross_references(services, events, bus, root / "bus.json")
    return Catalog(root, bus, MappingProxyType(services), MappingProxyType(events), MappingProxyType(documents))


def read_json(file: Path) -> Any:
    """The JSON document in ``file``; :class:`CatalogError` naming the file (and line) when it cannot be read, or
    is larger than :data:`yafdp.reading.CATALOG_FILE_BYTES` (checked before reading, and while reading a device)."""
    try:
        text = read_bytes(file, CATALOG_FILE_BYTES, "a catalog file").decode("utf-8")
    except OSError as exc:
        raise CatalogError(file, "", f"cannot read the file ({exc.strerror})") from None
    except TooLargeError as exc:
        raise CatalogError(file, "", exc.problem) from None
    except UnicodeDecodeError as exc:
        raise CatalogError(file, f"byte {exc.start}", "not UTF-8 text (JSON files are UTF-8)") from None
    if json_deeper_than(text):  # Python's parser would fail near 1,000 levels with a RecursionError
        raise CatalogError(file, "", f"nests deeper than {MAX_JSON_DEPTH} levels (this project's limit for JSON)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(file, f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}") from None


def shape_check(file: Path, document: Any, schema_check) -> None:
    """Check ``document`` with a compiled fastjsonschema validator; :class:`CatalogError` naming the key if not."""
    try:
        schema_check(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        key = exc.name.removeprefix("data").lstrip(".")  # "data.subscriptions[0].path" -> "subscriptions[0].path"
        problem = exc.message.removeprefix(exc.name).strip()
        raise CatalogError(file, key or "(top level)", problem) from None


_BUS_SHAPE = fastjsonschema.compile({
    "type": "object",
    "required": ["bus_name", "source_prefix", "start_event", "archive", "saga"],
    "properties": {
        "description": {"type": "string"},
        "bus_name": {"type": "string", "pattern": r"^[/\.\-_A-Za-z0-9]{1,256}$"},
        "source_prefix": {"type": "string", "minLength": 1},
        "start_event": {"type": "string"},
        "retry_policy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                # EventBridge's own bounds for a target's RetryPolicy.
                "MaximumRetryAttempts": {"type": "integer", "minimum": 0, "maximum": 185},
                "MaximumEventAgeInSeconds": {"type": "integer", "minimum": 60, "maximum": 86400},
            },
        },
        "archive": {
            "type": "object",
            "required": ["name", "retention_days"],
            "properties": {"name": {"type": "string"}, "retention_days": {"type": "integer", "minimum": 0}},
        },
        "target": {"enum": list(TARGET_KINDS)},
        "saga": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "tracker", "statuses", "status_after", "outcomes"],
            "properties": {
                "description": {"type": "string"},
                # The field of every event's detail (and of every request) that names the saga it belongs to.
                "id": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                "tracker": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["service", "kind", "field", "initial"],
                    "properties": {"service": {"type": "string"}, "kind": {"type": "string", "minLength": 1},
                                   "field": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                                   "initial": {"type": "string"}},
                },
                "statuses": {"type": "object", "minProperties": 2,
                             "additionalProperties": {"type": "integer", "minimum": 0}},
                "status_after": {"type": "object", "additionalProperties": {"type": "string"}},
                "outcomes": {"type": "object", "minProperties": 1, "additionalProperties": {"enum": list(OUTCOME_KINDS)}},
            },
        },
        "kind": {"enum": list(BUS_KINDS)},
        "custom_event_bus": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "description": {"type": "string"},
                # A Custom Event Bus retains events 1 to 365 days (UG "Creating a bus").
                "retention_days": {"type": "integer", "minimum": 1, "maximum": 365},
                "event_group": {"type": "string", "pattern": r"^detail(\.[A-Za-z0-9_]+)+$"},
                "deduplication": {"enum": list(DEDUPLICATION_MODES)},
                "subscriber_type": {"enum": list(SUBSCRIBER_TYPES)},
                "queue_type": {"enum": list(QUEUE_TYPES)},
                "schedule_target": {"enum": list(SCHEDULE_TARGETS)},
                "retry_policy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        # A subscriber's RetryPolicy bounds (M RetryPolicy; UG retry).
                        "MaxRetryAttempts": {"type": "integer", "minimum": 0, "maximum": 185},
                        "MaxEventAgeInSeconds": {"type": "integer", "minimum": 60, "maximum": 86400},
                    },
                },
            },
        },
    },
    "additionalProperties": False,
})

_NAME_LIST = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
_SERVICE_SHAPE = fastjsonschema.compile({
    "type": "object",
    "additionalProperties": False,
    "required": ["service", "source", "description", "origin", "events", "subscriptions"],
    "properties": {
        "service": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$"},
        "source": {"type": "string"},
        "description": {"type": "string", "minLength": 1},
        "origin": {"enum": ["blog", "extension"]},
        "entrypoints": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "purpose", "emits"],
                "properties": {"name": {"type": "string"}, "purpose": {"type": "string"}, "emits": _NAME_LIST,
                               "schedules": _NAME_LIST},
            },
        },
        "events": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["description", "origin", "kind", "terminal", "schema"],
                "properties": {
                    "description": {"type": "string", "minLength": 1},
                    "origin": {"enum": ["blog", "extension"]},
                    "kind": {"enum": list(EVENT_KINDS)},
                    "terminal": {"type": "boolean"},
                    "schema": {"type": "object"},
                    "step": {"enum": list(STEP_KINDS)},
                    "compensates": {"type": "string"},
                },
            },
        },
        "subscriptions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["rule", "handler", "purpose", "path", "emits", "pattern"],
                "properties": {
                    "rule": {"type": "string"},
                    "handler": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
                    "purpose": {"type": "string", "minLength": 1},
                    "path": {"enum": list(PATHS)},
                    "emits": _NAME_LIST,
                    "pattern": {"type": "object"},
                    "target": {"enum": list(TARGET_KINDS)},
                    # On a Custom Event Bus, what this subscription's subscriber sets apart from the bus's defaults,
                    # in AWS's member names; the plan checks each value as CreateSubscriber would.
                    "subscriber": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "Type": {"enum": list(SUBSCRIBER_TYPES)},
                            "Filters": {"type": "array"},
                            "RetryPolicy": {"type": "object"},
                            "Transformer": {"type": "object"},
                            "InvocationType": {"enum": ["EVENT", "REQUEST_RESPONSE"]},
                        },
                    },
                },
            },
        },
    },
})


def _load_bus(file: Path, doc: Any) -> Bus:
    shape_check(file, doc, _BUS_SHAPE)
    return Bus(
        name=doc["bus_name"],
        source_prefix=doc["source_prefix"],
        start_event=doc["start_event"],
        # What the catalog leaves out is EventBridge's own default (185 attempts, 24 hours).
        retry_policy=MappingProxyType({**EVENTBRIDGE_DEFAULT_RETRY_POLICY, **doc.get("retry_policy", {})}),
        archive=MappingProxyType(dict(doc["archive"])),
        target=doc.get("target", "queue"),
        saga=MappingProxyType(dict(doc["saga"])),
        kind=doc.get("kind", "classic"),
        custom=_custom_settings(doc.get("custom_event_bus", {}), doc["saga"]["id"]),
    )


def _custom_settings(doc: dict, saga_id: str) -> CustomBusSettings:
    """``custom_event_bus`` of ``bus.json`` (already shape-checked); what it leaves out is AWS's default, and the
    event group is the saga's (``detail.<saga id field>``: every event of one saga is one event group)."""
    defaults = CustomBusSettings()
    return CustomBusSettings(
        retention_days=doc.get("retention_days", defaults.retention_days),
        event_group=tuple(doc["event_group"].split(".")) if "event_group" in doc else ("detail", saga_id),
        deduplication=doc.get("deduplication", defaults.deduplication),
        subscriber_type=doc.get("subscriber_type", defaults.subscriber_type),
        queue_type=doc.get("queue_type", defaults.queue_type),
        schedule_target=doc.get("schedule_target", defaults.schedule_target),
        retry_policy=MappingProxyType({**CUSTOM_BUS_DEFAULT_RETRY_POLICY, **doc.get("retry_policy", {})}),
    )


def _load_service(file: Path, doc: Any, bus: Bus) -> tuple[Service, dict[str, EventType]]:
    shape_check(file, doc, _SERVICE_SHAPE)
    if file.stem != doc["service"]:
        raise CatalogError(file, "service", f"service {doc['service']!r} must live in a file named {doc['service']}.json")
    _check_written_numbers(file)
    return service_from_document(file, doc, bus)


def _check_written_numbers(file: Path) -> None:
    """Refuse a pattern whose numbers EventBridge would refuse as written: ``json`` rounds ``1.00000000000000001`` to
    1.0 before the pattern is compiled, so a file holding a number no double holds is read again keeping such
    numbers as written (:func:`yafdp.patterns.jsontext.json_number`), and its patterns compiled from that."""
    inexact = []

    def number(token: str):
        value = json_number(token)
        if not isinstance(value, float):
            inexact.append(token)
        return value

    written = json.loads(read_bytes(file, CATALOG_FILE_BYTES, "a catalog file").decode("utf-8"), parse_float=number)
    if not inexact:
        return
    for i, spec in enumerate(written.get("subscriptions", [])):
        try:
            compile_pattern(spec["pattern"])
        except PatternError as exc:
            raise CatalogError(file, f"subscriptions[{i}].pattern", str(exc)) from None


def service_from_document(file: Path | str, doc: dict, bus: Bus) -> tuple[Service, dict[str, EventType]]:
    """A service and its events from a service document (what ``data/services/<name>.json`` holds), checked
    as the loader checks a file; ``file`` names where the document comes from in error messages."""
    shape_check(file, doc, _SERVICE_SHAPE)
    name = doc["service"]
    expected_source = bus.source_prefix + name
    if doc["source"] != expected_source:
        raise CatalogError(file, "source", f"is {doc['source']!r}; a service's source must be {expected_source!r}")

    events = {}
    for event_name, spec in doc["events"].items():
        key = f"events.{event_name}"
        if not DETAIL_TYPE.match(event_name):
            raise CatalogError(file, key, "an event name must be letters, digits and underscores, starting with a letter")
        _check_schema(file, f"{key}.schema", spec["schema"])
        if "step" in spec and spec["kind"] != "happy":
            raise CatalogError(file, f"{key}.step", f"only a happy event is a step; {event_name!r} is a {spec['kind']} event")
        if "compensates" in spec and spec["kind"] != "compensation":
            raise CatalogError(file, f"{key}.compensates", f"only a compensation event compensates a step; "
                                                            f"{event_name!r} is a {spec['kind']} event")
        events[event_name] = EventType(
            name=event_name, service=name, source=doc["source"], description=spec["description"],
            origin=spec["origin"], kind=spec["kind"], terminal=spec["terminal"],
            schema=MappingProxyType(spec["schema"]), step=spec.get("step"), compensates=spec.get("compensates"),
        )
    for event_name, ev in events.items():  # a service undoes its own steps
        if ev.compensates is not None and (ev.compensates not in events or events[ev.compensates].kind != "happy"):
            raise CatalogError(file, f"events.{event_name}.compensates",
                               f"{ev.compensates!r} is not one of this service's happy events "
                               f"{sorted(n for n, e in events.items() if e.kind == 'happy')}; a service compensates "
                               "its own steps")

    subscriptions = []
    for i, spec in enumerate(doc["subscriptions"]):
        key = f"subscriptions[{i}]"
        if not RULE_NAME.match(spec["rule"]):
            raise CatalogError(file, f"{key}.rule", "a rule name is 1-64 characters of letters, digits, '.', '-' and '_' (EventBridge's limit)")
        pattern = spec["pattern"]
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            raise CatalogError(file, f"{key}.pattern", str(exc)) from None
        missing = [k for k in ("source", "detail-type") if k not in envelope_pattern(pattern)]
        if missing:
            raise CatalogError(file, f"{key}.pattern", f"must filter on {' and '.join(missing)} (every rule names the events it wants)")
        subscriptions.append(Subscription(
            rule=spec["rule"], service=name, handler=spec["handler"], purpose=spec["purpose"],
            path=spec["path"], emits=tuple(spec["emits"]), pattern=MappingProxyType(pattern),
            target=spec.get("target"), subscriber=MappingProxyType(spec["subscriber"]) if "subscriber" in spec else None,
        ))
        _check_emits(file, f"{key}.emits", spec["emits"], events)

    entrypoints = []
    for i, spec in enumerate(doc.get("entrypoints", [])):
        _check_emits(file, f"entrypoints[{i}].emits", spec["emits"], events)
        _check_emits(file, f"entrypoints[{i}].schedules", spec.get("schedules", []), events)
        entrypoints.append(Entrypoint(spec["name"], name, spec["purpose"], tuple(spec["emits"]),
                                      tuple(spec.get("schedules", ()))))

    service = Service(
        name=name, source=doc["source"], description=doc["description"], origin=doc["origin"],
        file=str(file), events=tuple(events), subscriptions=tuple(subscriptions), entrypoints=tuple(entrypoints),
    )
    return service, events


def _check_schema(file: Path, key: str, schema: Any) -> None:
    """A schema is valid JSON Schema, its regular expressions compile, and it is self-contained: a ``$ref``
    points inside it (``#/…``), never to a URL or a file, so loading a catalog never fetches anything."""
    for where, ref in _refs(schema):
        if not ref.startswith("#"):
            raise CatalogError(file, f"{key}{where}.$ref", f"{ref!r} points outside this schema (a URL or a file); "
                                                           "a schema must be self-contained (`#/…` only): yafdp never fetches one")
    try:
        compiled_schema(schema)
    except re.error as exc:
        raise CatalogError(file, key, f"has an invalid regular expression {exc.pattern!r}: {exc}") from None
    except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError, RecursionError) as exc:
        raise CatalogError(file, key, f"is not a valid JSON Schema: {exc}") from None


def _refs(node: Any, where: str = ""):
    """Every ``$ref`` string in a schema, with where it is (``.properties.amount``)."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from _refs(value, f"{where}.{name}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, f"{where}[{i}]")


def _check_saga(bus: Bus, services: Mapping[str, Service], events: Mapping[str, EventType], bus_file: Path) -> None:
    """``bus.json``'s ``saga`` names the catalog's own services, events and statuses, and its start event carries
    the saga's id."""
    saga = bus.saga
    statuses = saga["statuses"]
    tracker = saga["tracker"]
    if tracker["service"] not in services:
        raise CatalogError(bus_file, "saga.tracker.service", f"{tracker['service']!r} is not a service of the catalog "
                                                              f"{sorted(services)}")
    if tracker["initial"] not in statuses:
        raise CatalogError(bus_file, "saga.tracker.initial", f"{tracker['initial']!r} is not one of saga.statuses")
    for event, status in saga["status_after"].items():
        if event not in events:
            raise CatalogError(bus_file, f"saga.status_after.{event}", f"{event!r} is not an event of any service")
        if status not in statuses:
            raise CatalogError(bus_file, f"saga.status_after.{event}", f"{status!r} is not one of saga.statuses")
    for status in saga["outcomes"]:
        if status not in statuses:
            raise CatalogError(bus_file, f"saga.outcomes.{status}", f"{status!r} is not one of saga.statuses")
    if "completed" not in saga["outcomes"].values():
        raise CatalogError(bus_file, "saga.outcomes", "no outcome is 'completed': a saga must be able to succeed")
    required = events[bus.start_event].schema.get("required", [])
    if saga["id"] not in required:
        raise CatalogError(services[events[bus.start_event].service].file, f"events.{bus.start_event}.schema.required",
                           f"the start event's schema must require the saga's id field {saga['id']!r} (bus.json saga.id)")


def _check_emits(file: Path, key: str, emits: list[str], own_events: Mapping[str, EventType]) -> None:
    for event in emits:
        if event not in own_events:
            raise CatalogError(file, key, f"{event!r} is not one of this service's events {sorted(own_events)}; "
                                          "a service may only publish events with its own source")


def _check_cross_references(services: Mapping[str, Service], events: Mapping[str, EventType],
                            bus: Bus, bus_file: Path) -> None:
    if bus.start_event not in events:
        raise CatalogError(bus_file, "start_event", f"{bus.start_event!r} is not an event of any service")
    _check_saga(bus, services, events, bus_file)
    _check_event_group(bus, events, bus_file)
    rules: dict[str, str] = {}
    for service in services.values():
        for i, sub in enumerate(service.subscriptions):
            if sub.rule in rules:
                raise CatalogError(service.file, f"subscriptions[{i}].rule",
                                   f"rule {sub.rule!r} is already defined in {rules[sub.rule]}")
            rules[sub.rule] = service.file


def _check_event_group(bus: Bus, events: Mapping[str, EventType], bus_file: Path) -> None:
    """The Custom Event Bus's ``EventGroupId`` path must name a required string of every event's ``detail``:
    an event without it would be a group of its own, out of order with its saga's other events."""
    path = bus.custom.event_group
    for name, event in events.items():
        schema: Any = event.schema
        for part in path[1:]:
            properties = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
            if part not in properties or part not in schema.get("required", []):
                raise CatalogError(bus_file, "custom_event_bus.event_group",
                                   f"{'.'.join(path)!r} is not a required field of event {name!r} (service "
                                   f"{event.service!r}); every event needs it: it is the event's EventGroupId")
            schema = properties[part]
        if not isinstance(schema, Mapping) or schema.get("type") != "string":
            raise CatalogError(bus_file, "custom_event_bus.event_group",
                               f"{'.'.join(path)!r} of event {name!r} is not a string; an EventGroupId is 1 to 128 "
                               "characters (API Reference, PutEventsSystemMetadata)")
