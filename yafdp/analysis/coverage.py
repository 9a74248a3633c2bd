"""The compensation-coverage matrix: for every failure, which earlier steps may have completed when it is published,
and which compensation of each the subscription graph sets in motion, or that none does.

Derived from the catalog alone: the causal graph (event → event through the rules), each happy event's ``step`` kind
and each compensation event's ``compensates``. A step "may have completed" when a failure is published if it lies
on the way from the saga's start to the failure, or beside it (set off by a step on that way), but not on a branch
the failure excludes (the other outcome of a handler that emitted one of them) nor after the failure. It is
covered when a rule that reacts to the failure, or to what follows it, emits a compensation of that step.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from yafdp.analysis.graph import causal_graph
from yafdp.catalog import Catalog


@dataclass(frozen=True)
class Coverage:
    """One cell of the matrix: ``failure`` × compensatable ``step``. ``may_have_happened``: the step may have
    completed when the failure is published; ``compensations``: the ``(rule, compensation event)`` pairs that the
    failure sets in motion for it; ``covered``: it needs none, or has one."""

    failure: str
    step: str
    may_have_happened: bool
    compensations: tuple[tuple[str, str], ...]

    @property
    def covered(self) -> bool:
        return not self.may_have_happened or bool(self.compensations)

    def __str__(self) -> str:
        if not self.may_have_happened:
            return "—"
        if not self.compensations:
            return "UNCOVERED"
        return ", ".join(f"{rule} → {event}" for rule, event in self.compensations)


def coverage(catalog: Catalog) -> list[Coverage]:
    """Every failure × compensatable step of ``catalog``, failures and steps in catalog order.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> cells = {(c.failure, c.step): str(c) for c in coverage(load_catalog())}
    >>> cells["Payment_Failed", "Payment_Success"], cells["Restaurant_Rejected_Order", "Payment_Success"]
    ('—', 'payment-refunds-rejected-order → Payment_Refunded')
    """
    graph = causal_graph(catalog)
    start = catalog.bus.start_event
    reachable = {start} | nx.descendants(graph, start)
    steps = [n for n, kind in catalog.saga.steps.items() if kind == "compensatable"]
    cells = []
    for failure in (n for n, e in catalog.events.items() if e.kind == "failure" and n in reachable):
        before = may_have_happened(catalog, graph, failure)
        after = nx.descendants(graph, failure)
        for step in steps:
            compensations = tuple(sorted(
                (data["rule"], event) for event in catalog.saga.compensation_of(step) if event in after
                for trigger, _, data in graph.in_edges(event, data=True) if trigger == failure or trigger in after))
            cells.append(Coverage(failure, step, step in before, compensations))
    return cells


def may_have_happened(catalog: Catalog, graph: nx.DiGraph, failure: str) -> set[str]:
    """The events that may have been published when ``failure`` is: everything reachable from the start, less
    what follows the failure and what the handlers on the way to it decided against (their other outcomes)."""
    start = catalog.bus.start_event
    reachable = {start} | nx.descendants(graph, start)
    on_the_way = (nx.ancestors(graph, failure) & reachable) | {failure}
    excluded = set(nx.descendants(graph, failure)) | {failure}
    for event in on_the_way:
        for sub in catalog.subscriptions:
            if event in sub.emits:
                for other in set(sub.emits) - {event}:
                    excluded |= {other} | nx.descendants(graph, other)
    return (reachable - excluded) | (on_the_way - {failure})
