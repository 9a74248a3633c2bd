"""The event catalog as data: services, the events each produces, the rules each subscribes with.

:mod:`yafdp.catalog.loader` reads it from ``data/`` and checks it; everything else (the graph, the plan,
the runtime) derives from these objects.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import fastjsonschema

from yafdp.catalog.errors import CatalogError  # noqa: F401 - raised with the model, imported from here too
from yafdp.catalog.saga import Saga, Tracker
from yafdp.patterns import compile_pattern

PATHS = ("happy", "compensation", "observe")
# How a rule's target reaches its handler: "queue" is what the plan deploys by default (EventBridge -> the
# service's SQS queue -> Lambda through an event source mapping); "lambda" is EventBridge invoking the
# function directly (asynchronously), kept because the contrast teaches which DLQ and which retry clock apply.
TARGET_KINDS = ("queue", "lambda")
# EventBridge's own retry policy for a target when none is given: 185 attempts, 24 hours ("How EventBridge
# retries delivering events", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html).
EVENTBRIDGE_DEFAULT_RETRY_POLICY = MappingProxyType({"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400})
EVENT_KINDS = ("happy", "failure", "compensation")
# The two kinds of EventBridge custom bus: "classic" (rules and targets; AWS now calls it "Custom Event Bus -
# Classic") and "custom" (the Custom Event Bus: subscribers, ordering per event group, deduplication at publish,
# retention) (UG "Custom Event Bus", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus.html).
BUS_KINDS = ("classic", "custom")
SUBSCRIBER_TYPES = ("FIFO", "UNORDERED")
DEDUPLICATION_MODES = ("id", "content", "none")
QUEUE_TYPES = ("fifo", "standard")
# What a one-time EventBridge Scheduler schedule (a saga's deadline) targets when the bus is a Custom Event Bus.
# Scheduler documents a templated EventBridge PutEvents target for an event bus ARN, and universal targets
# ``arn:aws:scheduler:::aws-sdk:<service>:<apiAction>`` where <service> is the AWS SDK's identifier ("Using templated
# targets", https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html; "Using universal
# targets", https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html); it says nothing of
# the Custom Event Bus (EventsV2, ARNs ``event-busv2/<name>/<id>``), neither as a templated target nor as the
# universal target ``eventbridgev2:putEvents``. So this is a setting: "function" (the default) invokes the scheduling
# service's own function (the templated Lambda Invoke target, documented), which puts the event on the bus as it
# publishes any other; "universal" has Scheduler call the Custom Event Bus's PutEvents itself
# (``arn:aws:scheduler:::aws-sdk:eventbridgev2:putEvents``), one hop fewer, where AWS accepts it.
SCHEDULE_TARGETS = ("function", "universal")
# A Custom Event Bus subscriber's retry policy when none is given: 5 retries or 300 seconds, whichever comes first
# (UG "Retrying event delivery", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-retry.html);
# its retention when none is given: 1 day (UG "Creating a bus",
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-create.html).
CUSTOM_BUS_DEFAULT_RETRY_POLICY = MappingProxyType({"MaxRetryAttempts": 5, "MaxEventAgeInSeconds": 300})
CUSTOM_BUS_DEFAULT_RETENTION_DAYS = 1


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
    step: str | None = None  # a happy event: compensatable, pivot or retriable (yafdp.catalog.saga.STEP_KINDS)
    compensates: str | None = None  # a compensation event: the step event of its service it undoes


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
    target: str | None = None  # one of TARGET_KINDS, or None: the bus's
    # On a Custom Event Bus: what this subscription's subscriber sets apart from the bus's defaults (Type, extra
    # Filters of other scopes, RetryPolicy, Transformer, InvocationType), as AWS names them; None: the defaults.
    subscriber: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Entrypoint:
    """A way into a service from outside the bus (an API call), the events it may publish, and those it may schedule
    (``schedules``: a one-time EventBridge Scheduler schedule puts the event on the bus later, e.g. a saga's deadline)."""

    name: str
    service: str
    purpose: str
    emits: tuple[str, ...]
    schedules: tuple[str, ...] = ()


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

    def may_schedule(self) -> frozenset[str]:
        """Every detail-type this service's entry points may schedule: EventBridge Scheduler puts it on the bus later,
        with the service's source (the service itself never publishes it)."""
        return frozenset(e for p in self.entrypoints for e in p.schedules)


@dataclass(frozen=True)
class CustomBusSettings:
    """How the saga runs on a Custom Event Bus (``bus.json``'s ``custom_event_bus``).

    ``event_group``: the path in the event of its ``EventGroupId`` (``("detail", "order_id")``: every event of an
    order is one group, so a FIFO subscriber sees an order's events in publish order); ``deduplication``: ``"id"``
    (each published event's ``DeduplicationId`` names the unit of work and outbox entry that published it, so a
    producer's retry is ``DEDUPLICATED``), ``"content"`` (``CONTENT_BASED``) or ``"none"``; ``subscriber_type``:
    every subscriber's ``Type`` unless its subscription says otherwise; ``queue_type``: the service queues'
    kind (``"fifo"`` keeps a FIFO subscriber's order to the function); ``retry_policy``: every subscriber's
    ``RetryPolicy`` (AWS's default 5 retries / 300 s unless given); ``retention_days``: the bus's retention;
    ``schedule_target``: what a one-time schedule (a saga's deadline) targets, :data:`SCHEDULE_TARGETS`."""

    retention_days: int = CUSTOM_BUS_DEFAULT_RETENTION_DAYS
    event_group: tuple[str, ...] = ("detail", "order_id")
    deduplication: str = "id"
    subscriber_type: str = "FIFO"
    queue_type: str = "fifo"
    retry_policy: Mapping[str, int] = field(default_factory=lambda: CUSTOM_BUS_DEFAULT_RETRY_POLICY)
    schedule_target: str = "function"

    def group_of(self, envelope: Mapping[str, Any]) -> str | None:
        """The ``EventGroupId`` of an event (its envelope), or None when the path is not there."""
        node: Any = envelope
        for part in self.event_group:
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node if isinstance(node, str) else None


@dataclass(frozen=True)
class Bus:
    name: str
    source_prefix: str
    start_event: str
    retry_policy: Mapping[str, int]
    archive: Mapping[str, Any]
    target: str = "queue"  # every rule's target kind (TARGET_KINDS) unless its subscription says otherwise
    saga: Mapping[str, Any] = field(default_factory=dict)  # bus.json's "saga" section, as written
    kind: str = "classic"  # which kind of bus a run uses unless it says otherwise (BUS_KINDS)
    custom: CustomBusSettings = field(default_factory=CustomBusSettings)


@dataclass(frozen=True)
class Catalog:
    """Services, events and subscriptions, checked against each other; see :func:`load_catalog`.

    ``path`` is the catalog's folder (its handlers and hooks are found there, see :mod:`yafdp.catalog.code`);
    ``documents`` every document it was read from (``{"bus.json": …, "services/<name>.json": …}``), of which
    ``in_memory`` names those added in memory (:func:`yafdp.catalog.inline.add_service`), whose handler functions
    are ``inline_handlers`` (``{service: {handler name: function}}``).
    """

    path: Path
    bus: Bus
    services: Mapping[str, Service]
    events: Mapping[str, EventType]
    documents: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    in_memory: frozenset[str] = frozenset()
    inline_handlers: Mapping[str, Mapping[str, Callable]] = field(default_factory=dict, repr=False, compare=False)
    _validators: dict = field(default_factory=dict, repr=False, compare=False)
    _matched: dict = field(default_factory=dict, repr=False, compare=False)

    @functools.cached_property
    def saga(self) -> Saga:
        """The saga's vocabulary (:class:`~yafdp.catalog.saga.Saga`): ``bus.json``'s ``saga`` section, with the
        step kinds and compensations its events declare."""
        spec = self.bus.saga
        tracker = spec["tracker"]
        return Saga(
            id_field=spec["id"], start_event=self.bus.start_event,
            tracker=Tracker(tracker["service"], tracker["kind"], tracker["field"]), initial_status=tracker["initial"],
            ranks=MappingProxyType(dict(spec["statuses"])),
            status_after=MappingProxyType({e: s for e, s in spec["status_after"].items() if e in self.events}),
            outcomes=MappingProxyType(dict(spec["outcomes"])),
            steps=MappingProxyType({n: e.step for n, e in self.events.items() if e.step}),
            compensations=MappingProxyType({n: e.compensates for n, e in self.events.items() if e.compensates}),
        )

    @functools.cached_property
    def code(self):
        """The Python this catalog carries (:class:`yafdp.catalog.code.CatalogCode`): its handlers, found in its
        folder first and then among the package's shipped ones, and its hooks. Nothing is imported until asked."""
        from yafdp.catalog.code import CatalogCode

        return CatalogCode(self)

    def handler(self, service: str, name: str) -> Callable:
        """The function ``name`` of ``service``: in memory, in the catalog's folder, then in the package.

        Raises :class:`CatalogError` naming the file (and line) when it is missing or broken."""
        return self.code.handler(service, name)

    @functools.cached_property  # every request of a workload asks
    def start_entrypoint(self) -> Entrypoint:
        """The API entry point that starts a saga: the one that may publish the start event.

        Raises :class:`LookupError` when no entry point of the catalog publishes it."""
        for service in self.services.values():
            for point in service.entrypoints:
                if self.bus.start_event in point.emits:
                    return point
        raise LookupError(f"no entry point of the catalog publishes the start event {self.bus.start_event!r}")

    @property
    def subscriptions(self) -> list[Subscription]:
        return [s for svc in self.services.values() for s in svc.subscriptions]

    def subscription(self, rule: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.rule == rule:
                return sub
        raise KeyError(f"no subscription with rule name {rule!r}")

    def entrypoint(self, service: str, name: str) -> Entrypoint:
        """The API entry point ``name`` of ``service`` (e.g. ``place_order``).

        Raises
        ------
        LookupError
            when the catalog declares no such service or entry point.
        """
        spec = self.services.get(service)
        found = next((p for p in spec.entrypoints if p.name == name), None) if spec is not None else None
        if found is None:
            raise LookupError(f"service {service!r} has no entry point {name!r} in the catalog")
        return found

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
        (self._validators.get(event) or self._validator(event))(detail)  # every event published asks: one call less

    def compile_schemas(self) -> None:
        """Compile every event's schema validator now, so no delivery pays for it (and no timing shows it)."""
        for event in self.events:
            self._validator(event)

    def _validator(self, event: str):
        validator = self._validators.get(event)
        if validator is None:
            validator = self._validators[event] = compiled_schema(self.events[event].schema)
        return validator

    def without(self, *services: str) -> "Catalog":
        """The same catalog without some services, e.g. the platform before the Loyalty service existed."""
        kept = {n: s for n, s in self.services.items() if n not in services}
        events = {n: e for n, e in self.events.items() if e.service in kept}
        dropped = {f"services/{name}.json" for name in services}
        return Catalog(self.path, self.bus, MappingProxyType(kept), MappingProxyType(events),
                       MappingProxyType({k: v for k, v in self.documents.items() if k not in dropped}),
                       self.in_memory - dropped,
                       MappingProxyType({k: v for k, v in self.inline_handlers.items() if k in kept}))


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


class _NoFetching(dict):
    """fastjsonschema's handlers for every URI scheme: resolving a ``$ref`` never fetches anything."""

    def __contains__(self, scheme) -> bool:
        return True

    def __getitem__(self, scheme):
        def refuse(uri: str):
            raise fastjsonschema.JsonSchemaDefinitionException(f"$ref {uri!r} would have to be fetched")
        return refuse


NO_FETCHING = _NoFetching()


def compiled_schema(schema: Mapping) -> Callable[[Any], Any]:
    """fastjsonschema's validator of the JSON Schema ``schema`` (``validator(detail)`` raises
    ``fastjsonschema.JsonSchemaValueException`` naming the field ``detail`` breaks); a ``$ref`` is never fetched.

    Compiled once per process for each distinct schema (the same text): compiling was most of the time a catalog
    took to load, and a process loads the same catalog again and again (each run, each check). Raises what
    ``fastjsonschema.compile`` raises for a schema that is not valid (``JsonSchemaDefinitionException``,
    ``re.error``, ...), and ``TypeError`` for one that is not JSON."""
    return _compiled(json.dumps(schema, default=_plain))


def _plain(value):
    if isinstance(value, Mapping):  # a catalog's schemas are read-only mappings
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


@functools.lru_cache(maxsize=1024)
def _compiled(schema_text: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(json.loads(schema_text), handlers=NO_FETCHING)
