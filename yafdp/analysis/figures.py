"""Figures for the notebooks, drawn the same way everywhere: a title, labelled axes with units, a saved PNG.

Not part of the runtime core (it imports matplotlib). Notebooks call these instead of repeating
matplotlib boilerplate.
"""

from __future__ import annotations

import base64
import io
import struct
import weakref
from functools import lru_cache
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from yafdp.analysis.wording import pretty

SERVICE_COLOUR = "#93c5fd"
HAPPY_COLOUR = "#86efac"
UNHAPPY_COLOUR = "#fca5a5"
OBSERVE_COLOUR = "#9ca3af"
FADED = 0.12
OUTCOME_COLOURS = {"ok": "#16a34a", "failed": "#f59e0b", "duplicate": "#9ca3af", "dead_lettered": "#dc2626"}
# The two kinds of EventBridge bus, the same colour in every figure that compares them (chapter 08); columns of a
# table passed to :func:`bars` are named by the bus's name.
BUS_COLOURS = {"Classic": "#7c3aed", "Custom": "#0891b2"}
WAITING_COLOUR = "#9ca3af"
COMPENSATION_COLOUR = "#fdba74"
# One meaning per colour for a saga's paths, in every figure that colours them (the catalog's subscription paths and
# event kinds): the happy path green, a failure red, a compensation orange, an observer grey.
PATH_COLOURS = {"happy": HAPPY_COLOUR, "failure": UNHAPPY_COLOUR, "compensation": COMPENSATION_COLOUR,
                "observe": OBSERVE_COLOUR}


PNG_DPI = 120  # the saved figures' resolution
_DRAWN: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # figure -> the PNG save() drew of it


