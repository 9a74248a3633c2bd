"""Classic or Custom Event Bus: what two runs of the same workload on the two kinds of EventBridge bus did
differently, as tables chapter 08 shows (it uses pandas, like the rest of :mod:`yafdp.analysis`).

- :func:`out_of_order`: how often a subscriber (or a service, across its subscribers) handled an order's event
  after an event of the same order that was published later; :func:`races`, which services can see that on a
  Custom Event Bus whose subscribers are all FIFO, read from the catalog alone.
- :func:`tombstones`: Loyalty's record of a failure that overtook its confirmation.
- :func:`publish_copies`: a producer's retried PutEvents, stored again (Classic) or answered ``DEDUPLICATED``.
- :func:`blocked_groups` and :func:`group_timeline`: a poisoned event holding back its own order (and only it)
  at one FIFO subscriber.
- :func:`retry_policies` and :func:`quotas`: each bus's documented defaults and limits beside the project's
  settings, each with its source.

"Published order" is the order of ``events.seq``: both buses number events as they store them (on a Custom
Event Bus in the order of ``aws:SequenceNumber``, the event's position on the bus, which grows as events are
ingested: UG "Event addressing", https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-addressing.html).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import networkx as nx
import pandas as pd

from yafdp.analysis.trace import Run
from yafdp.catalog import Catalog
from yafdp.custom_event_bus import limits
from yafdp.plan.model import DEFAULT_PREFIX
from yafdp.runtime import rundb

BUSES = ("classic", "custom")
BUS_NAMES = {"classic": "Custom Event Bus - Classic", "custom": "Custom Event Bus"}
CLASSIC_RETRY_PAGE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html"
CLASSIC_QUOTAS_PAGE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html"
CLASSIC_PUT_EVENTS_PAGE = "https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEvents.html"
CLASSIC_ENTRY_SIZE_PAGE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html"
MIGRATE_PAGE = limits.UG + "eb-custom-bus-migrate.html"
WHAT_IS_PAGE = limits.UG + "eb-custom-bus-what-is.html"
PRICING_PAGE = "https://aws.amazon.com/eventbridge/pricing/"


def bus_of(run: Run) -> str:
    """``"custom"`` or ``"classic"``: the kind of bus a run used (``run_info.bus``; a run from before the
    Custom Event Bus existed is a Classic one)."""
    return "custom" if run.info.get("bus") == "custom" else "classic"


def subscription_of(run: Run, rule: str) -> str:
    """The catalog subscription a run's rule or subscriber stands for: its name without the deployment prefix.

    Examples
    --------
    >>> from pathlib import Path
    >>> run = Run(Path("."), {}, *[pd.DataFrame()] * 6)
    >>> subscription_of(run, "yafdp-order-tracks-status")
    'order-tracks-status'
    """
    prefix = f"{run.info.get('prefix') or DEFAULT_PREFIX}-"
    return rule[len(prefix):] if rule.startswith(prefix) else rule


def handlings(run: Run) -> pd.DataFrame:
    """Every successful handling of a live delivery, in the order the handlers started (``delivered_at``, then the
    order they were recorded in): ``subscription``, ``service``, ``order_id``, ``seq`` (publish order),
    ``detail_type``, ``delivered_at`` (seconds on the run's clock). Duplicates a handler recognised, failed
    attempts, replays (``REPLAY``, or an archive replay on the Classic bus) and redriven dead letters are left
    out: they are not the live flow whose order a FIFO subscriber promises."""
    with rundb.open_run(run.path) as db:
        frame = pd.read_sql_query(
            "SELECT d.rule, d.target AS service, e.order_id, e.seq, e.detail_type, d.delivered_at FROM deliveries d"
            " JOIN events e ON e.event_id = d.event_id WHERE d.outcome = 'ok'"
            " AND COALESCE(d.delivery_type, 'LIVE') = 'LIVE' AND e.replay_name IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM dead_letters l WHERE l.event_id = d.event_id AND l.rule = d.rule)"
            " ORDER BY d.delivered_at, d.rowid", db)
    frame.insert(0, "subscription", frame.pop("rule").map(lambda rule: subscription_of(run, rule)))
    return frame


def count_out_of_order(handled: Iterable[tuple[object, int]]) -> int:
    """How many of ``handled`` — ``(group, seq)`` pairs in the order they were handled — came after a handling of
    the same group with a higher ``seq`` (an event of that group published later).

    Examples
    --------
    >>> count_out_of_order([("a", 1), ("b", 5), ("a", 2), ("b", 6)])  # two groups, each in order
    0
    >>> count_out_of_order([("a", 2), ("a", 1), ("a", 3)])  # 1 after 2
    1
    >>> count_out_of_order([("a", 3), ("a", 1), ("a", 2)])  # 1 and 2 both after 3
    2
    """
    latest: dict[object, int] = {}
    late = 0
    for group, seq in handled:
        before = latest.get(group)
        if before is not None and seq < before:
            late += 1
        else:
            latest[group] = seq
    return late


def out_of_order(run: Run, by: str = "subscription") -> pd.DataFrame:
    """Per ``subscription`` (a rule or a subscriber) or per ``service`` (all its subscriptions together): how many
    events it handled (``handled``) and how many of them after an event of the same order published later
    (``out_of_order``), one row each, in the order they first handled something."""
    frame = handlings(run)
    rows = {name: {"handled": len(group), "out_of_order": count_out_of_order(zip(group["order_id"], group["seq"]))}
            for name, group in frame.groupby(by, sort=False)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(by)


def compare_out_of_order(runs: dict[str, Run], by: str = "subscription") -> pd.DataFrame:
    """:func:`out_of_order` of several runs side by side: one row per subscription (or service), one column per
    run (its ``out_of_order`` count), only the rows that received more than one event of an order somewhere."""
    columns = {name: out_of_order(run, by) for name, run in runs.items()}
    many = set()
    for run in runs.values():
        frame = handlings(run)
        many |= set(frame.groupby([by, "order_id"]).size().loc[lambda n: n > 1].index.get_level_values(0))
    table = pd.DataFrame({name: frame["out_of_order"] for name, frame in columns.items()}).fillna(0).astype(int)
    return table.loc[[r for r in table.index if r in many]].rename_axis(by)


def races(catalog: Catalog) -> pd.DataFrame:
    """The pairs of one service's subscriptions whose events of one order can reach it in either order even when
    every subscriber is FIFO: ``service``, ``earlier`` and ``later`` (``subscription: event``). "Ordering is a
    property of a subscriber" (UG "Ordering and deduplicating events",
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-ordering.html): each FIFO subscriber
    keeps an event group's order in its own stream and nothing orders one stream against another, so two
    subscribers of one service race whenever the later event can be published without that service having handled the
    earlier one (a chain of other services' handlers leads from one to the other). Loyalty's award and revert
    are such a pair: Delivery publishes ``Delivery_Failed`` on hearing ``Restaurant_Confirmed_Order``, whether
    or not Loyalty has heard it yet.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> sorted(set(races(load_catalog())["service"]))
    ['loyalty']
    """
    rows = []
    for service in catalog.services.values():
        own = {s.rule for s in service.subscriptions}
        others = nx.DiGraph()
        for sub in catalog.subscriptions:
            if sub.rule in own:
                continue  # a chain through this service's own handlers waits for it
            for trigger in catalog.matched_events(sub):
                others.add_edges_from((trigger, emitted) for emitted in sub.emits)
        for first in service.subscriptions:
            for second in service.subscriptions:
                if first.rule == second.rule:
                    continue
                for a in catalog.matched_events(first):
                    for b in catalog.matched_events(second):
                        if a in others and b in others and nx.has_path(others, a, b):
                            rows.append({"service": service.name, "earlier": f"{first.rule}: {a}",
                                         "later": f"{second.rule}: {b}"})
    return pd.DataFrame(rows, columns=["service", "earlier", "later"])


def tombstones(run: Run, service: str = "loyalty") -> int:
    """How many orders ``service`` (Loyalty) remembered as failed before it awarded anything
    (``failed_before_award``): each one a ``Delivery_Failed`` that reached it before the confirmation it follows."""
    with rundb.open_run(run.path) as db:
        return sum(json.loads(item).get("state") == "failed_before_award" for (item,) in db.execute(
            "SELECT item FROM state WHERE service = ? AND kind = 'order'", (service,)))


def publish_copies(run: Run) -> dict[str, int]:
    """What producers' retried PutEvents calls left: ``events stored``; ``stored again`` (an event stored twice by
    the same unit of work, the same type and content, under a new id: what the Classic bus does with a retry);
    ``answered DEDUPLICATED`` (entries a Custom Event Bus recognised within its 5-minute window and neither
    stored nor delivered again, the ``deduplicated`` table)."""
    with rundb.open_run(run.path) as db:
        stored, distinct = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT published_by || '|' || detail_type || '|' || detail) FROM events"
            " WHERE published_by IS NOT NULL").fetchone()
        everything = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        deduplicated = db.execute("SELECT COUNT(*) FROM deduplicated").fetchone()[0] \
            if _has_table(db, "deduplicated") else 0
    return {"events stored": everything, "stored again": stored - distinct, "answered DEDUPLICATED": deduplicated}


def deduplicated(run: Run) -> pd.DataFrame:
    """The ``deduplicated`` table of a Custom Event Bus run: every publish answered ``DEDUPLICATED``, with the
    event it repeats (``event_id``), its ``deduplication_id``, ``event_group_id`` and who published it."""
    with rundb.open_run(run.path) as db:
        return pd.read_sql_query("SELECT published_at, event_id, deduplication_id, event_group_id, published_by"
                                 " FROM deduplicated ORDER BY published_at", db)


def _has_table(db, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone() is not None


def delivery_attempts(run: Run, subscription: str) -> pd.DataFrame:
    """Every delivery attempt of one subscription (a subscriber's handler calls), in time order: ``order_id``,
    ``detail_type``, ``seq``, ``attempt``, ``published_at``, ``delivered_at``, ``finished_at`` (seconds on the
    run's clock), ``outcome``, ``delivery_type``."""
    with rundb.open_run(run.path) as db:
        frame = pd.read_sql_query(
            "SELECT d.rule, e.order_id, e.detail_type, e.seq, d.attempt, e.published_at, d.delivered_at,"
            " d.finished_at, d.outcome, d.delivery_type FROM deliveries d JOIN events e ON e.event_id = d.event_id"
            " ORDER BY d.delivered_at, d.rowid", db)
    frame = frame[frame.pop("rule").map(lambda rule: subscription_of(run, rule)) == subscription]
    return frame.reset_index(drop=True)


def blocked_groups(run: Run) -> pd.DataFrame:
    """Each event given up on (dead-lettered) at a subscriber, and what became of the later events of its order
    there while it was retried: ``subscription``, ``order_id``, ``event``, ``first_try`` and ``given_up``
    (seconds on the run's clock), ``later`` (events of the same order published after it and before it was given
    up, that reached that subscriber), ``overtook`` (of those, handled before it was given up: out of order),
    ``waited`` (handled only after), ``waited_s`` (their mean wait from publication to handling, seconds) and
    ``others_handled`` (handlings of other orders by that subscriber in the meantime). On a FIFO subscriber (or
    behind one, on an SQS FIFO queue) the later events wait; on the Classic bus they overtake."""
    rows = []
    with rundb.open_run(run.path) as db:
        dead = db.execute("SELECT l.rule, e.order_id, e.detail_type, e.seq, l.dead_lettered_at FROM dead_letters l"
                          " JOIN events e ON e.event_id = l.event_id ORDER BY l.dead_lettered_at").fetchall()
    attempts_of: dict[str, pd.DataFrame] = {}
    for rule, order, detail_type, seq, given_up in dead:
        subscription = subscription_of(run, rule)
        if subscription not in attempts_of:
            attempts_of[subscription] = delivery_attempts(run, subscription)
        attempts = attempts_of[subscription]
        mine = attempts[(attempts["order_id"] == order) & (attempts["seq"] == seq)]
        first = float(mine["delivered_at"].min()) if len(mine) else float(given_up)
        later = attempts[(attempts["order_id"] == order) & (attempts["seq"] > seq) & (attempts["outcome"] == "ok")
                         & (attempts["published_at"] < given_up)]
        waited = later[later["delivered_at"] >= given_up]
        meanwhile = attempts[(attempts["order_id"] != order) & (attempts["outcome"] == "ok")
                             & attempts["delivered_at"].between(first, given_up)]
        wait = (waited["delivered_at"] - waited["published_at"]).mean()
        rows.append({"subscription": subscription, "order_id": order, "event": detail_type, "first_try": first,
                     "given_up": float(given_up), "later": len(later), "overtook": len(later) - len(waited),
                     "waited": len(waited), "waited_s": float(wait) if len(waited) else float("nan"),
                     "others_handled": len(meanwhile)})
    return pd.DataFrame(rows, columns=["subscription", "order_id", "event", "first_try", "given_up", "later",
                                       "overtook", "waited", "waited_s", "others_handled"])


def group_timeline(run: Run, subscription: str, orders: Iterable[str]) -> pd.DataFrame:
    """One subscriber's handling of ``orders`` over time, for :func:`yafdp.analysis.figures.group_timeline`:
    :func:`delivery_attempts` of those orders, with ``waited_s`` (from the event's publication to this attempt)."""
    attempts = delivery_attempts(run, subscription)
    chosen = attempts[attempts["order_id"].isin(list(orders))].copy()
    chosen["waited_s"] = chosen["delivered_at"] - chosen["published_at"]
    return chosen.reset_index(drop=True)


def orders_around(run: Run, order_id: str, before: int = 3, after: int = 8) -> list[str]:
    """``order_id`` and the orders placed just before and after it (by when their first event was published)."""
    first = run.events.groupby("order_id")["published_at"].min().sort_values()
    ids = list(first.index)
    at = ids.index(order_id)
    return ids[max(0, at - before): at + after + 1]


def delivery_types(run: Run, service: str) -> pd.Series:
    """How ``service``'s handlings were delivered (``aws:DeliveryType``: ``LIVE``, or ``REPLAY`` for an event read
    from the bus's retained history), counting successful handlings."""
    ok = run.deliveries[(run.deliveries["service"] == service) & (run.deliveries["outcome"] == "ok")]
    return ok["delivery_type"].fillna("LIVE").value_counts().rename("handled")


def retry_policies(catalog: Catalog) -> pd.DataFrame:
    """Each bus's retry of a failed delivery: AWS's default, the documented range, and what this project sets
    (``data/bus.json``), with the source of each. The Classic target's policy counts ``MaximumRetryAttempts``, the
    Custom Event Bus subscriber's ``MaxRetryAttempts``; both are retries after the first attempt, and retrying
    stops at whichever limit comes first."""
    classic, custom = catalog.bus.retry_policy, catalog.bus.custom.retry_policy
    rows = [
        {"bus": BUS_NAMES["classic"], "retries": "a rule target's RetryPolicy",
         "AWS default": f"{limits.CLASSIC_DEFAULT_MAX_RETRY_ATTEMPTS} retries or 24 h (86,400 s)",
         "range": "0–185 retries, 60–86,400 s",
         "this project": f"{classic['MaximumRetryAttempts']} retries or {classic['MaximumEventAgeInSeconds']:,} s",
         "source": CLASSIC_RETRY_PAGE},
        {"bus": BUS_NAMES["custom"], "retries": "a subscriber's RetryPolicy (RetryStrategy ALL)",
         "AWS default": f"{limits.DEFAULT_MAX_RETRY_ATTEMPTS} retries or {limits.DEFAULT_MAX_EVENT_AGE_SECONDS} s",
         "range": f"{limits.MAX_RETRY_ATTEMPTS_RANGE[0]}–{limits.MAX_RETRY_ATTEMPTS_RANGE[1]} retries, "
                  f"{limits.MAX_EVENT_AGE_RANGE[0]}–{limits.MAX_EVENT_AGE_RANGE[1]:,} s",
         "this project": f"{custom['MaxRetryAttempts']} retries or {custom['MaxEventAgeInSeconds']:,} s",
         "source": limits.RETRY_PAGE},
    ]
    return pd.DataFrame(rows).set_index("bus")


def quotas() -> pd.DataFrame:
    """The two buses' documented quotas side by side (per account and Region unless said), each row with the
    page it comes from. The Classic PutEvents rate is eu-west-1's, as ``data/quotas.json`` has it."""
    from yafdp.catalog.loader import read_json
    from yafdp.shipped import QUOTAS_FILE

    classic = {k: v["value"] for k, v in read_json(QUOTAS_FILE)["quotas"].items()}
    rows = [
        ("events published per second", f"{classic['eventbridge_put_events_per_second']:,.0f} PutEvents requests/s "
         "(eu-west-1, adjustable)", f"{limits.BUS_EVENTS_PER_SECOND:,} events/s per bus (not adjustable)",
         f"{CLASSIC_QUOTAS_PAGE}; {limits.QUOTAS_PAGE}"),
        ("throughput of one order (one event group)", "no such limit (no groups)",
         f"{limits.GROUP_EVENTS_PLUS_KB_PER_SECOND:,} events + KB per second per group (not adjustable)",
         limits.QUOTAS_PAGE),
        ("entries per PutEvents request", "1 to 10", f"1 to {limits.MAX_ENTRIES}",
         f"{CLASSIC_PUT_EVENTS_PAGE}; {limits.API_PUT_EVENTS}"),
        ("size", f"{classic['eventbridge_put_events_entry_bytes']:,} bytes per entry",
         f"{limits.MAX_REQUEST_BYTES:,} bytes per request", f"{CLASSIC_ENTRY_SIZE_PAGE}; {limits.API_PUT_EVENTS}"),
        ("buses per account", "100", f"{limits.MAX_BUSES_PER_ACCOUNT} (adjustable)",
         f"{CLASSIC_QUOTAS_PAGE}; {limits.QUOTAS_PAGE}"),
        ("who receives an event", "300 rules per bus, 5 targets per rule",
         f"{limits.MAX_SUBSCRIBERS_PER_BUS:,} subscribers per bus (adjustable), 1 target each",
         f"{CLASSIC_QUOTAS_PAGE}; {limits.QUOTAS_PAGE}"),
        ("deduplication at publish", "none", f"{limits.DEDUPLICATION_WINDOW_SECONDS} s window",
         f"{WHAT_IS_PAGE}; {limits.ORDERING_PAGE}"),
        ("events kept", "only in an archive (a separate resource) for replay",
         f"{limits.RETENTION_DAYS_RANGE[0]} to {limits.RETENTION_DAYS_RANGE[1]} days on the bus (default "
         f"{limits.DEFAULT_RETENTION_DAYS})", f"{MIGRATE_PAGE}; {limits.CREATE_PAGE}"),
    ]
    return pd.DataFrame(rows, columns=["quota", BUS_NAMES["classic"], BUS_NAMES["custom"], "source"]).set_index("quota")


NOT_PUBLISHED = "rate not published in AWS's user guide, which defers to the pricing page: not priced here"


def costs() -> pd.DataFrame:
    """What each bus bills the saga for, as far as AWS publishes it: a price from ``data/prices.json`` (with the
    page that quoted it) where there is one, and ``rate not published`` where AWS names a billing dimension of
    the Custom Event Bus but gives no rate (SPEC §8.3: every page of the user guide defers to the pricing page, where
    this project could read the Classic bus's rates only). Nothing here is estimated."""
    from yafdp.analysis.costs import describe_price, load_prices

    prices = load_prices()

    def price(name: str) -> str:
        return describe_price(prices[name])

    rows = [
        ("publishing an event", f"{price('eventbridge_custom_event')}; each 64 KB of an entry is one event",
         f"billed per KB ingested, each entry rounded up to a whole KB: {NOT_PUBLISHED}",
         f"{PRICING_PAGE}; {WHAT_IS_PAGE}; {limits.UG}eb-custom-bus-observability.html"),
        ("delivering it to each subscriber", "no line of its own in the Classic price above",
         f"billed per KB delivered: {NOT_PUBLISHED}", f"{PRICING_PAGE}; {WHAT_IS_PAGE}"),
        ("keeping events to replay them", "an archive, billed by the GB stored (not priced in this project)",
         f"retention on the bus, billed by the volume kept over time: {NOT_PUBLISHED}",
         f"{PRICING_PAGE}; {WHAT_IS_PAGE}"),
        ("deduplication at publish", "none", f"CONTENT_BASED is billed as an extra operation: {NOT_PUBLISHED}; "
         "this project sets DeduplicationId instead, which AWS does not list as billed", limits.ORDERING_PAGE),
        ("the saga's service queues", f"SQS standard: {price('sqs_standard_request')}",
         f"SQS FIFO, to keep each order's order to the function: {price('sqs_fifo_request')}",
         "https://aws.amazon.com/sqs/pricing/"),
    ]
    return pd.DataFrame(rows, columns=["billed for", BUS_NAMES["classic"], BUS_NAMES["custom"], "source"]
                        ).set_index("billed for")


def subscriber_dead_letter_path(run: Run) -> pd.DataFrame:
    """The first event a Custom Event Bus subscriber gave up on in ``run``, as one row in the columns of
    :func:`yafdp.analysis.dead_letters.dead_letter_paths` (the Classic bus's three paths), to read beside them:
    who retried and how often, where it ended, the error, and the attributes of the on-failure queue's message.

    Raises :class:`LookupError` when no subscriber gave up on anything in ``run``."""
    with rundb.open_run(run.path) as db:
        row = db.execute("SELECT event_id, rule, error_code, error_message, attributes, body FROM dead_letters"
                         " WHERE kind = 'subscriber' ORDER BY id LIMIT 1").fetchone()
        if row is None:
            raise LookupError(f"{run.path}: no Custom Event Bus subscriber dead-lettered anything")
        event_id, rule, code, message, attributes, body = row
        attempts = db.execute("SELECT COUNT(*) FROM deliveries WHERE event_id = ? AND rule = ? AND outcome = 'failed'",
                              (event_id, rule)).fetchone()[0]
    record = json.loads(body)
    return pd.DataFrame([{
        "path": f"Custom Event Bus subscriber {subscription_of(run, rule)} cannot deliver to its queue",
        "handler or delivery attempts": attempts,
        "ends in": f"the subscriber's on-failure queue: a record pointing to the event ({', '.join(sorted(record))})",
        "error recorded": f"{code}: {message}",
        "attributes of that dead-letter queue": ", ".join(sorted(json.loads(attributes or "{}"))),
    }])
