"""What adding a service to the choreography changes: the catalog and plan, resource by resource, and the code.

The blog's claim is that a new subscriber touches nobody else. These functions make that checkable: a diff
of two catalogs or two deployment plans, and the service modules whose source mentions a name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from yafdp.catalog import Catalog
from yafdp.plan import DeploymentPlan, plan_resources

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"
CHANGES = ("added", "removed", "changed", "unchanged")


@dataclass(frozen=True)
class Change:
    """One resource (or catalog entry) compared between a before and an after."""

    kind: str
    name: str
    service: str
    change: str  # one of CHANGES


def diff_plans(before: DeploymentPlan, after: DeploymentPlan) -> list[Change]:
    """Every resource of either plan, marked added, removed, changed (same name, other definition) or unchanged.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> catalog = load_catalog()
    >>> changes = diff_plans(build_plan(catalog.without("loyalty")), build_plan(catalog))
    >>> sorted({(c.service, c.change) for c in changes if c.change != "unchanged"})
    [('loyalty', 'added')]
    """
    return _diff({(r.kind, r.name): (r.service, r.definition) for r in plan_resources(before)},
                 {(r.kind, r.name): (r.service, r.definition) for r in plan_resources(after)})


def diff_catalogs(before: Catalog, after: Catalog) -> list[Change]:
    """Every service, event and subscription of either catalog, compared like :func:`diff_plans`.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> catalog = load_catalog()
    >>> sorted(c.name for c in diff_catalogs(catalog.without("loyalty"), catalog) if c.kind == "subscription"
    ...        and c.change == "added")
    ['loyalty-awards-confirmed-order', 'loyalty-reverts-undeliverable-order']
    """
    def entries(catalog: Catalog) -> dict:
        found = {("service", s.name): (s.name, {"source": s.source, "entrypoints": [p.name for p in s.entrypoints]})
                 for s in catalog.services.values()}
        found |= {("event", e.name): (e.service, {"source": e.source, "kind": e.kind, "schema": e.schema})
                  for e in catalog.events.values()}
        found |= {("subscription", s.rule): (s.service, {"handler": s.handler, "path": s.path, "emits": s.emits,
                                                         "pattern": s.pattern, "matches": catalog.matched_events(s)})
                  for s in catalog.subscriptions}
        return found
    return _diff(entries(before), entries(after))


def _diff(before: dict, after: dict) -> list[Change]:
    changes = []
    for key in list(before) + [k for k in after if k not in before]:
        kind, name = key
        if key not in after:
            changes.append(Change(kind, name, before[key][0], "removed"))
        elif key not in before:
            changes.append(Change(kind, name, after[key][0], "added"))
        else:
            same = _canonical(before[key]) == _canonical(after[key])
            changes.append(Change(kind, name, after[key][0], "unchanged" if same else "changed"))
    return changes


def _canonical(value) -> str:
    # Mappings may be read-only proxies and tuples may be lists: compare what they would serialise to.
    return json.dumps(value, sort_keys=True, default=lambda v: dict(v) if hasattr(v, "keys") else list(v))


def modules_mentioning(word: str, services_dir: Path = SERVICES_DIR) -> dict[str, list[int]]:
    """The service modules whose source mentions ``word`` (case-insensitive), with the line numbers.

    Examples
    --------
    >>> list(modules_mentioning("loyalty"))
    ['loyalty']
    """
    found = {}
    for path in sorted(services_dir.glob("*.py")):
        lines = [n for n, line in enumerate(path.read_text().splitlines(), 1) if word.lower() in line.lower()]
        if lines:
            found[path.stem] = lines
    return found
