"""The event-flow graph derived from the catalog: who produces which event, and who reacts to it.

Two views: :func:`flow_graph` (service → event → service, what the notebooks draw) and
:func:`causal_graph` (event → event through the handlers that react, what the lint walks).
"""

from __future__ import annotations

import networkx as nx

from yafdp.catalog import Catalog


def service_node(name: str) -> str:
    return f"service:{name}"


def event_node(name: str) -> str:
    return f"event:{name}"


def flow_graph(catalog: Catalog) -> nx.DiGraph:
    """Services and events as two node kinds; edges ``produces`` (service → event) and ``subscribes``.

    Edge attributes: ``relation`` (``produces`` / ``subscribes``), ``path`` (``happy``, ``failure``,
    ``compensation`` or ``observe``), ``happy`` (False on the failure and compensation paths), ``observer`` (the
    edge belongs to an observer, :func:`observers`: drawn apart when asked) and for subscriptions the ``rules``
    that carry the edge and the events their handlers may publish (``emits``).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> g = flow_graph(load_catalog())
    >>> g.has_edge("event:Order_Initiated", "service:payment")
    True
    """
    watching, observer_rules = observers(catalog)
    graph = nx.DiGraph()
    for service in catalog.services.values():
        graph.add_node(service_node(service.name), kind="service", label=service.name, origin=service.origin)
    for event in catalog.events.values():
        graph.add_node(event_node(event.name), kind="event", label=event.name, origin=event.origin,
                       event_kind=event.kind, terminal=event.terminal)
        graph.add_edge(service_node(event.service), event_node(event.name), relation="produces",
                       path=event.kind, happy=event.kind == "happy", observer=event.service in watching)
    for sub in catalog.subscriptions:
        for event in catalog.matched_events(sub):
            u, v = event_node(event), service_node(sub.service)
            if graph.has_edge(u, v):
                graph.edges[u, v]["rules"].append(sub.rule)
                graph.edges[u, v]["observer"] &= sub.rule in observer_rules
            else:
                happy = sub.path != "compensation" and catalog.events[event].kind == "happy"
                graph.add_edge(u, v, relation="subscribes", path=sub.path, rules=[sub.rule], happy=happy,
                               observer=sub.rule in observer_rules, emits=[])
            graph.edges[u, v]["emits"] += [e for e in sub.emits if e not in graph.edges[u, v]["emits"]]
    return graph


def observers(catalog: Catalog) -> tuple[frozenset[str], frozenset[str]]:
    """Who watches the saga without taking part in it: ``(services, rules)``.

    A service observes when nothing it publishes moves a saga's status (``bus.json``'s ``saga.status_after``) or is
    acted on by anyone but observers, and it publishes nothing that no event triggers (the saga's start, a
    deadline a schedule puts on the bus); one that publishes nothing observes when its every subscription does
    (a compensation that only writes is part of the saga): Notification (it publishes nothing), Loyalty (nobody reacts to
    ``Loyalty_Points_Added``), a Rating service added in chapter 07. Its subscriptions and its events are an
    observer's. So is any subscription whose ``path`` is ``observe``, whoever has it (the Order service's status
    tracker). Everything else is the saga itself: every step that moves an order, and the compensations.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> services, rules = observers(load_catalog())
    >>> sorted(services), sorted(rules)[-1]
    (['loyalty', 'notification'], 'order-tracks-status')
    """
    moves = set(catalog.saga.status_after)
    triggered = {e for sub in catalog.subscriptions for e in sub.emits}
    watching: set[str] = set()
    rules = {sub.rule for sub in catalog.subscriptions if sub.path == "observe"}
    while True:  # a service whose events only observers act on observes too: to a fixed point
        more = {s.name for s in catalog.services.values() if s.name not in watching
                and all(e.name not in moves and e.name in triggered
                        and all(sub.rule in rules or sub.service in watching for sub in catalog.consumers(e.name))
                        for e in catalog.events.values() if e.service == s.name)
                and (any(e.service == s.name for e in catalog.events.values())  # one that publishes nothing
                     or all(sub.rule in rules for sub in catalog.subscriptions if sub.service == s.name))}
        if not more:
            break
        watching |= more
        rules |= {sub.rule for sub in catalog.subscriptions if sub.service in watching}
    return frozenset(watching), frozenset(rules)


