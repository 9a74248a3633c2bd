"""The catalog, the deployment plan and a run's verdicts as pandas tables for the notebooks (not part of the
runtime core, which avoids pandas)."""

from __future__ import annotations

import json

import networkx as nx
import pandas as pd

from yafdp.catalog import Catalog
from yafdp.analysis.check import Invariant
from yafdp.analysis.graph import causal_graph, saga_order
from yafdp.plan import DeploymentPlan, plan_resources


def services_in_saga_order(catalog: Catalog) -> list[str]:
    """The catalog's services in the order a saga meets them: by the first event each produces in
    :func:`~yafdp.analysis.graph.saga_order`, then those that produce nothing (observers such as Notification).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> services_in_saga_order(load_catalog())
    ['order', 'payment', 'restaurant', 'delivery', 'loyalty', 'notification']
    """
    producers = [catalog.events[event].service for event in saga_order(catalog)]
    return list(dict.fromkeys(producers + list(catalog.services)))


def _by_saga_service(items, service_of, catalog: Catalog | None) -> list:
    """``items`` with their services in saga order (:func:`services_in_saga_order`), each service's in the order
    given; as given when ``catalog`` is None."""
    if catalog is None:
        return list(items)
    rank = {name: i for i, name in enumerate(services_in_saga_order(catalog))}
    return sorted(items, key=lambda item: rank.get(service_of(item), len(rank)))


def events_table(catalog: Catalog) -> pd.DataFrame:
    """One row per event, in saga order: who produces it, its EventBridge source, where it comes from, its
    fields."""
    rows = [
        {
            "event (detail-type)": ev.name,
            "producer": ev.service,
            "source": ev.source,
            "kind": ev.kind,
            "terminal": ev.terminal,
            "origin": ev.origin,
            "required fields": ", ".join(ev.schema.get("required", [])),
            "description": ev.description,
        }
        for ev in (catalog.events[name] for name in saga_order(catalog))
    ]
    return pd.DataFrame(rows).set_index("event (detail-type)")


UNIT_SUFFIXES = {"_ms": "ms", "_seconds": "s", "_s": "s", "_minutes": "minutes", "_hours": "hours", "_days": "days"}


def field_unit(name: str, spec: dict, schema: dict) -> str:
    """The unit of a field of an event's ``detail`` schema, as :func:`schema_fields` shows it: a money amount (a
    number in a schema that has a ``currency`` field) is in that currency (its one allowed value, or "the
    currency in ``currency``"); a name ending in ``_ms``, ``_seconds``, ``_minutes``… is in that unit; any other
    integer is a count; "—" for the rest (texts, lists, objects).

    Examples
    --------
    >>> schema = {"properties": {"amount": {"type": "number"}, "currency": {"type": "string", "enum": ["EUR"]}}}
    >>> field_unit("amount", schema["properties"]["amount"], schema), field_unit("eta_minutes", {"type": "integer"}, {})
    ('EUR', 'minutes')
    """
    for suffix, unit in UNIT_SUFFIXES.items():
        if name.endswith(suffix) and spec.get("type") in ("number", "integer"):
            return unit
    currency = schema.get("properties", {}).get("currency")
    if spec.get("type") == "number" and currency is not None:
        allowed = currency.get("enum", [])
        return allowed[0] if len(allowed) == 1 else "the currency in `currency`"
    return "count" if spec.get("type") == "integer" else "—"


def schema_fields(catalog: Catalog, event: str) -> pd.DataFrame:
    """The top-level fields of an event's ``detail`` schema: type, unit (:func:`field_unit`), constraints (in that
    unit), required or not."""
    schema = catalog.events[event].schema
    required = set(schema.get("required", []))
    rows = []
    for name, spec in schema.get("properties", {}).items():
        constraints = {k: v for k, v in spec.items() if k not in ("type", "items", "properties")}
        rows.append({
            "field": name,
            "type": spec.get("type", "any") + (f" of {spec['items'].get('type')}" if "items" in spec else ""),
            "unit": field_unit(name, spec, schema),
            "required": name in required,
            "constraints": ", ".join(f"{k}={v}" for k, v in constraints.items()),
        })
    return pd.DataFrame(rows).set_index("field")


def subscriptions_table(catalog: Catalog) -> pd.DataFrame:
    """One row per rule, in saga order (by the first event it matches; the observers last): its service,
    handler, path, the events it matches and the events it may emit."""
    position = {event: i for i, event in enumerate(saga_order(catalog))}

    def met(sub) -> tuple:
        return (sub.path == "observe", min((position[e] for e in catalog.matched_events(sub)), default=len(position)))

    rows = [
        {
            "rule": sub.rule,
            "service": sub.service,
            "handler": sub.handler,
            "path": sub.path,
            "matches": ", ".join(catalog.matched_events(sub)),
            "may emit": ", ".join(sub.emits) or "—",
            "purpose": sub.purpose,
        }
        for sub in sorted(catalog.subscriptions, key=met)
    ]
    return pd.DataFrame(rows).set_index("rule")


