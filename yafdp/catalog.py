"""The event catalog: which services exist, the events each produces, and the rules each subscribes with.

It is read from ``data/`` (``bus.json`` and one ``services/<name>.json`` per service) and is the single
source of truth for the graph, the deployment plan and the runtime. Every error names its file and key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import fastjsonschema

from yafdp.patterns import PatternError, compile_pattern

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"

RULE_NAME = re.compile(r"^[\.\-_A-Za-z0-9]{1,64}$")
DETAIL_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
PATHS = ("happy", "compensation", "observe")
EVENT_KINDS = ("happy", "failure", "compensation")


class CatalogError(ValueError):
    """A catalog file is missing, is not JSON, or has an entry that is wrong; says which file and key."""

    def __init__(self, file: Path | str, key: str, problem: str):
        self.file, self.key, self.problem = str(file), key, problem
        where = f"{self.file}: {key}: " if key else f"{self.file}: "
        super().__init__(where + problem)


@dataclass(frozen=True)
class EventType:
    """One kind of event on the bus: its ``detail-type`` name, who produces it and the schema of its ``detail``."""

    name: str
    service: str
    source: str
    description: str
    origin: str
    kind: str
    terminal: bool
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Subscription:
    """One rule on the bus: an EventBridge event pattern and the service handler that reacts to matches."""

    rule: str
    service: str
    handler: str
    purpose: str
    path: str
    emits: tuple[str, ...]
    pattern: Mapping[str, Any]


@dataclass(frozen=True)
class Entrypoint:
    """A way into a service from outside the bus (an API call) and the events it may publish."""

    name: str
    service: str
    purpose: str
    emits: tuple[str, ...]


@dataclass(frozen=True)
class Service:
    name: str
    source: str
    description: str
    origin: str
    file: str
    events: tuple[str, ...]
    subscriptions: tuple[Subscription, ...]
    entrypoints: tuple[Entrypoint, ...]

    def may_emit(self) -> frozenset[str]:
        """Every detail-type this service's handlers and entry points may publish."""
        emitted = [e for s in self.subscriptions for e in s.emits]
        emitted += [e for p in self.entrypoints for e in p.emits]
        return frozenset(emitted)


@dataclass(frozen=True)
class Bus:
    name: str
    source_prefix: str
    start_event: str
    retry_policy: Mapping[str, int]
    archive: Mapping[str, Any]


@dataclass(frozen=True)
class Catalog:
    """Services, events and subscriptions, checked against each other; see :func:`load_catalog`."""

    path: Path
    bus: Bus
    services: Mapping[str, Service]
    events: Mapping[str, EventType]
    _validators: dict = field(default_factory=dict, repr=False, compare=False)
    _matched: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def subscriptions(self) -> list[Subscription]:
        return [s for svc in self.services.values() for s in svc.subscriptions]

    def subscription(self, rule: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.rule == rule:
                return sub
        raise KeyError(f"no subscription with rule name {rule!r}")

    def matched_events(self, sub: Subscription) -> list[str]:
        """The catalog's events whose ``source`` and ``detail-type`` the rule's pattern accepts."""
        matched = self._matched.get(sub.rule)
        if matched is None:  # the catalog does not change, so each rule is worked out once
            envelope_only = compile_pattern(envelope_pattern(sub.pattern))
            matched = self._matched[sub.rule] = tuple(
                name for name, ev in self.events.items()
                if envelope_only.matches({"source": ev.source, "detail-type": name}))
        return list(matched)

    def consumers(self, event: str) -> list[Subscription]:
        """The subscriptions whose rules accept ``event`` (on source and detail-type)."""
        return [s for s in self.subscriptions if event in self.matched_events(s)]

    def validate_detail(self, event: str, detail: Any) -> None:
        """Raise ``fastjsonschema.JsonSchemaValueException`` when ``detail`` breaks the event's schema."""
        self._validator(event)(detail)

    def compile_schemas(self) -> None:
        """Compile every event's schema validator now, so no delivery pays for it (and no timing shows it)."""
        for event in self.events:
            self._validator(event)

    def _validator(self, event: str):
        validator = self._validators.get(event)
        if validator is None:
            validator = self._validators[event] = fastjsonschema.compile(dict(self.events[event].schema))
        return validator

    def without(self, *services: str) -> "Catalog":
        """The same catalog without some services, e.g. the platform before the Loyalty service existed."""
        kept = {n: s for n, s in self.services.items() if n not in services}
        events = {n: e for n, e in self.events.items() if e.service in kept}
        return Catalog(self.path, self.bus, MappingProxyType(kept), MappingProxyType(events))


def envelope_pattern(pattern: Mapping[str, Any]) -> dict:
    """The part of a pattern that constrains ``source`` and ``detail-type`` (``$or`` branches included)."""
    kept: dict = {k: pattern[k] for k in ("source", "detail-type") if k in pattern}
    if "$or" in pattern:
        branches = [envelope_pattern(b) for b in pattern["$or"]]
        if all(branches):
            kept["$or"] = branches
    return kept


def detail_type_literals(pattern: Mapping[str, Any]) -> set[str]:
    """Exact ``detail-type`` strings a pattern names, to catch subscriptions to events that do not exist."""
    names = {v for v in pattern.get("detail-type", []) if isinstance(v, str)}
    for branch in pattern.get("$or", []):
        names |= detail_type_literals(branch)
    return names


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
    bus = _load_bus(root / "bus.json")
    files = sorted((root / "services").glob("*.json"))
    if not files:
        raise CatalogError(root / "services", "", "no service files (services/<name>.json) found")
    services: dict[str, Service] = {}
    events: dict[str, EventType] = {}
    for file in files:
        service, service_events = _load_service(file, bus)
        if service.name in services:
            raise CatalogError(file, "service", f"service {service.name!r} is also defined in {services[service.name].file}")
        for name, ev in service_events.items():
            if name in events:
                raise CatalogError(file, f"events.{name}", f"event {name!r} is already produced by service {events[name].service!r}")
            events[name] = ev
        services[service.name] = service
    _check_cross_references(services, events, bus, root / "bus.json")
    return Catalog(root, bus, MappingProxyType(services), MappingProxyType(events))


def _read_json(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(file, "", f"cannot read the file ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(file, f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}") from None


def _shape_check(file: Path, document: Any, schema_check) -> None:
    try:
        schema_check(document)
    except fastjsonschema.JsonSchemaValueException as exc:
        key = exc.name.removeprefix("data").lstrip(".")  # "data.subscriptions[0].path" -> "subscriptions[0].path"
        problem = exc.message.removeprefix(exc.name).strip()
        raise CatalogError(file, key or "(top level)", problem) from None


_BUS_SHAPE = fastjsonschema.compile({
    "type": "object",
    "required": ["bus_name", "source_prefix", "start_event", "retry_policy", "archive"],
    "properties": {
        "description": {"type": "string"},
        "bus_name": {"type": "string", "pattern": r"^[/\.\-_A-Za-z0-9]{1,256}$"},
        "source_prefix": {"type": "string", "minLength": 1},
        "start_event": {"type": "string"},
        "retry_policy": {
            "type": "object",
            "additionalProperties": False,
            "required": ["MaximumRetryAttempts", "MaximumEventAgeInSeconds"],
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
                "properties": {"name": {"type": "string"}, "purpose": {"type": "string"}, "emits": _NAME_LIST},
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
                },
            },
        },
    },
})


