"""A run's evidence as pandas DataFrames: per-hop latency, end-to-end latency per order, processing time.

Reads any ``run.db`` (every backend writes the same schema). Not part of the runtime core: it uses pandas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from yafdp.catalog import Catalog, load_catalog
from yafdp.runtime import rundb

OUTCOMES = ("ok", "failed", "duplicate", "dead_lettered")  # what became of one delivery attempt


@dataclass
class Run:
    """The tables of one run, and what its times mean."""

    path: Path
    info: dict
    events: pd.DataFrame
    deliveries: pd.DataFrame
    orders: pd.DataFrame
    payments: pd.DataFrame
    loyalty: pd.DataFrame
    dead_letters: pd.DataFrame
    catalog: Catalog | None = None  # the catalog the run was made with: its saga's vocabulary

    @property
    def simulated(self) -> bool:
        return self.info.get("latency_model", "none") != "none"

    @property
    def time_label(self) -> str:
        """How to label a time axis of this run: measured or simulated, and by what."""
        if self.simulated:
            return f"simulated with latency model {self.info['latency_model']!r}"
        return f"measured wall-clock, {self.info.get('backend', 'local')} backend"


def load_run(path: str | Path, catalog: Catalog | None = None) -> Run:
    """Load ``run.db`` from a run folder (or the file itself); ``catalog``, the one the run was made with (by
    default, the one it records), says what its sagas are: ``orders`` is every saga's status as its tracker keeps
    it (with the YAFDP order's amount and customer when the tracker keeps them).

    (Run in ``tests/integration/test_documented_examples.py``: a small run places every order and ends them all.)
    """
    path = Path(path)
    with rundb.open_run(path) as db:
        info = rundb.get_info(db)
        catalog = catalog or _recorded_catalog(info, path if path.is_dir() else path.parent)
        read = lambda sql, parameters=(): pd.read_sql_query(sql, db, params=parameters)  # noqa: E731
        select, parameters = rundb.saga_statuses(catalog.saga.tracker)
        run = Run(
            path=path if path.is_dir() else path.parent, info=info, catalog=catalog,
            events=read("SELECT * FROM events ORDER BY seq"),
            deliveries=read("SELECT d.*, e.detail_type, e.order_id, e.published_at FROM deliveries d"
                            " JOIN events e USING (event_id) ORDER BY d.delivered_at"),
            orders=read("SELECT s.saga_id AS order_id, s.status, o.amount, o.customer_id, o.placed_at, o.currency"
                        f" FROM ({select}) s LEFT JOIN orders o ON o.order_id = s.saga_id ORDER BY s.saga_id",
                        parameters),
            payments=read("SELECT * FROM payments ORDER BY order_id, kind"),
            loyalty=read("SELECT * FROM loyalty ORDER BY order_id"),
            dead_letters=read("SELECT d.*, e.detail_type, e.order_id FROM dead_letters d JOIN events e USING (event_id)"),
        )
    run.deliveries["service"] = run.deliveries["target"]  # a rule's target id is its service's name
    # The service that published each event (run_info records which source is whose).
    run.events["service"] = run.events["source"].map(lambda source: info.get("sources", {}).get(source, source))
    return run


def run_info(path: str | Path) -> dict:
    """A run's ``run_info`` (its options and, once it finished, its ``summary``), read without loading its tables as
    :func:`load_run` does. Raises what :func:`yafdp.runtime.rundb.open_run` raises for a folder with no run."""
    db = rundb.open_run(path)
    try:
        return rundb.get_info(db)
    finally:
        db.close()


def _recorded_catalog(info: dict, run_folder: Path) -> Catalog:
    """The catalog a run records it was made with: its folder (less the services it left out, with those it built in
    memory) when unchanged, else the run folder's own copy; a run that records none (an older yafdp), the folder
    it names."""
    from yafdp.catalog.record import prove

    proof = prove(info.get("catalog"), run_folder, info.get("catalog_dir"))
    if proof.catalog is not None:
        return proof.catalog
    return load_catalog(info.get("catalog_dir")).without(*info.get("exclude_services", ()))


def hop_latency(run: Run) -> pd.DataFrame:
    """One row per successful delivery: from the event's publication to its handler starting, and the
    handler's own time. Columns: ``hop`` (event → service), ``latency_s``, ``processing_s``, ``attempt``."""
    ok = run.deliveries[run.deliveries["outcome"] == "ok"].copy()
    ok["hop"] = ok["detail_type"] + " → " + ok["service"]
    ok["latency_s"] = ok["delivered_at"] - ok["published_at"]
    ok["processing_s"] = ok["finished_at"] - ok["delivered_at"]
    return ok[["event_id", "order_id", "hop", "detail_type", "service", "rule", "attempt", "latency_s", "processing_s"]]


def end_to_end(run: Run) -> pd.DataFrame:
    """One row per saga: from its start event to the saga's last step (the terminal event's publication) and
    to the last handler that reacted to any of its events."""
    events, saga = run.events, run.catalog.saga
    started = events[events["detail_type"] == saga.start_event].groupby("order_id")["published_at"].min()
    terminal = events[events["detail_type"].isin(saga.terminal_events)].groupby("order_id")["published_at"].max()
    settled = run.deliveries.groupby("order_id")["finished_at"].max()
    table = pd.DataFrame({"started_at": started, "terminal_at": terminal, "settled_at": settled})
    table["saga_s"] = table["terminal_at"] - table["started_at"]
    table["settled_s"] = table["settled_at"] - table["started_at"]
    statuses = run.orders.set_index("order_id")["status"]
    table["status"] = statuses.reindex(table.index)
    return table.reset_index(names="order_id")


def processing_time(run: Run) -> pd.DataFrame:
    """Handler time per service (successful deliveries): count and p50/p95/p99/max in milliseconds."""
    return percentiles_ms(hop_latency(run), "processing_s", by="service")


def percentiles_ms(frame: pd.DataFrame, column: str, by: str) -> pd.DataFrame:
    """``count`` and p50/p95/p99/max of a column in seconds, in milliseconds, one row per group of ``by``, and a
    ``note`` flagging a group of fewer than :data:`FEW_SAMPLES` samples (:func:`flag_few_samples`).

    Examples
    --------
    >>> frame = pd.DataFrame({"service": ["a", "a", "b"], "latency_s": [0.001, 0.003, 0.002]})
    >>> table = percentiles_ms(frame, "latency_s", by="service")
    >>> float(table.loc["b", "p50_ms"]), table.loc["b", "note"]
    (2.0, 'p95 and p99 over 1 sample: read them as the largest ones')
    """
    table = frame.groupby(by)[column].apply(lambda s: percentiles(s * 1000)).unstack()
    table["count"] = table["count"].astype(int)
    return flag_few_samples(table.rename(columns={c: f"{c}_ms" for c in table.columns if c != "count"}))


# Below this many samples a 99th percentile is one of the few largest samples, not a percentile: tables say so.
FEW_SAMPLES = 100


def flag_few_samples(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (with a ``count`` column) with a ``note`` column: empty, or, for a row of fewer than
    :data:`FEW_SAMPLES` samples, that its high percentiles are its largest samples."""
    table = table.copy()
    table["note"] = [f"p95 and p99 over {n} sample{'s' if n != 1 else ''}: read them as the largest ones"
                     if n < FEW_SAMPLES else "" for n in table["count"]]
    return table


def percentiles(series: pd.Series, quantiles=(0.5, 0.95, 0.99)) -> pd.Series:
    """``count``, ``p50``, ``p95``, ``p99`` and ``max`` of a series (NaN-free)."""
    series = series.dropna()
    values = {"count": len(series)}
    values.update({f"p{int(q * 100)}": series.quantile(q) for q in quantiles})
    values["max"] = series.max()
    return pd.Series(values)


def order_timeline(run: Run, order_id: str) -> pd.DataFrame:
    """Everything that happened to one order, in time order: publications and deliveries."""
    events = run.events[run.events["order_id"] == order_id]
    published = pd.DataFrame({
        "at": events["published_at"], "what": "published", "event": events["detail_type"],
        "by": events["service"], "rule": "", "outcome": "", "until": events["published_at"],
    })
    deliveries = run.deliveries[run.deliveries["order_id"] == order_id]
    handled = pd.DataFrame({
        "at": deliveries["delivered_at"], "what": "delivered", "event": deliveries["detail_type"],
        "by": deliveries["service"], "rule": deliveries["rule"], "outcome": deliveries["outcome"],
        "until": deliveries["finished_at"],
    })
    timeline = pd.concat([published, handled]).sort_values(["at", "what"], kind="stable").reset_index(drop=True)
    timeline["t_ms"] = (timeline["at"] - timeline["at"].min()) * 1000
    return timeline


def sequence_diagram(run: Run, order_id: str) -> str:
    """The order's saga as a Mermaid sequence diagram: who published what, who reacted."""
    timeline = order_timeline(run, order_id)
    lines = ["sequenceDiagram", "    participant bus as EventBridge bus"]
    for _, row in timeline.iterrows():
        if row["what"] == "published":
            lines.append(f"    {row['by']}->>bus: {row['event']}")
        elif row["outcome"] == "ok":
            lines.append(f"    bus->>{row['by']}: {row['event']}")
        else:
            lines.append(f"    bus--x{row['by']}: {row['event']} ({row['outcome']})")
    return "\n".join(lines) + "\n"


def observed_edges(run: Run) -> dict[tuple[str, str], int]:
    """Counts of the flow graph's edges as they happened: service → event (published) and event → service
    (successfully delivered), keyed like :func:`yafdp.analysis.graph.flow_graph`'s edges."""
    counts: dict[tuple[str, str], int] = {}
    for (service, detail_type), n in run.events.groupby(["service", "detail_type"]).size().items():
        counts[(f"service:{service}", f"event:{detail_type}")] = int(n)
    ok = run.deliveries[run.deliveries["outcome"] == "ok"]
    for (detail_type, service), n in ok.groupby(["detail_type", "service"]).size().items():
        counts[(f"event:{detail_type}", f"service:{service}")] = int(n)
    return counts


def order_outcomes(run: Run, expected: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per order: its status, amount, what was charged and refunded, loyalty points, events published;
    with ``expected`` (order id → what the workload meant it to end as) also whether it ended so."""
    table = run.orders.set_index("order_id")[["status", "amount"]].copy()
    money = run.payments.pivot_table(index="order_id", columns="kind", values="amount", aggfunc="sum")
    for kind, column in (("charge", "charged"), ("refund", "refunded")):
        table[column] = money[kind].reindex(table.index).fillna(0.0) if kind in money else 0.0
    table["loyalty_points"] = run.loyalty.groupby("order_id")["points"].sum().reindex(table.index).fillna(0).astype(int)
    table["events"] = run.events.groupby("order_id").size().reindex(table.index).fillna(0).astype(int)
    if expected is not None:
        table["expected"] = pd.Series(expected).reindex(table.index)
        table["as_expected"] = table["expected"].str.split(":").str[0] == table["status"]
    return table


def service_items(run: Run, service: str, kind: str) -> pd.DataFrame:
    """A service's own stored items of one kind (e.g. Loyalty's ``order`` records), one row per item."""
    with rundb.open_run(run.path) as db:
        rows = db.execute("SELECT key, item FROM state WHERE service = ? AND kind = ? ORDER BY key", (service, kind))
        items = {key: json.loads(item) for key, item in rows}
    return pd.DataFrame.from_dict(items, orient="index").rename_axis("key")


def deliveries_per_rule(run: Run) -> pd.DataFrame:
    """Successful deliveries per rule (rows, every rule of the run, those that received nothing included)
    and event (columns)."""
    ok = run.deliveries[run.deliveries["outcome"] == "ok"]
    table = pd.crosstab(ok["rule"], ok["detail_type"])
    in_publication_order = [e for e in run.events["detail_type"].unique() if e in table.columns]
    table = table.reindex(index=list(run.info.get("rules", table.index)), columns=in_publication_order, fill_value=0)
    table.columns.name, table.index.name = "event", "rule"
    return table


DEAD_LETTER_ATTRIBUTES = {"rule_arn": "RULE_ARN", "target_arn": "TARGET_ARN", "error_code": "ERROR_CODE",
                          "error_message": "ERROR_MESSAGE", "exhausted_retry_condition": "EXHAUSTED_RETRY_CONDITION",
                          "retry_attempts": "RETRY_ATTEMPTS"}
DEAD_LETTER_KINDS = {"rule": "the rule's DLQ (EventBridge could not deliver)",
                     "queue": "the service queue's DLQ (the function failed maxReceiveCount receives)",
                     "dropped": "dropped (no dead-letter queue took it)"}


def dead_letter_messages(run: Run, include_redriven: bool = False) -> pd.DataFrame:
    """The dead letters, one row each: the event, which ``kind`` of DLQ holds it (``rule``, ``queue``, or
    ``dropped``), ``error`` (the failure as the run recorded it: EventBridge's code, or the function's last error
    from its trace), and the attributes that kind of DLQ really carries, one column each: EventBridge's
    (``RULE_ARN``, ``TARGET_ARN``, ``ERROR_CODE``, ``ERROR_MESSAGE``, ``EXHAUSTED_RETRY_CONDITION``,
    ``RETRY_ATTEMPTS``) on a rule's DLQ, SQS's (``ApproximateReceiveCount``, ``DeadLetterQueueSourceArn``, ...) on
    a queue's; a column is empty for a row whose DLQ does not carry it. Redriven ones are left out unless asked for."""
    letters = run.dead_letters
    if not include_redriven:
        letters = letters[letters["redriven_at"].isna()]
    table = letters[["event_id", "detail_type", "order_id", "rule", "kind"]].reset_index(drop=True)
    table["error"] = (letters["error_code"] + ": " + letters["error_message"]).reset_index(drop=True)
    attributes = pd.DataFrame([json.loads(a) for a in letters["attributes"]], index=table.index)
    return pd.concat([table, attributes], axis=1)


def delivery_outcomes(run: Run) -> pd.DataFrame:
    """Delivery attempts per target service (rows) by outcome (columns, always all of :data:`OUTCOMES`)."""
    table = pd.crosstab(run.deliveries["service"], run.deliveries["outcome"])
    return table.reindex(columns=list(OUTCOMES), fill_value=0).rename_axis(columns="outcome")


def last_message_for(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """What a customer's last message may be about, for each way a saga ends (terminal status → events), from the
    catalog's saga: the events that end it in that status and, for an outcome that undoes the saga
    (``compensated``), the failures that move it on the way there. A message per event, as YAFDP's Notification
    sends (``yafdp.services.notification.MESSAGES``), agrees with how the saga ended when its last one is one of these.

    Examples
    --------
    >>> last_message_for(load_catalog())["DELIVERY_SCHEDULED"]
    ('Delivery_Scheduled',)
    """
    saga, result = catalog.saga, {}
    for status, outcome in saga.outcomes.items():
        result[status] = tuple(e for e, after in saga.status_after.items() if after == status or (
            outcome == "compensated" and e in catalog.events and catalog.events[e].kind == "failure"))
    return result


def last_messages(run: Run, service: str = "notification") -> pd.DataFrame:
    """One row per order: its status, the event ``service`` handled last for it (the customer's last message, as
    Notification sends one per event it handles) and whether that message ``agrees`` with how the order ended
    (:func:`last_message_for` the run's catalog). On the Classic bus a cancelled order's last message can be "The restaurant is
    cooking": the event that told it arrived after the cancellation's.

    Examples
    --------
    >>> import tempfile
    >>> from yafdp.runs import RunOptions, run_saga
    >>> out = tempfile.mkdtemp()
    >>> _ = run_saga(RunOptions(orders=3, seed=1, out=out))
    >>> list(last_messages(load_run(out)).columns)
    ['status', 'last message about', 'agrees']
    """
    ok = run.deliveries[(run.deliveries["service"] == service) & (run.deliveries["outcome"] == "ok")]
    last = ok.sort_values("finished_at").groupby("order_id")["detail_type"].last()
    table = run.orders.set_index("order_id")[["status"]].copy()
    table["last message about"] = last.reindex(table.index)
    agrees = last_message_for(run.catalog or load_catalog())
    table["agrees"] = [told in agrees.get(status, ()) for status, told in
                       zip(table["status"], table["last message about"])]
    return table


def dirty_read_windows(run: Run, *, provisional: str, undone_by: str) -> pd.DataFrame:
    """A saga is ACD, not ACID: what one step writes is visible to everyone before the saga's outcome is known.
    For each order whose ``provisional`` event (a write before the pivot, e.g. points awarded on confirmation) was
    later undone by ``undone_by`` (its compensation), how long anyone reading the service's data saw the write that
    never stood: a **dirty read window**. Columns: ``order_id``, ``customer_id``, ``points``, ``visible from (s)``,
    ``undone at (s)``, ``dirty for (s)`` (seconds on the run's clock); sorted by the window, longest first. Empty when
    nothing provisional was undone.

    Examples
    --------
    >>> import tempfile
    >>> from yafdp.runs import RunOptions, run_saga
    >>> out = tempfile.mkdtemp()
    >>> _ = run_saga(RunOptions(orders=40, seed=3, out=out, rates={"delivery_failure": 0.5}))
    >>> windows = dirty_read_windows(load_run(out), provisional="Loyalty_Points_Added", undone_by="Loyalty_Points_Reverted")
    >>> len(windows) > 0, bool((windows["dirty for (s)"] >= 0).all())
    (True, True)
    """
    events = run.events
    added = events[events["detail_type"] == provisional].drop_duplicates("order_id").set_index("order_id")
    undone = events[events["detail_type"] == undone_by].drop_duplicates("order_id").set_index("order_id")
    both = added.index.intersection(undone.index)
    rows = []
    for order_id in both:
        detail = json.loads(added.loc[order_id, "detail"])
        start, end = float(added.loc[order_id, "published_at"]), float(undone.loc[order_id, "published_at"])
        rows.append({"order_id": order_id, "customer_id": detail.get("customer_id"), "points": detail.get("points"),
                     "visible from (s)": round(start, 3), "undone at (s)": round(end, 3),
                     "dirty for (s)": round(end - start, 3)})
    columns = ["order_id", "customer_id", "points", "visible from (s)", "undone at (s)", "dirty for (s)"]
    return pd.DataFrame(rows, columns=columns).sort_values("dirty for (s)", ascending=False).reset_index(drop=True)
