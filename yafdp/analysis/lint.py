"""Design checks on a catalog that loads cleanly but may still describe a broken choreography.

Each check returns :class:`Finding` objects; ``yafdp lint`` prints them and exits 1 when there is any.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from yafdp.catalog import Catalog, detail_type_literals
from yafdp.analysis.coverage import coverage
from yafdp.analysis.graph import causal_graph
from yafdp.plan import build_plan
from yafdp.plan.cloudformation import cloudformation_template, template_plan
from yafdp.plan.service_quotas import exceeded_quotas


@dataclass(frozen=True)
class Finding:
    check: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: [{self.check}] {self.message}"


def lint(catalog: Catalog) -> list[Finding]:
    """Every design problem found in ``catalog``, in a stable order (empty when the design is sound).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> lint(load_catalog())
    []
    """
    findings: list[Finding] = []
    for check in (unproduced_events, unconsumed_events, unknown_subscriptions, unreachable_services, feedback_loops,
                  aws_quotas, saga_design):
        findings.extend(check(catalog))
    return findings


def aws_quotas(catalog: Catalog) -> list[Finding]:
    """AWS's quotas the design exceeds (``data/quotas.json``): rules per event bus, rules with a wildcard per bus,
    and resources in its CloudFormation template. Such a design cannot be deployed as it
    is (``yafdp plan`` and ``deploy`` refuse it); see :mod:`yafdp.plan.service_quotas`."""
    plan = build_plan(catalog, "yafdp")
    found = exceeded_quotas(plan, cloudformation_template(template_plan(catalog, "yafdp")))
    return [Finding("aws-quota", e.where, str(e).removeprefix(f"{e.where}: ")) for e in found]


def unproduced_events(catalog: Catalog) -> list[Finding]:
    """Events that no handler or entry point ever emits: nobody will ever see them."""
    emitted = {e for service in catalog.services.values() for e in service.may_emit()}
    return [
        Finding("unproduced-event", event_where(catalog, name),
                f"no handler or entry point of service {ev.service!r} emits {name!r}")
        for name, ev in catalog.events.items() if name not in emitted
    ]


def unconsumed_events(catalog: Catalog) -> list[Finding]:
    """Non-terminal events no rule matches: the saga stops there without saying it ends."""
    return [
        Finding("unconsumed-event", event_where(catalog, name),
                f"no subscription matches {name!r}, and it is not marked terminal")
        for name, ev in catalog.events.items() if not ev.terminal and not catalog.consumers(name)
    ]


def unknown_subscriptions(catalog: Catalog) -> list[Finding]:
    """Rules that name events the catalog does not define, or that match no catalog event at all."""
    findings = []
    for service in catalog.services.values():
        for i, sub in enumerate(service.subscriptions):
            where = f"{service.file}: subscriptions[{i}].pattern"
            for name in sorted(detail_type_literals(sub.pattern) - set(catalog.events)):
                findings.append(Finding("unknown-event", where, f"rule {sub.rule!r} subscribes to {name!r}, which no service produces"))
            if not catalog.matched_events(sub):
                findings.append(Finding("matches-nothing", where, f"rule {sub.rule!r} matches no event in the catalog"))
    return findings


def unreachable_services(catalog: Catalog) -> list[Finding]:
    """Services that no chain of events starting at the saga's start event ever wakes up."""
    start = catalog.bus.start_event
    reachable = {start} | nx.descendants(causal_graph(catalog), start)
    starter = catalog.events[start].service
    findings = []
    for service in catalog.services.values():
        woken = any(set(catalog.matched_events(s)) & reachable for s in service.subscriptions)
        if service.name != starter and not woken:
            findings.append(Finding("unreachable-service", service.file,
                                    f"service {service.name!r} is never triggered by a chain of events from {start!r}"))
    return findings


def feedback_loops(catalog: Catalog) -> list[Finding]:
    """Cycles of events that trigger each other: a loop that can run forever on the bus."""
    graph = causal_graph(catalog)
    findings = []
    for cycle in sorted(nx.simple_cycles(graph), key=lambda c: (len(c), c)):
        rules = [graph.edges[a, b]["rule"] for a, b in zip(cycle, cycle[1:] + cycle[:1])]
        chain = " → ".join(cycle + cycle[:1])
        findings.append(Finding("feedback-loop", "catalog", f"{chain} (rules {', '.join(rules)})"))
    return findings


def event_where(catalog: Catalog, name: str) -> str:
    """Where an event is declared, as findings say it: ``<service file>: events.<name>``."""
    return f"{catalog.services[catalog.events[name].service].file}: events.{name}"


def saga_design(catalog: Catalog) -> list[Finding]:
    """The saga's design problems the matrix shows, as lint findings: a compensatable step left uncompensated by a
    failure that may follow it, a compensatable step nothing undoes, a pivot or retriable step that something
    compensates, a failure after the pivot, and a retriable step's handler that can fail."""
    saga, found = catalog.saga, []
    for cell in coverage(catalog):
        if not cell.covered:
            wanted = " or ".join(saga.compensation_of(cell.step)) or "a compensation of it"
            found.append(Finding("uncovered-compensation", event_where(catalog, cell.failure),
                                 f"{cell.failure} may follow {cell.step} (compensatable), but no rule reacting to "
                                 f"{cell.failure} or to what follows it emits {wanted}"))
    for step, kind in saga.steps.items():
        undone = saga.compensation_of(step)
        if kind == "compensatable" and not undone:
            found.append(Finding("uncompensatable-step", event_where(catalog, step),
                                 f"{step} is a compensatable step, but no compensation event compensates it"))
        elif kind != "compensatable" and undone:
            found.append(Finding("compensated-pivot", event_where(catalog, step),
                                 f"{step} is a {kind} step, yet {', '.join(undone)} compensates it: a {kind} step "
                                 "is never undone (make it compensatable)"))
    graph = causal_graph(catalog)
    for pivot in (s for s, kind in saga.steps.items() if kind == "pivot"):
        for failure in sorted(e for e in nx.descendants(graph, pivot) if catalog.events[e].kind == "failure"):
            found.append(Finding("failure-after-pivot", event_where(catalog, failure),
                                 f"{failure} can follow the pivot {pivot}: after the pivot a saga cannot fail"))
    for sub in catalog.subscriptions:
        retriable = [e for e in sub.emits if saga.steps.get(e) == "retriable"]
        failures = [e for e in sub.emits if catalog.events[e].kind == "failure"]
        if retriable and failures:
            found.append(Finding("failing-retriable-step", f"{catalog.services[sub.service].file}: rule {sub.rule}",
                                 f"emits the retriable step {retriable[0]} and the failure {failures[0]}: a retriable "
                                 "step is retried until it succeeds, it does not fail"))
    return found