def subscription_matrix(catalog: Catalog) -> pd.DataFrame:
    """Events × services, both in saga order: the rule's path where a service listens to an event, empty where it
    does not."""
    matrix = pd.DataFrame("", index=saga_order(catalog), columns=services_in_saga_order(catalog))
    for sub in catalog.subscriptions:
        for event in catalog.matched_events(sub):
            matrix.loc[event, sub.service] = sub.path
    matrix.index.name = "event"
    return matrix


def failure_paths(catalog: Catalog) -> pd.DataFrame:
    """For each failure event, every rule that acts on it or on what follows from it (observers left out):
    the compensations a failure sets in motion, and what each of them publishes, in saga order (what follows the
    failure sooner first, not alphabetically).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> sorted(failure_paths(load_catalog()).loc["Delivery_Failed", "service"])
    ['loyalty', 'payment', 'restaurant']
    """
    causes = causal_graph(catalog)
    rows = []
    for failure in saga_order(catalog, [e.name for e in catalog.events.values() if e.kind == "failure"]):
        after = nx.single_source_shortest_path_length(causes, failure)
        for event in sorted(after, key=lambda e: (after[e], e)):
            for sub in catalog.consumers(event):
                if sub.path != "observe":
                    rows.append({"failure": failure, "then": event, "rule": sub.rule, "service": sub.service,
                                 "handler": sub.handler, "may emit": ", ".join(sub.emits) or "—"})
        if not any(row["failure"] == failure for row in rows):
            rows.append({"failure": failure, "then": failure, "rule": "—", "service": "—",
                         "handler": "(nothing changed yet: nothing to compensate)", "may emit": "—"})
    return pd.DataFrame(rows).set_index(["failure", "then"])


def step_kinds(catalog: Catalog) -> pd.DataFrame:
    """Each step of the saga (a happy-path subscription), in saga order, as the saga literature classifies it:

    * ``compensatable``: its service has a compensation for it, so it may run before the outcome is known;
    * ``pivot``: it may fail and its success ends the saga (a terminal happy event): the go/no-go step, after which
      nothing is undone;
    * ``retriable``: it cannot fail as a business outcome (it emits no failure event) and comes after the pivot, so
      it needs no compensation, only retries until it succeeds;
    * ``neither``: it can be neither undone nor safely retried: a design error the table shows.

    Observers (``observe``) are no step. Columns: ``step`` (service.handler), ``on`` (the event it reacts to),
    ``kind``, ``undone by`` (its compensations, ``handler on event``), ``why``.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> step_kinds(load_catalog()).set_index("step")["kind"].to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'payment.charge_order': 'compensatable', 'restaurant.review_order': 'compensatable',
     'delivery.schedule_delivery': 'pivot', 'loyalty.award_points': 'compensatable'}
    """
    causes = causal_graph(catalog)
    start = catalog.bus.start_event
    distance = nx.single_source_shortest_path_length(causes, start) if start in causes else {}
    terminal_happy = {e.name for e in catalog.events.values() if e.kind == "happy" and e.terminal}
    failures = {e.name for e in catalog.events.values() if e.kind == "failure"}
    steps = [s for s in catalog.subscriptions if s.path == "happy"]
    pivots = {s.rule for s in steps if set(s.emits) & terminal_happy and set(s.emits) & failures
              and not any(c.service == s.service and c.path == "compensation" for c in catalog.subscriptions)}
    after_pivot = set()
    for s in steps:
        if s.rule in pivots:
            after_pivot |= {e for e in s.emits if e in terminal_happy}
    rows = []
    for s in sorted(steps, key=lambda s: (min((distance.get(e, 99) for e in catalog.matched_events(s)), default=99),
                                          s.rule)):
        on = sorted(catalog.matched_events(s))
        undone = [f"{c.handler} on {', '.join(sorted(catalog.matched_events(c)))}" for c in catalog.subscriptions
                  if c.service == s.service and c.path == "compensation"]
        if s.rule in pivots:
            kind, why = "pivot", f"may fail ({', '.join(e for e in s.emits if e in failures)}) and its success " \
                                 f"({', '.join(e for e in s.emits if e in terminal_happy)}) ends the saga"
        elif undone:
            kind, why = "compensatable", "runs before the outcome is known; its service undoes it on a later failure"
        elif not set(s.emits) & failures and set(on) <= after_pivot:
            kind, why = "retriable", "after the pivot and cannot fail as a business outcome: retried until it succeeds"
        else:
            kind, why = "neither", "can be neither undone nor retried to success: a later failure leaves it in place"
        rows.append({"step": f"{s.service}.{s.handler}", "on": ", ".join(on), "kind": kind,
                     "undone by": "; ".join(undone) or "—", "why": why})
    return pd.DataFrame(rows)