def save(fig, name: str, out_dir: str | Path | None) -> Path | None:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` (nothing when ``out_dir`` is None).

    The PNG is drawn once (a flow graph takes a second or so): :func:`drawn_png` gives it back, and in a
    notebook the figure is shown as that PNG rather than drawn again (at the size the inline backend shows a
    figure), so draw the figure whole before saving it.

    Examples
    --------
    >>> import tempfile
    >>> fig, ax = plt.subplots()
    >>> path = save(fig, "example", tempfile.mkdtemp())
    >>> path.read_bytes() == drawn_png(fig)
    True
    >>> width, height = png_size(drawn_png(fig))  # 6.4 by 4.8 inches at 120 dpi, its empty margins cut
    >>> 600 < width < 768 and 450 < height < 576
    True
    """
    if out_dir is None:
        return None
    path = Path(out_dir) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI, bbox_inches="tight")
    path.write_bytes(buffer.getvalue())
    _DRAWN[fig] = buffer.getvalue()
    _show_saved_figures_as_saved()
    return path


def drawn_png(fig) -> bytes | None:
    """The PNG (at :data:`PNG_DPI`) :func:`save` drew of ``fig``, or None if it was not saved."""
    return _DRAWN.get(fig)


def _show_saved_figures_as_saved() -> None:
    """In IPython with matplotlib's inline backend, a figure :func:`save` drew is shown as that PNG instead of
    being drawn again; any other figure is drawn as before. Outside IPython, nothing changes."""
    try:
        from IPython import get_ipython
        from matplotlib.figure import Figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        draw = formatter.lookup_by_type(Figure)  # the inline backend's
    except KeyError:
        return
    if getattr(draw, "shows_saved_png", False):
        return

    def show(figure):
        png = drawn_png(figure)
        if png is None:
            drawn = draw(figure)
            data, metadata = drawn if isinstance(drawn, tuple) else (drawn, {})
            return data, {**(metadata or {}), "alt": alt_text(figure)}
        width, height = png_size(png)
        scale = figure.dpi / PNG_DPI
        return base64.b64encode(png).decode("ascii"), {"width": round(width * scale), "height": round(height * scale),
                                                       "alt": alt_text(figure)}

    show.shows_saved_png = True
    formatter.for_type(Figure, show)


def alt_text(fig) -> str:
    """A one-line description of ``fig`` for its image's ``alt`` text in the HTML copies: its title (the
    figure's, else its panels' joined by "; "), with the labels (units included) of every panel that has any,
    each named by its title when there are several (a twin axis is a panel with no title of its own).

    Examples
    --------
    >>> fig, ax = plt.subplots()
    >>> _ = ax.set(title="Latency per hop", xlabel="hop", ylabel="latency (ms)")
    >>> alt_text(fig)
    'Latency per hop (x: hop; y: latency (ms))'
    """
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) is not None else ""
    titles = [" ".join(ax.get_title().split()) for ax in fig.axes if ax.get_title().strip()]
    text = " ".join(suptitle.split()) or "; ".join(titles) or "a figure"
    axes = [ax for ax in fig.axes if ax.get_xlabel() or ax.get_ylabel()]
    labels = [(f"{' '.join(ax.get_title().split())}: " if len(axes) > 1 and ax.get_title().strip() else "")
              + f"x: {ax.get_xlabel() or '—'}; y: {ax.get_ylabel() or '—'}" for ax in axes]
    if labels:
        text += " (" + " | ".join(dict.fromkeys(labels)) + ")"
    return text


def png_size(png: bytes) -> tuple[int, int]:
    """A PNG's width and height in pixels, from its header (http://www.libpng.org/pub/png/spec/1.2/PNG-Chunks.html#C.IHDR)."""
    return struct.unpack(">II", png[16:24])


def saga_layers(graph: nx.DiGraph, start_event: str) -> dict[str, int]:
    """A left-to-right column for every node: events by how many hops they are from the start event,
    each producer one column before its earliest event, pure observers in a last column. An event no chain of
    events reaches (one a schedule puts on the bus, such as the saga's deadline) sits one column before the
    earliest service that acts on it, next to the step it ends, not past the end of the saga."""
    events = [n for n, d in graph.nodes(data=True) if d["kind"] == "event"]
    hops = nx.single_source_shortest_path_length(_event_hops(graph), f"event:{start_event}")
    layer = {e: 2 * hops[e] + 1 for e in events if e in hops}
    last = max(layer.values()) + 2
    for node, data in graph.nodes(data=True):
        if data["kind"] == "service":
            produced = [layer[e] for e in graph.successors(node) if e in layer]
            layer[node] = min(produced) - 1 if produced else last
    for event in events:
        if event not in layer:
            acting = [layer[s] for s, data in graph[event].items()
                      if data.get("relation") == "subscribes" and data.get("path") != "observe"]
            layer[event] = min(acting) - 1 if acting else last - 1
    return layer


def _event_hops(graph: nx.DiGraph) -> nx.DiGraph:
    """Event → event edges through services that react and produce (observers excluded)."""
    hops = nx.DiGraph()
    for event, service, data in graph.edges(data=True):
        if data["relation"] == "subscribes" and data["path"] != "observe":
            hops.add_edges_from((event, produced) for produced in graph.successors(service))
    return hops


_KIND_ORDER = {"service": 0, "happy": 1, "failure": 2, "compensation": 3}
ROW_SPACING = 1.0


def flow_layout(graph: nx.DiGraph, start_event: str, base: dict | None = None) -> dict[str, tuple[float, float]]:
    """Where each node of the flow graph is drawn: a column per saga step (:func:`saga_layers`), services and
    happy-path events at the top of a column, failures and compensations under them.

    ``base`` is a layout to keep: nodes it places stay exactly where they are, and a node it does not know
    (a service added since) goes under the lowest node of its column. :func:`course_layout` is the shipped
    catalog's layout, the one every chapter draws, so a service added in chapter 07 appears and nothing moves.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.analysis.graph import flow_graph
    >>> full = load_catalog()
    >>> before = flow_layout(flow_graph(full.without("loyalty")), "Order_Initiated", base=course_layout())
    >>> all(before[n] == course_layout()[n] for n in before)
    True
    """
    layer = saga_layers(graph, start_event)
    pos = {n: xy for n, xy in (base or {}).items() if n in graph}
    order = {n: i for i, n in enumerate(graph.nodes)}

    def key(node):
        data = graph.nodes[node]
        return (_KIND_ORDER[data["kind"] if data["kind"] == "service" else data["event_kind"]], order[node])

    columns: dict[int, list[str]] = {}
    for node in sorted(graph.nodes, key=key):
        columns.setdefault(layer[node], []).append(node)
    for column, nodes in sorted(columns.items()):
        placed = [y for x, y in pos.values() if x == column]  # whoever already sits in this column
        new = [n for n in nodes if n not in pos]
        if not new:
            continue
        if placed or base:
            lowest = min(placed, default=ROW_SPACING)  # a column new to the layout starts on the top row
            for i, node in enumerate(new, 1):
                pos[node] = (float(column), lowest - i * ROW_SPACING)
        else:  # a fresh layout: the happy path along the top row, failures and compensations under it
            for i, node in enumerate(new):
                pos[node] = (float(column), -i * ROW_SPACING)
    return pos


@lru_cache(maxsize=1)
def _shipped_layout() -> tuple:
    from yafdp.catalog import load_catalog
    from yafdp.analysis.graph import flow_graph

    catalog = load_catalog()
    return tuple(flow_layout(flow_graph(catalog), catalog.bus.start_event).items())


def course_layout(catalog=None) -> dict[str, tuple[float, float]]:
    """The flow graph's layout for the whole course, computed once from the shipped catalog (``data/``).

    With ``catalog`` (the one a chapter runs on, its own or the shipped one), that catalog's layout on top of it:
    the shipped catalog's nodes where they always are, its own under them. It is the ``base`` of
    :func:`flow_layout` when a service joins that catalog, so that the service moves nothing.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> course_layout(load_catalog()) == course_layout()
    True
    """
    shipped = dict(_shipped_layout())
    if catalog is None:
        return shipped
    from yafdp.analysis.graph import flow_graph

    return flow_layout(flow_graph(catalog), catalog.bus.start_event, base=shipped)


NODE_STYLE = {
    "service": {"boxstyle": "square,pad=0.5", "fc": SERVICE_COLOUR, "ec": "#1e3a8a"},
    "happy": {"boxstyle": "round,pad=0.4", "fc": HAPPY_COLOUR, "ec": "#166534"},
    "unhappy": {"boxstyle": "round,pad=0.4", "fc": UNHAPPY_COLOUR, "ec": "#991b1b"},
    "compensation": {"boxstyle": "round,pad=0.4", "fc": COMPENSATION_COLOUR, "ec": "#9a3412"},
}
# The edges, in the same meaning as the nodes (PATH_COLOURS): a failure red, a compensation orange, both dashed.
FAILURE_EDGE, COMPENSATION_EDGE = "#b91c1c", "#c2410c"
OBSERVE_ALPHA = 0.45  # observer edges are drawn faint: they watch, they do not move the order


OBSERVER_VIEWS = ("inline", "apart")


def draw_flow_graph(graph: nx.DiGraph, start_event: str, *, title: str, ax=None, edge_counts: dict | None = None,
                    highlight: set | None = None, legend: bool = True, layout: dict | None = None,
                    only: set | None = None, observers: str = "inline"):
    """Draw the service → event → service graph: services as squares, events as rounded boxes in
    :data:`PATH_COLOURS` (green on the happy path, red a failure, orange a compensation); observer subscriptions
    thin, grey and faint.

    ``observers`` ``"apart"`` draws the saga alone and lists the observers (the edges
    :func:`yafdp.analysis.graph.observers` names: the status tracker, Notification, Loyalty, a service added to
    watch) in a row of grey boxes under it, one per service, each with the events it hears (and what it publishes
    then); ``"inline"`` (the default) draws them as every other node and edge. Apart, an observer added to the
    catalog adds a box and moves nothing of the saga, not even the axes' limits.

    Every node sits where :func:`course_layout` puts it (``layout`` overrides), the same in every chapter.
    ``edge_counts`` maps ``(u, v)`` to how many times the edge was seen in a run: widths follow it, each edge
    is labelled with its count and edges never seen are faded. ``highlight`` is a set of edges to show at
    full strength (e.g. :func:`yafdp.analysis.graph.consequences`); everything else is faded. ``only`` is a set of
    edges to draw, and nothing else: the sub-graph they make, each node where the whole graph has it, the view
    cut to it (a compensation path readable at page width).
    """
    from matplotlib.patches import FancyArrowPatch

    if observers not in OBSERVER_VIEWS:
        raise ValueError(f"observers={observers!r}: expected one of {', '.join(OBSERVER_VIEWS)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(18, 9))
    pos = layout or flow_layout(graph, start_event, base=course_layout())
    watchers = []
    if observers == "apart":
        watchers = _observer_boxes(graph, pos, edge_counts, highlight, only)
        graph = graph.edge_subgraph([e for e, watching in nx.get_edge_attributes(graph, "observer").items()
                                     if not watching]).copy()
    if only is not None:
        graph = graph.edge_subgraph(set(only) & set(graph.edges)).copy()
    lit = _lit_edges(graph, edge_counts, highlight)
    lit_nodes = {n for edge in lit for n in edge} if len(lit) < graph.number_of_edges() else set(graph.nodes)
    boxes = {}
    for node, data in graph.nodes(data=True):
        style = "service" if data["kind"] == "service" else \
            {"happy": "happy", "compensation": "compensation"}.get(data["event_kind"], "unhappy")
        alpha = 1.0 if node in lit_nodes else FADED + 0.1
        label = data["label"] if data["kind"] == "service" else data["label"].replace("_", "\n", 1).replace("_", " ")
        text = ax.text(*pos[node], label, ha="center", va="center", zorder=3,
                       fontsize=10 if data["kind"] == "service" else 8.5,
                       fontweight="bold" if data["kind"] == "service" else "normal",
                       color=(0, 0, 0, max(alpha, 0.35)), bbox={**NODE_STYLE[style], "alpha": alpha})
        boxes[node] = text
    drawn = [pos[n] for n in graph.nodes] if observers == "apart" else list(pos.values())
    xs, ys = [x for x, _ in drawn], [y for _, y in drawn]
    ax.set_xlim(min(xs) - 0.9, max(xs) + 0.9)
    ax.set_ylim(min(ys) - 0.7 - _strip_depth(watchers), max(ys) + 1.1)  # room above for the observers' arcs
    _draw_observer_boxes(ax, watchers, (min(xs) - 0.5, max(xs) + 0.5), min(ys) - 0.75)
    renderer = ax.figure.canvas.get_renderer()
    extents = {node: text.get_window_extent(renderer).expanded(1.15, 1.6) for node, text in boxes.items()}
    # Arrows are drawn after the boxes (a higher zorder), so each is clipped to its boxes as they are drawn.
    top = max(edge_counts.values(), default=1) if edge_counts else 1
    for u, v, data in graph.edges(data=True):
        linestyle, colour, width = _edge_style(data)
        if (u, v) in lit:
            alpha = OBSERVE_ALPHA if data.get("path") == "observe" and highlight is None else 1.0
        else:
            alpha = FADED
        if edge_counts:
            width = 0.6 + 5 * edge_counts.get((u, v), 0) / top
        elif highlight is not None and (u, v) in lit:
            width = 2.6
        rad = _clear_rad(ax, pos, extents, u, v, 0.25 if data.get("path") == "observe" else 0.08)
        arrow = FancyArrowPatch(pos[u], pos[v], arrowstyle="-|>", mutation_scale=12, linewidth=width,
                                linestyle=linestyle, color=to_rgba(colour, alpha), zorder=3.5,
                                connectionstyle=f"arc3,rad={rad}", patchA=boxes[u].get_bbox_patch(),
                                patchB=boxes[v].get_bbox_patch(), shrinkA=2, shrinkB=2, gid=f"{u}->{v}")
        ax.add_patch(arrow)
        if edge_counts and edge_counts.get((u, v)) and (u, v) in lit:
            ax.text(*_label_spot(pos, u, v, rad), str(edge_counts[(u, v)]), fontsize=8,
                    ha="center", va="center", zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    ax.set_title(title)
    ax.axis("off")
    if not legend:
        return ax
    ax.legend(handles=[
        Patch(facecolor=SERVICE_COLOUR, edgecolor="#1e3a8a", label="service"),
        Patch(facecolor=HAPPY_COLOUR, edgecolor="#166534", label="event, happy path"),
        Patch(facecolor=UNHAPPY_COLOUR, edgecolor="#991b1b", label="event, failure"),
        Patch(facecolor=COMPENSATION_COLOUR, edgecolor="#9a3412", label="event, compensation"),
        Line2D([], [], color="#1f2937", label="produces / reacts (happy path)"),
        Line2D([], [], color=FAILURE_EDGE, linestyle="--", label="failure path"),
        Line2D([], [], color=COMPENSATION_EDGE, linestyle="--", label="compensation path"),
        Line2D([], [], color=OBSERVE_COLOUR, alpha=OBSERVE_ALPHA, label="observes (status, notifications)")
        if observers == "inline" else Patch(facecolor=OBSERVER_BOX, edgecolor=OBSERVE_COLOUR,
                                            label="observer, apart: what it hears → what it publishes"),
    ] + ([Line2D([], [], color="#1f2937", linewidth=4, label="edge width and label: times it happened in the run")]
         if edge_counts else []),
        loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=9, frameon=False)
    return ax


OBSERVER_BOX = "#f3f4f6"
OBSERVER_WRAP = 52  # characters per line of an observer's box
OBSERVER_LINE = 0.22  # data units per line of text in an observer's box (a row of the layout is 1.0)
OBSERVER_LINES = 4  # the box's height the axes always leave room for: an observer added moves nothing


def _observer_boxes(graph: nx.DiGraph, pos: dict, edge_counts: dict | None, highlight: set | None,
                    only: set | None) -> list[tuple[str, str, bool]]:
    """The observers of ``graph`` as ``[(service's name, text, lit)]``, in the order their services sit from left to
    right in the layout ``pos``: the events each hears in saga order (left to right, top to bottom in ``pos``), with
    what it publishes on them and the run's counts, wrapped."""
    def name(node: str) -> str:
        return graph.nodes[node]["label"].replace("_", " ")

    def shown(edge) -> bool:
        return only is None or edge in only

    heard: dict[str, list] = {}
    for event, service, data in graph.edges(data=True):
        if data.get("observer") and data["relation"] == "subscribes" and shown((event, service)):
            heard.setdefault(service, []).append((event, data))
    boxes = []
    for service in sorted(heard, key=lambda s: (pos[s][0], s)):
        pairs = [((event, service), data) for event, data in
                 sorted(heard[service], key=lambda pair: (pos[pair[0]][0], -pos[pair[0]][1]))]
        count = (lambda edge: f" ({edge_counts.get(edge, 0)})") if edge_counts else (lambda edge: "")
        if any(data.get("emits") for _, data in pairs):  # it publishes: one line per event it hears
            lines = [f"{name(e)}{count((e, s))} → " + ", ".join(
                name(f"event:{x}") + (count((s, f"event:{x}")) if edge_counts else "") for x in data["emits"])
                if data.get("emits") else f"{name(e)}{count((e, s))}" for (e, s), data in pairs]
        else:
            lines = _wrapped([f"hears {len(pairs)} event{'s' * (len(pairs) != 1)}:"]
                             + [f"{name(e)}{count((e, s))}" for (e, s), _ in pairs])
        lit = _lit_edges(graph.edge_subgraph([edge for edge, _ in pairs]), edge_counts, highlight)
        label = graph.nodes[service]["label"]
        own = [v for _, v, d in graph.edges(service, data=True) if not d.get("observer")]  # a step of the saga too
        rules = dict.fromkeys(r for _, d in pairs for r in d["rules"])
        heading = f"{label} (observer)" + (": " + ", ".join(rules) if own else "")
        boxes.append((label, "\n".join([heading] + lines), bool(lit)))
    return boxes


def _wrapped(items: list[str]) -> list[str]:
    """``items`` joined by commas into lines of at most :data:`OBSERVER_WRAP` characters, no item cut (the first,
    a heading, is followed by a space).

    Examples
    --------
    >>> _wrapped(["hears 3 events:", "Payment Success (7)", "Payment Failed (0)", "Delivery Failed (1)"])
    ['hears 3 events: Payment Success (7),', 'Payment Failed (0), Delivery Failed (1)']
    """
    pieces = items[:1] + [item + "," for item in items[1:-1]] + items[-1:] if len(items) > 1 else list(items)
    lines = pieces[:1]
    for piece in pieces[1:]:
        if len(f"{lines[-1]} {piece}") <= OBSERVER_WRAP:
            lines[-1] = f"{lines[-1]} {piece}"
        else:
            lines.append(piece)
    return lines


def _strip_depth(boxes: list) -> float:
    """How far under the saga the observers' row reaches (data units): room for :data:`OBSERVER_LINES` lines, or
    more when a box has more."""
    if not boxes:
        return 0.0
    return 0.45 + OBSERVER_LINE * max(OBSERVER_LINES, *(text.count("\n") + 1 for _, text, _ in boxes))


def _draw_observer_boxes(ax, boxes: list, span: tuple[float, float], top: float) -> None:
    """The observers in a row of boxes under the saga, their tops at ``top``, spread evenly over ``span`` (x)."""
    if not boxes:
        return
    ax.axhline(top + 0.2, color=OBSERVE_COLOUR, linestyle=":", linewidth=0.8)
    ax.text(span[0], top + 0.24, "observers, apart: no step of the saga waits for them or acts on what they publish",
            fontsize=8.5, color="#4b5563", style="italic", va="bottom")
    width = (span[1] - span[0]) / len(boxes)
    for i, (service, text, lit) in enumerate(boxes):
        alpha = 1.0 if lit else FADED + 0.1
        ax.text(span[0] + (i + 0.5) * width, top - 0.1, text, ha="center", va="top", fontsize=8, zorder=3,
                color=(0, 0, 0, max(alpha, 0.35)), gid=f"observer:{service}",
                bbox={"boxstyle": "round,pad=0.4", "fc": OBSERVER_BOX, "ec": OBSERVE_COLOUR, "alpha": alpha})


def arc_points(start, end, rad: float, steps: int = 24) -> list[tuple[float, float]]:
    """Points along matplotlib's ``arc3`` connection from ``start`` to ``end`` (display coordinates: the curve is a
    quadratic Bézier whose control point is ``rad`` times the chord, turned a right angle, from its middle)."""
    (x0, y0), (x2, y2) = start, end
    cx, cy = (x0 + x2) / 2 + rad * (y2 - y0), (y0 + y2) / 2 - rad * (x2 - x0)
    return [((1 - t) ** 2 * x0 + 2 * (1 - t) * t * cx + t ** 2 * x2, (1 - t) ** 2 * y0 + 2 * (1 - t) * t * cy + t ** 2 * y2)
            for t in (i / steps for i in range(1, steps))]


def _clear_rad(ax, pos: dict, extents: dict, u, v, preferred: float) -> float:
    """The curvature closest to ``preferred`` whose arc from ``u`` to ``v`` crosses no other node's box
    (``extents``: display boxes), trying both sides and wider arcs; ``preferred`` when none is clear."""
    start, end = ax.transData.transform(pos[u]), ax.transData.transform(pos[v])
    others = [box for node, box in extents.items() if node not in (u, v)]
    for rad in (preferred, -preferred, preferred + 0.15, -preferred - 0.15, 0.4, -0.4, 0.6, -0.6):
        if not any(box.contains(x, y) for x, y in arc_points(start, end, rad) for box in others):
            return rad
    return preferred


def _label_spot(pos: dict, u, v, rad: float) -> tuple[float, float]:
    """Where an edge's count goes: on the edge's arc (``arc3`` with ``rad``, as drawn), at the point between 30%
    and 70% of its way that lies farthest from every node, so that no count is printed over a node's name.
    Distances weigh the vertical three times, as the boxes are wider than they are tall."""
    (x0, y0), (x2, y2) = pos[u], pos[v]
    cx, cy = (x0 + x2) / 2 + rad * (y2 - y0), (y0 + y2) / 2 - rad * (x2 - x0)  # arc3's middle control point

    def point(t: float) -> tuple[float, float]:
        a, b, c = (1 - t) ** 2, 2 * (1 - t) * t, t ** 2
        return a * x0 + b * cx + c * x2, a * y0 + b * cy + c * y2

    def room(xy: tuple[float, float]) -> float:
        return min(((xy[0] - x) ** 2 + (3 * (xy[1] - y)) ** 2 for x, y in pos.values()), default=0.0)

    return max((point(t / 20) for t in range(6, 15)), key=room)


def _lit_edges(graph: nx.DiGraph, edge_counts: dict | None, highlight: set | None) -> set:
    """The edges drawn at full strength: the highlighted ones, else the ones a run saw, else all."""
    if highlight is not None:
        return set(highlight) & set(graph.edges)
    if edge_counts is not None:
        return {e for e in graph.edges if edge_counts.get(e)}
    return set(graph.edges)


def flow_graph_panels(graph: nx.DiGraph, start_event: str, panels: dict[str, dict], *, columns: int = 1,
                      panel_size: tuple[float, float] = (18, 9)):
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


def _edge_style(data: dict) -> tuple[str, str, float]:
    if data.get("path") == "observe":
        return "solid", OBSERVE_COLOUR, 0.9
    if data["happy"]:
        return "solid", "#1f2937", 1.6
    return "dashed", COMPENSATION_EDGE if data.get("path") == "compensation" else FAILURE_EDGE, 1.6


def bars(table, *, title: str, xlabel: str, ylabel: str, stacked: bool = True, ax=None, colours: dict | None = None,
         legend_title: str | None = None, label_bars: bool = False, rotation: float = 0):
    """A (stacked) bar chart of a DataFrame: one bar per row, one colour per column (``colours`` maps a
    column to its colour, e.g. :data:`OUTCOME_COLOURS`).

    The legend (column names said plainly, ``legend_title`` above them) sits outside the axes, so it covers no
    bar; the axis leaves headroom above the tallest bar; counts get whole-number ticks; ``label_bars`` writes
    each bar's total on it.

    Examples
    --------
    >>> import pandas as pd
    >>> ax = bars(pd.DataFrame({"a_b": [1, 2], "c": [0, 1]}, index=["x", "y"]), title="t", xlabel="x",
    ...           ylabel="n (count)")
    >>> [t.get_text() for t in ax.get_legend().get_texts()], bool(ax.get_ylim()[1] > 3)
    (['a b', 'c'], True)
    """
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.2))
    colour = [colours.get(c, "#6b7280") for c in table.columns] if colours else None
    table.rename(columns=pretty).plot.bar(stacked=stacked, ax=ax, rot=rotation, color=colour)
    if rotation:
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    top = float((table.sum(axis=1) if stacked else table.max(axis=1)).max()) if len(table) else 1.0
    ax.set_ylim(0, top * 1.12 if top > 0 else 1)
    values = table.to_numpy().ravel()
    if len(values) and all(float(v).is_integer() for v in values):
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if label_bars:
        totals = table.sum(axis=1) if stacked else None
        if stacked:
            for i, total in enumerate(totals):
                ax.annotate(f"{total:,.0f}", (i, total), xytext=(0, 3), textcoords="offset points", ha="center",
                            fontsize=8)
        else:
            for container in ax.containers:
                ax.bar_label(container, fmt="%g", fontsize=7, padding=2)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if len(table.columns) > 1 or legend_title:
        ax.legend(title=legend_title, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    elif ax.get_legend() is not None:
        ax.get_legend().remove()
    return ax


def outcome_panels(outcomes, *, title: str, xlabel: str = "target service"):
    """Delivery attempts per service by outcome, twice: every attempt, and only the attempts that did not
    simply succeed (failed, duplicate, dead-lettered) on their own scale, so a handful of dead letters is
    as visible as hundreds of successes. Each bar of the second panel is labelled with its count."""
    fig, (every, trouble) = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw={"width_ratios": [1, 1.25]})
    bars(outcomes, title="every attempt", xlabel=xlabel, ylabel="delivery attempts (count)", ax=every,
         colours=OUTCOME_COLOURS)
    every.get_legend().remove()
    rest = outcomes.drop(columns=["ok"], errors="ignore")
    bars(rest, title="only the attempts that did not simply succeed", xlabel=xlabel,
         ylabel="delivery attempts (count)", ax=trouble, colours=OUTCOME_COLOURS, stacked=False,
         legend_title="outcome of the attempt", label_bars=True)
    trouble.get_legend().remove()
    fig.legend(handles=[Patch(color=c, label=pretty(o)) for o, c in OUTCOME_COLOURS.items() if o in outcomes.columns],
               title="outcome of the attempt", loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    return fig


def group_timeline(timeline, *, title: str, time_label: str, blocked: str | None = None, ax=None):
    """One subscriber's handling of a few orders over time (a :func:`yafdp.analysis.bus_comparison.group_timeline`):
    a row per order, in the order they were placed; for each delivery attempt a dot at its start, coloured by
    outcome (:data:`OUTCOME_COLOURS`), and a grey line from the event's publication to that attempt, the time it
    waited. ``blocked`` (an order id) is labelled as the blocked group. Times in seconds on the run's clock
    (``time_label`` says which).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"order_id": ["o1", "o1"], "published_at": [0.0, 1.0], "delivered_at": [0.5, 9.0],
    ...                       "outcome": ["ok", "failed"]})
    >>> group_timeline(frame, title="t", time_label="simulated").get_yticklabels()[0].get_text()
    'o1'
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(12, 0.42 * timeline["order_id"].nunique() + 1.8))
    orders = list(dict.fromkeys(timeline.sort_values("published_at")["order_id"]))
    row = {order: i for i, order in enumerate(orders)}
    y = timeline["order_id"].map(row)
    ax.hlines(y, timeline["published_at"], timeline["delivered_at"], color=WAITING_COLOUR, linewidth=1.2, zorder=1)
    for outcome, colour in OUTCOME_COLOURS.items():
        mine = timeline["outcome"] == outcome
        if mine.any():
            ax.scatter(timeline.loc[mine, "delivered_at"], y[mine], s=22, color=colour, zorder=3,
                       label=f"handler call: {pretty(outcome)}")
    labels = [f"{o}  (blocked group)" if o == blocked else o for o in orders]
    ax.set_yticks(range(len(orders)), labels)
    for label, order in zip(ax.get_yticklabels(), orders):
        if order == blocked:
            label.set_color(OUTCOME_COLOURS["dead_lettered"])
            label.set_fontweight("bold")
    ax.invert_yaxis()
    ax.plot([], [], color=WAITING_COLOUR, label="waiting: from publication to this call")
    ax.set_xlabel(f"time since the run started (s) — {time_label}")
    ax.set_ylabel("order (event group), by when it was placed")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def cost_panels(costs, *, title: str, unit: str = "US dollars per million orders"):
    """One panel per style (a column of ``costs``, e.g. :func:`yafdp.analysis.compare.cost_table`), each on
    its own scale: what every billed item costs, largest first, with its value written on the bar. A style
    whose cost is dominated by one item no longer hides the others' parts."""
    table = costs.drop(index="total", errors="ignore")
    fig, axes = plt.subplots(1, len(table.columns), figsize=(5.2 * len(table.columns), 4.2), squeeze=False)
    for ax, style in zip(axes.flat, table.columns):
        column = table[style][table[style] > 0].sort_values()
        ax.barh([pretty(i) for i in column.index], column.values, color="#60a5fa")
        for y, value in enumerate(column.values):
            ax.annotate(f"${value:,.2f}", (value, y), xytext=(3, 0), textcoords="offset points", va="center",
                        fontsize=8)
        right = float(column.max()) if len(column) else 1.0
        ax.set_xlim(0, right * 1.3)
        total = costs.loc["total", style] if "total" in costs.index else column.sum()
        ax.set_title(f"{style}: ${total:,.2f} in all")
        ax.set_xlabel(unit)
        ax.set_ylabel("billed item")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sequence_diagram(timeline, *, title: str):
    """One order's saga as a sequence diagram drawn as an image (the same content as
    :func:`yafdp.analysis.trace.sequence_diagram`'s Mermaid text): a lifeline per participant, the bus in the
    middle column, an arrow per event published (service → bus) and per delivery (bus → service), in time order.
    A delivery that did not succeed is drawn dashed and red, with its outcome."""
    published = timeline[timeline["what"] == "published"]["by"]
    services = list(dict.fromkeys(list(published) + list(timeline["by"])))
    participants = services[:1] + ["EventBridge bus"] + services[1:]
    column = {name: i for i, name in enumerate(participants)}
    height = 0.42 * len(timeline) + 1.2
    fig, ax = plt.subplots(figsize=(max(9, 1.9 * len(participants)), height))
    bottom = len(timeline) + 0.5
    for name, x in column.items():
        ax.plot([x, x], [0.2, bottom], color="#9ca3af", linewidth=1, zorder=1)
        ax.text(x, -0.1, name, ha="center", va="bottom", fontsize=9, fontweight="bold",
                bbox={"boxstyle": "round,pad=0.3", "fc": "#e0e7ff" if name == "EventBridge bus" else SERVICE_COLOUR,
                      "ec": "#1e3a8a"})
    bus = column["EventBridge bus"]
    for step, (_, row) in enumerate(timeline.iterrows(), 1):
        if row["what"] == "published":
            start, end, colour, style, label = column[row["by"]], bus, "#1e3a8a", "-", row["event"]
        else:
            ok = row["outcome"] == "ok"
            start, end = bus, column[row["by"]]
            colour, style = ("#166534", "-") if ok else ("#b91c1c", "--")
            label = row["event"] if ok else f"{row['event']} ({str(row['outcome']).replace('_', ' ')})"
        ax.annotate("", xy=(end, step), xytext=(start, step),
                    arrowprops={"arrowstyle": "-|>", "color": colour, "linestyle": style, "linewidth": 1.3})
        ax.text((start + end) / 2, step - 0.08, label, ha="center", va="bottom", fontsize=7.5)
    ax.set_ylim(bottom, -0.8)
    ax.set_xlim(-0.7, len(participants) - 0.3)
    ax.axis("off")
    ax.set_title(title)
    ax.legend(handles=[Line2D([], [], color="#1e3a8a", label="a service publishes an event"),
                       Line2D([], [], color="#166534", label="the bus delivers it, the handler succeeds"),
                       Line2D([], [], color="#b91c1c", linestyle="--", label="a delivery that failed, repeated or was dead-lettered")],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    return fig


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


def cdf_by(frame, value: str, by: str, *, title: str, xlabel: str, scale: float = 1000.0, log: bool = True, ax=None,
           unit: str = "ms"):
    """One cumulative-distribution curve per group of ``by`` (e.g. per service) of ``value`` × ``scale``
    (seconds to milliseconds by default), the median of each group in its label with its ``unit``."""
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))
    for name, group in frame.groupby(by):
        values = np.sort(group[value].dropna().to_numpy() * scale)
        if len(values):
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                    label=f"{name} (n = {len(values)}, p50 = {np.median(values):.3g} {unit})")
    if log:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction at or below")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title=by.replace("_", " "), loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
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
    ax.set_ylabel("service (its handler calls and the events it published)")
    ax.set_xlabel("time since the order was placed (ms)" + (f" — {time_label}" if time_label else ""))
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=[Line2D([], [], marker="D", color="#1e3a8a", linestyle="", label="event published")]
              + [Patch(color=c, label=f"handler call: {o.replace('_', ' ')}") for o, c in OUTCOME_COLOURS.items()
                 if o in set(handled["outcome"])], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)
    return ax


def timeline_panels(panels: dict, *, title: str):
    """The same order on several clocks, one panel above the other: ``{panel title: (timeline, time_label)}``
    (each a :func:`yafdp.analysis.trace.order_timeline` and its run's ``time_label``). Each panel has its own
    time axis, labelled with what its clock is."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(12, 4.2 * len(panels)), squeeze=False)
    for ax, (panel, (timeline, time_label)) in zip(axes.flat, panels.items()):
        order_timeline(timeline, title=panel, time_label=time_label, ax=ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _rate(per_second: float) -> str:
    """A quota's load for a legend: two significant digits below 10 (0.76/s), whole numbers above (1,705/s)."""
    return f"{per_second:.2g}/s" if per_second < 10 else f"{per_second:,.0f}/s"


def load_curve(table, *, x: str, lines: dict[str, str], quotas: dict[str, float], title: str, xlabel: str,
               ylabel: str, ax=None, quota_scale: float = 1.0):
    """Latency against offered load: one line per ``{label: column}`` of ``table``, and each quota as a dashed
    vertical line at the load where it starts to bind (named in the legend when it lies beyond the chart).

    A run on an account whose quotas were multiplied by ``quota_scale`` (below 1, so that a laptop reaches them)
    gets a second axis on top: the same point at AWS's default quotas (offered load ÷ ``quota_scale``), the real
    scale, where the bends are."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 4.5))
    for label, column in lines.items():
        ax.plot(table[x], table[column], marker="o", label=label)
    right = table[x].max() * 1.15
    colours = ("#b91c1c", "#7c3aed", "#0f766e", "#b45309")
    for (label, load), colour in zip(quotas.items(), colours):
        if load <= right:
            ax.axvline(load, linestyle="--", color=colour, linewidth=1.2, label=f"{label} ({_rate(load)})")
        else:
            ax.plot([], [], linestyle="none", label=f"{label}: {_rate(load)}, beyond the chart")
    ax.set_xlim(0, right)
    ax.set_yscale("log")
    if quota_scale != 1.0:
        top = ax.secondary_xaxis("top", functions=(lambda v: v / quota_scale, lambda v: v * quota_scale))
        top.set_xlabel(f"the same load at AWS's default quotas (orders per second, ÷ {quota_scale:g})", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def state_machine_layout(definition: dict) -> tuple[dict, list]:
    """Where each state of a States-language definition is drawn, and its edges: ``({state: (x, y)}, [(from, to,
    kind, label)])``. Rows are the longest path from ``StartAt`` (Parallel branches included, a branch's first state
    one row under its Parallel state); a row's states keep the order a depth-first walk from ``StartAt`` meets them.
    Edge kinds: ``next`` (Next, a Choice's rule or Default), ``branch`` (a Parallel state to a branch's first state)
    and ``catch`` (a Catch to its handler, labelled with the errors it matches).

    Examples
    --------
    >>> layout, edges = state_machine_layout({"StartAt": "A", "States": {"A": {"Type": "Task", "Next": "B"},
    ...                                                                   "B": {"Type": "Succeed"}}})
    >>> layout["A"][1] > layout["B"][1], edges
    (True, [('A', 'B', 'next', '')])
    """
    from yafdp.plan.step_functions import walk_states

    states = dict(walk_states(definition))
    edges: list[tuple[str, str, str, str]] = []

    def add(scope: dict) -> None:
        for name, state in scope["States"].items():
            if "Next" in state:
                edges.append((name, state["Next"], "next", ""))
            for choice in state.get("Choices", ()):
                edges.append((name, choice["Next"], "next", choice.get("StringEquals", "")))
            if "Default" in state:
                edges.append((name, state["Default"], "next", "otherwise"))
            for catcher in state.get("Catch", ()):
                edges.append((name, catcher["Next"], "catch", ", ".join(catcher["ErrorEquals"])))
            for branch in state.get("Branches", ()):
                edges.append((name, branch["StartAt"], "branch", ""))
                add(branch)

    add(definition)
    graph = nx.DiGraph()
    graph.add_nodes_from(states)
    graph.add_edges_from((u, v) for u, v, _, _ in edges)
    depth = {definition["StartAt"]: 0}
    for node in nx.topological_sort(graph):
        for successor in graph.successors(node):
            depth[successor] = max(depth.get(successor, 0), depth.get(node, 0) + 1)
    order = {n: i for i, n in enumerate(nx.dfs_preorder_nodes(graph, definition["StartAt"]))}
    rows: dict[int, list[str]] = {}
    for node in sorted(states, key=lambda n: order.get(n, len(order))):
        rows.setdefault(depth.get(node, 0), []).append(node)
    widest = max(len(r) for r in rows.values())
    layout = {}
    for row, nodes in rows.items():
        for i, node in enumerate(nodes):
            layout[node] = ((i - (len(nodes) - 1) / 2) * (widest / max(len(nodes), 1)) ** 0.3 * 1.5, -row)
    return layout, edges


def state_machine(definition: dict, catalog, *, title: str):
    """The saga's state machine as a figure: a box per state (Tasks coloured by the path of the subscription they run,
    :data:`PATH_COLOURS`; Choice, Parallel and Succeed states plain), ``Next`` and Choice arrows solid, a Parallel
    state's branches dotted, ``Catch`` arrows dashed in the failure colour with the errors they catch."""
    from matplotlib.patches import FancyArrowPatch

    from yafdp.plan.step_functions import walk_states

    layout, edges = state_machine_layout(definition)
    states = dict(walk_states(definition))
    rows = -min(y for _, y in layout.values()) + 1
    width = max(x for x, _ in layout.values()) - min(x for x, _ in layout.values()) + 2
    fig, ax = plt.subplots(figsize=(min(20, 1.6 * width + 2), 0.62 * rows + 1.5))
    subscriptions = {s.rule: s for s in catalog.subscriptions}
    boxes = {}
    for name, (x, y) in layout.items():
        state = states[name]
        kind = state["Type"]
        if kind == "Task":
            rule = state["Parameters"]["Payload"].get("rule")
            path = subscriptions[rule].path if rule in subscriptions else "happy"
            label, colour = name.split(" on ")[0].split(" via ")[0], PATH_COLOURS[path]
            if name.endswith("timed out"):
                label = name.split(" on ")[0] + " (timed out)"
        elif kind == "Choice":
            label, colour = "◇ what was published?", "#ffffff"
        elif kind == "Parallel":
            label, colour = "∥ " + name.split(" via ")[0], "#e0e7ff"
        else:
            label, colour = {"Succeed": "✓ done", "Fail": "✗ failed", "Pass": name}.get(kind, name), "#f9fafb"
        boxes[name] = ax.text(x, y, label, ha="center", va="center", fontsize=7.5, zorder=3,
                              bbox={"boxstyle": "round,pad=0.3", "fc": colour, "ec": "#374151", "lw": 0.7})
    xs, ys = [x for x, _ in layout.values()], [y for _, y in layout.values()]
    ax.set_xlim(min(xs) - 1.2, max(xs) + 1.2)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    fig.canvas.draw()  # the boxes get their size: each arrow runs from box edge to box edge, never under a box
    to_data = ax.transData.inverted()
    half = {}
    for name, text in boxes.items():
        (x0, y0), (x1, y1) = to_data.transform(text.get_bbox_patch().get_window_extent().get_points())
        half[name] = ((x1 - x0) / 2, (y1 - y0) / 2)
    for u, v, kind, label in edges:
        style = {"next": ("-", "#1f2937", 0.9), "branch": (":", "#4338ca", 0.9),
                 "catch": ("--", PATH_COLOURS["failure"], 1.1)}[kind]
        ax.add_patch(FancyArrowPatch(_box_edge(layout[u], layout[v], half[u]), _box_edge(layout[v], layout[u], half[v]),
                                     arrowstyle="-|>", mutation_scale=8, linestyle=style[0], color=style[1],
                                     linewidth=style[2], zorder=2, shrinkA=0, shrinkB=0))
    ax.axis("off")
    ax.set_title(title)
    ax.legend(handles=[Patch(facecolor=PATH_COLOURS[p], edgecolor="#374151", label=f"Task: {p} path")
                       for p in ("happy", "compensation", "observe")]
              + [Line2D([], [], color="#1f2937", label="Next / a Choice's rule"),
                 Line2D([], [], color="#4338ca", linestyle=":", label="Parallel: a branch"),
                 Line2D([], [], color=PATH_COLOURS["failure"], linestyle="--", label="Catch: a failure event")],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=8, frameon=False)
    return fig


def _box_edge(centre: tuple[float, float], towards: tuple[float, float], half: tuple[float, float]) -> tuple:
    """Where the line from a box's ``centre`` towards ``towards`` leaves the box (``half``: its half width and
    height, in data units)."""
    dx, dy = towards[0] - centre[0], towards[1] - centre[1]
    scale = min(half[0] / abs(dx) if dx else float("inf"), half[1] / abs(dy) if dy else float("inf"))
    scale = min(scale, 1.0)
    return centre[0] + dx * scale, centre[1] + dy * scale
