"""Figures for the notebooks, drawn the same way everywhere: a title, labelled axes with units, a saved PNG.

Not part of the runtime core (it imports matplotlib). Notebooks call these instead of repeating
matplotlib boilerplate.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

SERVICE_COLOUR = "#93c5fd"
HAPPY_COLOUR = "#86efac"
UNHAPPY_COLOUR = "#fca5a5"
OBSERVE_COLOUR = "#9ca3af"
FADED = 0.12
OUTCOME_COLOURS = {"ok": "#16a34a", "failed": "#f59e0b", "duplicate": "#9ca3af", "dead_lettered": "#dc2626"}


def save(fig, name: str, out_dir: str | Path | None) -> Path | None:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` (nothing when ``out_dir`` is None)."""
    if out_dir is None:
        return None
    path = Path(out_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def saga_layers(graph: nx.DiGraph, start_event: str) -> dict[str, int]:
    """A left-to-right column for every node: events by how many hops they are from the start event,
    each producer one column before its earliest event, pure observers in a last column."""
    events = [n for n, d in graph.nodes(data=True) if d["kind"] == "event"]
    hops = nx.single_source_shortest_path_length(_event_hops(graph), f"event:{start_event}")
    layer = {e: 2 * hops.get(e, max(hops.values()) + 1) + 1 for e in events}
    last = max(layer.values()) + 1
    for node, data in graph.nodes(data=True):
        if data["kind"] == "service":
            produced = [layer[e] for e in graph.successors(node)]
            layer[node] = min(produced) - 1 if produced else last
    return layer


def _event_hops(graph: nx.DiGraph) -> nx.DiGraph:
    """Event → event edges through services that react and produce (observers excluded)."""
    hops = nx.DiGraph()
    for event, service, data in graph.edges(data=True):
        if data["relation"] == "subscribes" and data["path"] != "observe":
            hops.add_edges_from((event, produced) for produced in graph.successors(service))
    return hops


def draw_flow_graph(graph: nx.DiGraph, start_event: str, *, title: str, ax=None, edge_counts: dict | None = None,
                    highlight: set | None = None, legend: bool = True):
    """Draw the service → event → service graph: services as squares, events as circles (green on the happy
    path, red on failure and compensation paths); observer subscriptions thin and grey.

    ``edge_counts`` maps ``(u, v)`` to how many times the edge was seen in a run: widths follow it, each edge
    is labelled with its count and edges never seen are faded. ``highlight`` is a set of edges to show at
    full strength (e.g. :func:`yafdp.analysis.graph.consequences`); everything else is faded.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(17, 8))
    layer = saga_layers(graph, start_event)
    nx.set_node_attributes(graph, layer, "layer")
    pos = nx.multipartite_layout(graph, subset_key="layer", align="vertical", scale=1.0)
    lit = _lit_edges(graph, edge_counts, highlight)
    lit_nodes = {n for edge in lit for n in edge} if len(lit) < graph.number_of_edges() else set(graph.nodes)
    for shape, colour, size, nodes in (
        ("s", SERVICE_COLOUR, 2600, [n for n, d in graph.nodes(data=True) if d["kind"] == "service"]),
        ("o", HAPPY_COLOUR, 1500, [n for n, d in graph.nodes(data=True) if d["kind"] == "event" and d["event_kind"] == "happy"]),
        ("o", UNHAPPY_COLOUR, 1500, [n for n, d in graph.nodes(data=True) if d["kind"] == "event" and d["event_kind"] != "happy"]),
    ):
        nx.draw_networkx_nodes(graph, pos, nodelist=nodes, node_shape=shape, node_color=colour, node_size=size, ax=ax,
                               alpha=[1.0 if n in lit_nodes else FADED for n in nodes])

    top = max(edge_counts.values(), default=1) if edge_counts else 1
    for style, edges in _edge_styles(graph).items():
        for alpha, group in ((1.0, [e for e in edges if e in lit]), (FADED, [e for e in edges if e not in lit])):
            if not group:
                continue
            widths = [0.6 + 5 * edge_counts.get(e, 0) / top for e in group] if edge_counts else style[2]
            if highlight is not None and alpha == 1.0:
                widths = 3.0
            nx.draw_networkx_edges(graph, pos, edgelist=group, style=style[0], edge_color=style[1], width=widths,
                                   alpha=alpha, node_size=2000, arrowsize=14, connectionstyle="arc3,rad=0.08", ax=ax)
    if edge_counts:
        nx.draw_networkx_edge_labels(graph, pos, edge_labels={e: edge_counts[e] for e in lit if edge_counts.get(e)},
                                     font_size=6, label_pos=0.6, rotate=False, ax=ax,
                                     bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    labels = {n: d["label"].replace("_", "\n") for n, d in graph.nodes(data=True)}
    nx.draw_networkx_labels(graph, pos, labels=labels, font_size=7, ax=ax)
    ax.set_title(title)
    ax.axis("off")
    if not legend:
        return ax
    ax.legend(handles=[
        Patch(color=SERVICE_COLOUR, label="service"),
        Patch(color=HAPPY_COLOUR, label="event, happy path"),
        Patch(color=UNHAPPY_COLOUR, label="event, failure / compensation"),
        Line2D([], [], color="#1f2937", label="produces / reacts (happy path)"),
        Line2D([], [], color="#b91c1c", linestyle="--", label="failure / compensation"),
        Line2D([], [], color=OBSERVE_COLOUR, linewidth=0.6, label="observes (status, notifications)"),
    ], loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    return ax


def _lit_edges(graph: nx.DiGraph, edge_counts: dict | None, highlight: set | None) -> set:
    """The edges drawn at full strength: the highlighted ones, else the ones a run saw, else all."""
    if highlight is not None:
        return set(highlight) & set(graph.edges)
    if edge_counts is not None:
        return {e for e in graph.edges if edge_counts.get(e)}
    return set(graph.edges)


def flow_graph_panels(graph: nx.DiGraph, start_event: str, panels: dict[str, dict], *, columns: int = 1,
                      panel_size: tuple[float, float] = (17, 8)):
    """Several drawings of the same flow graph in one figure, one panel per entry of ``panels``:
    ``{title: keyword arguments of draw_flow_graph}`` (``edge_counts=…``, ``highlight=…`` or nothing).
    The legend is drawn once, under the last panel.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.analysis.graph import flow_graph
    >>> fig = flow_graph_panels(flow_graph(load_catalog()), "Order_Initiated", {"as designed": {}})
    >>> len(fig.axes)
    1
    """
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_size[0] * columns, panel_size[1] * rows), squeeze=False)
    for i, (ax, (title, options)) in enumerate(zip(axes.flat, panels.items())):
        draw_flow_graph(graph, start_event, title=title, ax=ax, legend=i == len(panels) - 1, **options)
    for ax in list(axes.flat)[len(panels):]:
        ax.remove()
    fig.tight_layout()
    return fig


def _edge_styles(graph: nx.DiGraph) -> dict[tuple, list]:
    styles: dict[tuple, list] = {}
    for u, v, data in graph.edges(data=True):
        if data.get("path") == "observe":
            key = ("solid", OBSERVE_COLOUR, 0.6)
        elif data["happy"]:
            key = ("solid", "#1f2937", 1.6)
        else:
            key = ("dashed", "#b91c1c", 1.6)
        styles.setdefault(key, []).append((u, v))
    return styles


def bars(table, *, title: str, xlabel: str, ylabel: str, stacked: bool = True, ax=None, colours: dict | None = None):
    """A (stacked) bar chart of a DataFrame: one bar per row, one colour per column (``colours`` maps a
    column to its colour, e.g. :data:`OUTCOME_COLOURS`)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    colour = [colours.get(c, "#6b7280") for c in table.columns] if colours else None
    table.plot.bar(stacked=stacked, ax=ax, rot=0, color=colour)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return ax


PERCENTILE_COLOURS = {50: "#2563eb", 95: "#d97706", 99: "#dc2626"}


def latency_distribution(values_ms, *, title: str, xlabel: str = "latency (ms)", log: bool | None = None):
    """A histogram and a cumulative distribution of latencies in milliseconds, side by side, with p50, p95 and
    p99 marked and their values in the legend. ``log`` x axis by default when the values span over two decades.

    Examples
    --------
    >>> import pandas as pd
    >>> fig = latency_distribution(pd.Series([1.0, 2.0, 3.0, 40.0]), title="demo")
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['latency (ms)', 'latency (ms)']
    """
    import numpy as np

    values = np.sort(np.asarray(values_ms, dtype=float))
    values = values[~np.isnan(values)]
    positive = values[values > 0]
    if log is None:
        log = len(positive) > 1 and positive.max() / positive.min() > 100
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(13, 4))
    bins = np.geomspace(positive.min(), positive.max(), 50) if log else 50
    hist.hist(positive if log else values, bins=bins, color="#93c5fd", edgecolor="#1e3a8a", linewidth=0.3)
    hist.set_ylabel("count")
    cdf.plot(values, np.arange(1, len(values) + 1) / len(values), color="#1e3a8a")
    cdf.set_ylabel("fraction at or below")
    cdf.set_ylim(0, 1.02)
    for ax in (hist, cdf):
        for q, colour in PERCENTILE_COLOURS.items():
            value = float(np.percentile(values, q))
            ax.axvline(value, color=colour, linestyle="--", linewidth=1, label=f"p{q} = {value:.3g} ms")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    hist.set_title("histogram")
    cdf.set_title(f"cumulative distribution (n = {len(values)})")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cdf_by(frame, value: str, by: str, *, title: str, xlabel: str, scale: float = 1000.0, log: bool = True, ax=None):
    """One cumulative-distribution curve per group of ``by`` (e.g. per service) of ``value`` × ``scale``
    (seconds to milliseconds by default), the median of each group in its label."""
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    for name, group in frame.groupby(by):
        values = np.sort(group[value].dropna().to_numpy() * scale)
        if len(values):
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                    label=f"{name} (n = {len(values)}, p50 = {np.median(values):.3g})")
    if log:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction at or below")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def order_timeline(timeline, *, title: str, time_label: str = "", ax=None):
    """One order's saga over time (a :func:`yafdp.analysis.trace.order_timeline`): a row per service, a bar for each
    handler call (coloured by outcome) and a diamond for each event it published, named."""
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 4.5))
    # Rows in saga order: services by when they first published, pure observers last.
    publishers = timeline[timeline["what"] == "published"]["by"]
    services = list(dict.fromkeys(list(publishers) + list(timeline["by"])))
    row = {service: i for i, service in enumerate(services)}
    start = timeline["at"].min()
    handled = timeline[timeline["what"] == "delivered"]
    for outcome, group in handled.groupby("outcome"):
        for _, call in group.iterrows():
            ax.broken_barh([((call["at"] - start) * 1000, max((call["until"] - call["at"]) * 1000, 1e-6))],
                           (row[call["by"]] - 0.3, 0.6), color=OUTCOME_COLOURS.get(outcome, "#6b7280"))
    published = timeline[timeline["what"] == "published"]
    ax.scatter(published["t_ms"], [row[s] for s in published["by"]], marker="D", color="#1e3a8a", zorder=3)
    for _, event in published.iterrows():
        ax.annotate(event["event"], (event["t_ms"], row[event["by"]]), xytext=(4, 8), textcoords="offset points",
                    fontsize=7, rotation=15)
    ax.set_yticks(range(len(services)), services)
    ax.invert_yaxis()
    ax.set_xlabel("time since the order was placed (ms)" + (f" — {time_label}" if time_label else ""))
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=[Line2D([], [], marker="D", color="#1e3a8a", linestyle="", label="event published")]
              + [Patch(color=c, label=f"handler call: {o.replace('_', ' ')}") for o, c in OUTCOME_COLOURS.items()
                 if o in set(handled["outcome"])], fontsize=8, loc="lower right")
    return ax


def load_curve(table, *, x: str, lines: dict[str, str], quotas: dict[str, float], title: str, xlabel: str,
               ylabel: str, ax=None):
    """Latency against offered load: one line per ``{label: column}`` of ``table``, and each quota as a dashed
    vertical line at the load where it starts to bind (named in the legend when it lies beyond the chart)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    for label, column in lines.items():
        ax.plot(table[x], table[column], marker="o", label=label)
    right = table[x].max() * 1.15
    colours = ("#b91c1c", "#7c3aed", "#0f766e", "#b45309")
    for (label, load), colour in zip(quotas.items(), colours):
        if load <= right:
            ax.axvline(load, linestyle="--", color=colour, linewidth=1.2, label=f"{label} ({load:,.1f}/s)")
        else:
            ax.plot([], [], linestyle="none", label=f"{label}: {load:,.1f}/s, beyond the chart")
    ax.set_xlim(0, right)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax
