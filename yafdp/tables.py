"""The catalog as pandas tables for the notebooks (not part of the runtime core, which avoids pandas)."""

from __future__ import annotations

import pandas as pd

from yafdp.catalog import Catalog


def events_table(catalog: Catalog) -> pd.DataFrame:
    """One row per event: who produces it, its EventBridge source, where it comes from, its fields."""
    rows = [
        {
            "event (detail-type)": ev.name,
            "producer": ev.service,
            "source": ev.source,
            "kind": ev.kind,
            "terminal": ev.terminal,
            "origin": ev.origin,
            "required fields": ", ".join(ev.schema.get("required", [])),
            "description": ev.description,
        }
        for ev in catalog.events.values()
    ]
    return pd.DataFrame(rows).set_index("event (detail-type)")


def schema_fields(catalog: Catalog, event: str) -> pd.DataFrame:
    """The top-level fields of an event's ``detail`` schema: type, constraints, required or not."""
    schema = catalog.events[event].schema
    required = set(schema.get("required", []))
    rows = []
    for name, spec in schema.get("properties", {}).items():
        constraints = {k: v for k, v in spec.items() if k not in ("type", "items", "properties")}
        rows.append({
            "field": name,
            "type": spec.get("type", "any") + (f" of {spec['items'].get('type')}" if "items" in spec else ""),
            "required": name in required,
            "constraints": ", ".join(f"{k}={v}" for k, v in constraints.items()),
        })
    return pd.DataFrame(rows).set_index("field")


def subscriptions_table(catalog: Catalog) -> pd.DataFrame:
    """One row per rule: its service, handler, path, the events it matches and the events it may emit."""
    rows = [
        {
            "rule": sub.rule,
            "service": sub.service,
            "handler": sub.handler,
            "path": sub.path,
            "matches": ", ".join(catalog.matched_events(sub)),
            "may emit": ", ".join(sub.emits) or "—",
            "purpose": sub.purpose,
        }
        for sub in catalog.subscriptions
    ]
    return pd.DataFrame(rows).set_index("rule")


def subscription_matrix(catalog: Catalog) -> pd.DataFrame:
    """Events × services: the rule's path where a service listens to an event, empty where it does not."""
    matrix = pd.DataFrame("", index=list(catalog.events), columns=list(catalog.services))
    for sub in catalog.subscriptions:
        for event in catalog.matched_events(sub):
            matrix.loc[event, sub.service] = sub.path
    matrix.index.name = "event"
    return matrix
