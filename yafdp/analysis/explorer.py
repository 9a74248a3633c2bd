"""Step through one order's saga: each event published or delivered, the order's status after it, and the
messages the customer had received by then.

:func:`order_steps` is the data; :func:`explore` shows it. In JupyterLab (with ipywidgets) it is a widget:
pick an order, move a slider step by step. Everywhere else (papermill, the HTML copies) the same view is
static: every step of the order in one table. Both are in one output, so each front end shows what it can.
"""

from __future__ import annotations


import pandas as pd

from yafdp.analysis import trace
from yafdp.analysis.notebook import with_caption


def order_steps(run: trace.Run, order_id: str) -> pd.DataFrame:
    """One row per step of the order: when, what (published or delivered), the event, who, the rule and the
    outcome, then the order's status as the Order service held it after that step and the customer's
    messages so far.

    (Run in ``tests/integration/test_documented_examples.py``: the explorer follows one order.)
    """
    timeline = trace.order_timeline(run, order_id)
    messages = trace.service_items(run, "notification", "message")
    mine = messages[messages.get("order_id", pd.Series(dtype=str)) == order_id] if "order_id" in messages else messages.iloc[0:0]
    # Notification keeps one message per event it heard: the customer is told in the order the events arrived.
    texts = dict(zip(mine["detail_type"], mine["text"])) if {"detail_type", "text"} <= set(mine) else {}
    saga = run.catalog.saga
    status, told, rows = saga.initial_status, [], []
    for _, step in timeline.iterrows():
        if step["what"] == "delivered" and step["by"] == saga.tracker.service and step["outcome"] == "ok":
            status = saga.moves(status, step["event"]) or status  # forward only, as the tracker keeps it
        if step["what"] == "delivered" and step["by"] == "notification" and step["outcome"] == "ok":
            told.append(texts.get(step["event"], f"(a message about {step['event']})"))
        rows.append({"t (ms)": round(step["t_ms"], 3), "what": step["what"], "event": step["event"],
                     "by": step["by"], "rule": step["rule"] or "—", "outcome": step["outcome"] or "—",
                     "status": status, "customer told": told[-1] if told else "—"})
    return pd.DataFrame(rows)


def static_view(run: trace.Run, order_id: str) -> str:
    """Every step of the order as one HTML table (what the widget shows one step at a time)."""
    steps = order_steps(run, order_id)
    return with_caption(steps.to_html(index=False, escape=True),
                        f"Order {order_id}: its {len(steps)} steps, t in ms since its first ({run.time_label})")


class Explorer:
    """The widget and its static twin in one output (``_repr_mimebundle_``)."""

    def __init__(self, run: trace.Run, order_ids: list[str]):
        self.run, self.order_ids = run, order_ids

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/html": static_view(self.run, self.order_ids[0]),
                  "text/plain": f"explorer of {len(self.order_ids)} orders"}
        try:
            widget = self.widget()
        except ImportError:
            return bundle
        data = widget._repr_mimebundle_(include=include, exclude=exclude)
        widget_bundle = data[0] if isinstance(data, tuple) else data
        return {**widget_bundle, **bundle}  # the widget where it can be shown, the static view everywhere else

    def widget(self):
        """The interactive view: an order picker, a step slider and the step's detail."""
        import ipywidgets as widgets

        picker = widgets.Dropdown(options=self.order_ids, description="order")
        slider = widgets.IntSlider(min=1, max=1, value=1, description="step")
        shown = widgets.HTML()

        def refresh(*_):
            steps = order_steps(self.run, picker.value)
            slider.max = len(steps)
            upto = steps.head(slider.value)
            shown.value = (with_caption(upto.tail(1).T.to_html(header=False), f"Step {slider.value} of {len(steps)}")
                           + with_caption(upto.to_html(index=False), "The story so far (t in ms since its first step)"))

        picker.observe(refresh, "value")
        slider.observe(refresh, "value")
        refresh()
        return widgets.VBox([widgets.HBox([picker, slider]), shown])


def explore(run: trace.Run, order_ids: list[str] | None = None) -> Explorer:
    """An explorer of the run's orders (all of them, or ``order_ids``), the first one shown statically."""
    return Explorer(run, list(order_ids) if order_ids is not None else list(run.orders["order_id"]))