def _load_bus(file: Path) -> Bus:
    doc = _read_json(file)
    _shape_check(file, doc, _BUS_SHAPE)
    return Bus(
        name=doc["bus_name"],
        source_prefix=doc["source_prefix"],
        start_event=doc["start_event"],
        retry_policy=MappingProxyType(dict(doc["retry_policy"])),
        archive=MappingProxyType(dict(doc["archive"])),
    )


def _load_service(file: Path, bus: Bus) -> tuple[Service, dict[str, EventType]]:
    doc = _read_json(file)
    _shape_check(file, doc, _SERVICE_SHAPE)
    name = doc["service"]
    if file.stem != name:
        raise CatalogError(file, "service", f"service {name!r} must live in a file named {name}.json")
    expected_source = bus.source_prefix + name
    if doc["source"] != expected_source:
        raise CatalogError(file, "source", f"is {doc['source']!r}; a service's source must be {expected_source!r}")

    events = {}
    for event_name, spec in doc["events"].items():
        key = f"events.{event_name}"
        if not DETAIL_TYPE.match(event_name):
            raise CatalogError(file, key, "an event name must be letters, digits and underscores, starting with a letter")
        try:
            fastjsonschema.compile(spec["schema"])
        except (fastjsonschema.JsonSchemaDefinitionException, TypeError, ValueError) as exc:
            raise CatalogError(file, f"{key}.schema", f"is not a valid JSON Schema: {exc}") from None
        events[event_name] = EventType(
            name=event_name, service=name, source=doc["source"], description=spec["description"],
            origin=spec["origin"], kind=spec["kind"], terminal=spec["terminal"],
            schema=MappingProxyType(spec["schema"]),
        )

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
        ))
        _check_emits(file, f"{key}.emits", spec["emits"], events)

    entrypoints = []
    for i, spec in enumerate(doc.get("entrypoints", [])):
        _check_emits(file, f"entrypoints[{i}].emits", spec["emits"], events)
        entrypoints.append(Entrypoint(spec["name"], name, spec["purpose"], tuple(spec["emits"])))

    service = Service(
        name=name, source=doc["source"], description=doc["description"], origin=doc["origin"],
        file=str(file), events=tuple(events), subscriptions=tuple(subscriptions), entrypoints=tuple(entrypoints),
    )
    return service, events


def _check_emits(file: Path, key: str, emits: list[str], own_events: Mapping[str, EventType]) -> None:
    for event in emits:
        if event not in own_events:
            raise CatalogError(file, key, f"{event!r} is not one of this service's events {sorted(own_events)}; "
                                          "a service may only publish events with its own source")


def _check_cross_references(services: Mapping[str, Service], events: Mapping[str, EventType],
                            bus: Bus, bus_file: Path) -> None:
    if bus.start_event not in events:
        raise CatalogError(bus_file, "start_event", f"{bus.start_event!r} is not an event of any service")
    rules: dict[str, str] = {}
    for service in services.values():
        for i, sub in enumerate(service.subscriptions):
            if sub.rule in rules:
                raise CatalogError(service.file, f"subscriptions[{i}].rule",
                                   f"rule {sub.rule!r} is already defined in {rules[sub.rule]}")
            rules[sub.rule] = service.file