def compensation_coverage(catalog: Catalog) -> pd.DataFrame:
    """The compensation-coverage matrix (:mod:`yafdp.analysis.coverage`): a row per failure, a column per
    compensatable step; each cell the rules and compensation events the failure sets in motion for the step,
    ``—`` when the step cannot have completed by then, ``UNCOVERED`` when nothing undoes it.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> compensation_coverage(load_catalog()).loc["Restaurant_Rejected_Order", "Payment_Success"]
    'payment-refunds-rejected-order → Payment_Refunded'
    """
    from yafdp.analysis.coverage import coverage

    cells = coverage(catalog)
    table = pd.DataFrame([(c.failure, c.step, str(c)) for c in cells], columns=["failure", "step", "cell"])
    if table.empty:
        return pd.DataFrame()
    matrix = table.pivot(index="failure", columns="step", values="cell")
    order = lambda names, seen: [n for n in dict.fromkeys(names) if n in seen]  # noqa: E731 - catalog order
    matrix = matrix.loc[order((c.failure for c in cells), matrix.index), order((c.step for c in cells), matrix.columns)]
    matrix.index.name, matrix.columns.name = "failure", "compensatable step"
    return matrix


def plan_resources_table(plan: DeploymentPlan) -> pd.DataFrame:
    """One row per resource the plan creates: kind, name and owning service (``shared`` for the bus and archive).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> int(plan_resources_table(build_plan(load_catalog())).groupby("kind").size()["rule"])
    11
    """
    return pd.DataFrame([{"kind": r.kind, "name": r.name, "service": r.service or "shared"}
                         for r in plan_resources(plan)])


def plan_rules(plan: DeploymentPlan, catalog: Catalog | None = None) -> pd.DataFrame:
    """One row per rule on the bus: its service, path, event pattern and what its handler may emit (with
    ``catalog``: the services in saga order)."""
    return pd.DataFrame([{
        "rule": r.name, "service": r.service, "path": r.path,
        "event pattern": json.dumps(r.pattern, separators=(", ", ": ")), "may emit": ", ".join(r.emits) or "—",
    } for r in _by_saga_service(plan.rules, lambda r: r.service, catalog)]).set_index("rule")


def plan_targets(plan: DeploymentPlan, catalog: Catalog | None = None) -> pd.DataFrame:
    """One row per rule target: what EventBridge delivers to (``queue``: the service's queue; ``lambda``: its
    function), the handler behind it, the rule's dead-letter queue and the retry policy of that delivery (with
    ``catalog``: the services in saga order)."""
    return pd.DataFrame([{
        "rule": r.name, "target": r.target.id, "kind": r.target.kind,
        "queue": r.target.queue if r.target.kind == "queue" else "—", "handler": f"{r.service}.{r.target.handler}",
        "dead-letter queue": r.target.dead_letter_queue or "— (dropped)",
        "max retries": r.target.retry_policy.maximum_retry_attempts,
        "max event age (s)": r.target.retry_policy.maximum_event_age_seconds,
    } for r in _by_saga_service(plan.rules, lambda r: r.service, catalog)]).set_index("rule")


def plan_queues(plan: DeploymentPlan, catalog: Catalog | None = None) -> pd.DataFrame:
    """Every SQS queue of the plan: each service's work queue, its dead-letter queue, and each rule's
    dead-letter queue (where EventBridge puts what it could not deliver); with ``catalog``, the services in saga
    order."""
    def row(queue, service, role, dead_letters="", receives="", timeout=""):
        return {"queue": queue, "service": service, "role": role, "dead-letter queue": dead_letters,
                "max receives": receives, "visibility timeout (s)": timeout}
    rows = []
    for service in _by_saga_service(plan.services, lambda s: s.name, catalog):
        rows.append(row(service.queue, service.name, "work queue (feeds the function)", service.queue_dead_letter_queue,
                        service.max_receive_count, service.visibility_timeout_seconds))
        rows.append(row(service.queue_dead_letter_queue, service.name, f"dead letters of {service.queue}"))
    rows += [row(r.target.dead_letter_queue, r.service, f"dead letters of rule {r.name}")
             for r in _by_saga_service(plan.rules, lambda r: r.service, catalog) if r.target.dead_letter_queue]
    return pd.DataFrame(rows).set_index("queue")


