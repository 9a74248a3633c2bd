"""Design checks on a catalog that loads cleanly but may still describe a broken choreography.

Each check returns :class:`Finding` objects; ``yafdp lint`` prints them and exits 1 when there is any.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from yafdp.catalog import Catalog, detail_type_literals
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
                  aws_quotas):
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
        Finding("unproduced-event", _event_where(catalog, name),
                f"no handler or entry point of service {ev.service!r} emits {name!r}")
        for name, ev in catalog.events.items() if name not in emitted
    ]


def unconsumed_events(catalog: Catalog) -> list[Finding]:
    """Non-terminal events no rule matches: the saga stops there without saying it ends."""
    return [
        Finding("unconsumed-event", _event_where(catalog, name),
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


def _event_where(catalog: Catalog, name: str) -> str:
    return f"{catalog.services[catalog.events[name].service].file}: events.{name}"