def causal_graph(catalog: Catalog) -> nx.DiGraph:
    """Event → event edges: ``a → b`` when a rule that ``a`` matches runs a handler that may emit ``b``."""
    graph = nx.DiGraph()
    graph.add_nodes_from(catalog.events)
    for sub in catalog.subscriptions:
        for trigger in catalog.matched_events(sub):
            for emitted in sub.emits:
                graph.add_edge(trigger, emitted, rule=sub.rule, path=sub.path)
    return graph


def saga_order(catalog: Catalog, events=None) -> list[str]:
    """``events`` (the catalog's events when None) in the order a saga meets them: by the fewest hops from the start
    event in the :func:`causal_graph` (breadth first, ties in catalog order); an event no chain of events reaches
    (one a schedule puts on the bus, the saga's deadline) right after the events its own handlers follow; then the
    events nothing orders.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> saga_order(load_catalog())[:3]
    ['Order_Initiated', 'Payment_Success', 'Payment_Failed']
    >>> saga_order(load_catalog(), ["Delivery_Failed", "Payment_Failed", "Order_Timed_Out", "Restaurant_Rejected_Order"])
    ['Payment_Failed', 'Order_Timed_Out', 'Restaurant_Rejected_Order', 'Delivery_Failed']
    """
    causes = causal_graph(catalog)
    start = catalog.bus.start_event
    hops = nx.single_source_shortest_path_length(causes, start) if start in causes else {}
    position = {name: i for i, name in enumerate(catalog.events)}

    def steps(event: str) -> float:
        if event in hops:
            return hops[event]
        # what its handlers publish, one step before: the deadline sits just before the rejection it causes
        after = [hops[e] for e in causes.successors(event) if e in hops] if event in causes else []
        return min(after) - 0.5 if after else float("inf")

    return sorted(catalog.events if events is None else events,
                  key=lambda e: (steps(e), position.get(e, len(position)), e))


def mermaid(catalog: Catalog) -> str:
    """The flow graph as a Mermaid flowchart: services as boxes, events as stadiums, failure and compensation
    paths dotted; events coloured by kind as every figure colours them (happy green, failure red, compensation
    orange)."""
    graph = flow_graph(catalog)
    lines = ["flowchart LR"]
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    for node, data in graph.nodes(data=True):
        label = data["label"]
        lines.append(f'    {ids[node]}["{label}"]' if data["kind"] == "service" else f'    {ids[node]}(["{label}"])')
    for u, v, data in graph.edges(data=True):
        lines.append(f"    {ids[u]} {'-->' if data['happy'] else '-.->'} {ids[v]}")
    lines.append("    classDef service fill:#dbeafe,stroke:#1e3a8a")
    lines.append("    classDef event fill:#dcfce7,stroke:#166534")
    lines.append("    classDef unhappy fill:#fee2e2,stroke:#991b1b")
    lines.append("    classDef compensation fill:#ffedd5,stroke:#9a3412")
    for cls in ("service", "event", "unhappy", "compensation"):
        members = [ids[n] for n, d in graph.nodes(data=True) if _node_class(d) == cls]
        if members:
            lines.append(f"    class {','.join(members)} {cls}")
    return "\n".join(lines) + "\n"


def _node_class(data: dict) -> str:
    if data["kind"] == "service":
        return "service"
    return {"happy": "event", "compensation": "compensation"}.get(data["event_kind"], "unhappy")


def consequences(catalog: Catalog, event: str) -> set[tuple[str, str]]:
    """The flow-graph edges an event sets in motion: its publication, the rules it and its descendants
    trigger, the events those handlers may emit, and everyone who observes them (what to highlight on
    :func:`flow_graph`).

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> edges = consequences(load_catalog(), "Restaurant_Rejected_Order")
    >>> ("service:payment", "event:Payment_Refunded") in edges
    True
    """
    causes = causal_graph(catalog)
    reached = {event} | nx.descendants(causes, event)
    edges = {(service_node(catalog.events[event].service), event_node(event))}
    edges |= {(event_node(e), service_node(s.service)) for e in reached for s in catalog.consumers(e)}
    edges |= {(service_node(catalog.events[b].service), event_node(b)) for a, b in causes.edges if a in reached}
    return edges