def plan_iam(plan: DeploymentPlan, catalog: Catalog | None = None) -> pd.DataFrame:
    """One row per IAM statement of each service's role: least privilege, written out (with ``catalog``: the
    services in saga order)."""
    rows = []
    for service in _by_saga_service(plan.services, lambda s: s.name, catalog):
        for statement in service.policy["Statement"]:
            actions = statement["Action"]
            rows.append({
                "service": service.name, "statement": statement["Sid"],
                "actions": ", ".join(actions) if isinstance(actions, list) else actions,
                "resource": statement["Resource"],
                "condition": json.dumps(statement["Condition"]) if "Condition" in statement else "",
            })
    return pd.DataFrame(rows).set_index(["service", "statement"])


def invariants_table(results: list[Invariant], examples: int = 3) -> pd.DataFrame:
    """The saga's invariants as one row each: verdict (``pass``, ``FAIL``, ``skip`` when the run lacks what it
    checks, ``n/a`` when it does not apply to the run's kind of bus, as ``yafdp check`` labels them), how much was
    checked, who broke it and a few examples.

    Examples
    --------
    >>> from yafdp.analysis.check import Invariant
    >>> invariants_table([Invariant("no double charge", "…", False, ("ord-1 (2 charges)",), 5)]).loc[
    ...     "no double charge", "verdict"]
    'FAIL'
    """
    return pd.DataFrame([{
        "invariant": r.name,
        "verdict": r.verdict,  # as `yafdp check`
        "checked": r.checked,
        "offenders": len(r.offenders),
        "examples": r.skipped or "; ".join(r.offenders[:examples]) + (
            f"; and {len(r.offenders) - examples} more (check_run lists them all)" if len(r.offenders) > examples else ""),
        "promise": r.promise,
    } for r in results]).set_index("invariant")


VERDICT_STYLES = {"pass": "background-color: #dcfce7", "FAIL": "background-color: #fee2e2; font-weight: bold",
                  "skip": "background-color: #f3f4f6", "n/a": "background-color: #f3f4f6"}


def style_verdicts(table: pd.DataFrame):
    """A :func:`invariants_table` coloured by verdict (green pass, red FAIL, grey skip), left-aligned text."""
    return (table.style.map(lambda v: VERDICT_STYLES.get(v, ""), subset=["verdict"])
            .set_properties(subset=["examples", "promise"], **{"text-align": "left"}))


BUS_COUNTS = {
    "published": "events published on the bus",
    "delivered": "deliveries whose handler succeeded",
    "failed": "handler attempts that failed and were retried",
    "duplicates": "extra copies delivered (at-least-once) and recognised as already processed",
    "dead_lettered": "deliveries that exhausted their retries and went to a dead-letter queue",
    "refused": "publications refused before reaching the bus (schema, source, unknown detail-type)",
}


def bus_counts(stats) -> pd.DataFrame:
    """What ``bus.run()`` returns (its counters), one row each, with what the number counts.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> int(bus_counts(SimpleNamespace(published=3, refused=0)).loc["published", "count"])
    3
    """
    from dataclasses import asdict, is_dataclass

    values = asdict(stats) if is_dataclass(stats) else vars(stats)
    return pd.DataFrame([{"counter": name.replace("_", " "), "count": value, "what it counts": BUS_COUNTS.get(name, "")}
                         for name, value in values.items()]).set_index("counter")


def source_lines(mentions: dict[str, list[int]], word: str) -> pd.DataFrame:
    """:func:`yafdp.analysis.extension.modules_mentioning` as a table: each module and the lines that mention
    ``word``."""
    return pd.DataFrame([{"module": f"yafdp/services/{module}.py", f"lines mentioning {word!r}": ", ".join(map(str, lines)),
                          "how many": len(lines)} for module, lines in mentions.items()]).set_index("module")


def plan_subscribers(plan: DeploymentPlan) -> pd.DataFrame:
    """One row per subscriber of a Custom Event Bus plan (``build_plan(catalog, bus="custom")``): its type
    (``FIFO`` or ``UNORDERED``), the ``DATA`` filter (the subscription's pattern), its target (the service's queue
    or function), its retry policy and on-failure queue."""
    return pd.DataFrame([{
        "subscriber": s.name, "type": s.type, "DATA filter": json.dumps(s.pattern, separators=(", ", ": ")),
        "target": s.target.queue if s.target.kind == "queue" else f"function of {s.service}",
        "retry policy": f"{s.target.retry_policy.maximum_retry_attempts} retries or "
                        f"{s.target.retry_policy.maximum_event_age_seconds:,} s",
        "on-failure queue": s.target.dead_letter_queue or "—",
    } for s in plan.subscribers]).set_index("subscriber")
