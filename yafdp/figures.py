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


def draw_flow_graph(graph: nx.DiGraph, start_event: str, *, title: str, ax=None, edge_counts: dict | None = None):
    """Draw the service → event → service graph: services as squares, events as circles (green on the happy
    path, red on failure and compensation paths); observer subscriptions thin and grey.

    ``edge_counts`` maps ``(u, v)`` to how many times the edge was seen in a run; widths follow it.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(17, 8))
    layer = saga_layers(graph, start_event)
    nx.set_node_attributes(graph, layer, "layer")
    pos = nx.multipartite_layout(graph, subset_key="layer", align="vertical", scale=1.0)
    services = [n for n, d in graph.nodes(data=True) if d["kind"] == "service"]
    happy = [n for n, d in graph.nodes(data=True) if d["kind"] == "event" and d["event_kind"] == "happy"]
    unhappy = [n for n, d in graph.nodes(data=True) if d["kind"] == "event" and d["event_kind"] != "happy"]
    nx.draw_networkx_nodes(graph, pos, nodelist=services, node_shape="s", node_color=SERVICE_COLOUR, node_size=2600, ax=ax)
    nx.draw_networkx_nodes(graph, pos, nodelist=happy, node_color=HAPPY_COLOUR, node_size=1500, ax=ax)
    nx.draw_networkx_nodes(graph, pos, nodelist=unhappy, node_color=UNHAPPY_COLOUR, node_size=1500, ax=ax)

    top = max(edge_counts.values()) if edge_counts else 1
    for style, edges in _edge_styles(graph).items():
        widths = [0.6 + 5 * edge_counts.get(e, 0) / top for e in edges] if edge_counts else style[2]
        nx.draw_networkx_edges(graph, pos, edgelist=edges, style=style[0], edge_color=style[1], width=widths,
                               node_size=2000, arrowsize=14, connectionstyle="arc3,rad=0.08", ax=ax)
    labels = {n: d["label"].replace("_", "\n") for n, d in graph.nodes(data=True)}
    nx.draw_networkx_labels(graph, pos, labels=labels, font_size=7, ax=ax)
    ax.set_title(title)
    ax.legend(handles=[
        Patch(color=SERVICE_COLOUR, label="service"),
        Patch(color=HAPPY_COLOUR, label="event, happy path"),
        Patch(color=UNHAPPY_COLOUR, label="event, failure / compensation"),
        Line2D([], [], color="#1f2937", label="produces / reacts (happy path)"),
        Line2D([], [], color="#b91c1c", linestyle="--", label="failure / compensation"),
        Line2D([], [], color=OBSERVE_COLOUR, linewidth=0.6, label="observes (status, notifications)"),
    ], loc="lower center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    ax.axis("off")
    return ax


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


def bars(table, *, title: str, xlabel: str, ylabel: str, stacked: bool = True, ax=None):
    """A (stacked) bar chart of a DataFrame: one bar per row, one colour per column."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    table.plot.bar(stacked=stacked, ax=ax, rot=0)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    return ax


def latency_cdf(samples: dict, *, title: str, xlabel: str = "end-to-end latency (ms, log scale)", ax=None):
    """Cumulative distributions of latencies in milliseconds, one line per labelled sample, on a log axis,
    with each sample's p50 and p99 marked."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    for label, values in samples.items():
        values = sorted(float(v) for v in values)
        n = len(values)
        line, = ax.plot(values, [(i + 1) / n for i in range(n)], label=label)
        for q, marker in ((0.5, "o"), (0.99, "^")):
            ax.plot(values[min(n - 1, int(q * n))], q, marker=marker, color=line.get_color())
    ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of orders (cumulative)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(title="o p50   ^ p99", fontsize=8)
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
