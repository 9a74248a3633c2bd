"""The AWS service quotas a design must fit to deploy at all, checked before anything is deployed: rules per event
bus, rules with a wildcard per bus, and resources per CloudFormation stack. (An event pattern's size, 2,048
characters, is checked with the pattern itself: :data:`yafdp.patterns.compile.MAX_PATTERN_LENGTH`.)

``yafdp lint`` reports each quota a design exceeds; ``yafdp plan`` and ``yafdp deploy`` (and every run on moto or
AWS) refuse a plan beyond EventBridge's, and ``yafdp plan --format cloudformation`` a template beyond
CloudFormation's, instead of printing what AWS would reject halfway through (``PutRule`` answers
``LimitExceededException`` at the 301st rule; CloudFormation refuses the whole template). The values and their
sources are in ``data/quotas.json``; an account whose adjustable quota was raised edits the value there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yafdp.catalog.loader import read_json
from yafdp.catalog.model import CatalogError
from yafdp.patterns import compile_pattern
from yafdp.patterns import operators as op
from yafdp.plan.model import DeploymentPlan, PlanError, check_names
from yafdp.shipped import QUOTAS_FILE

# The quotas of data/quotas.json a design is checked against, and what each counts.
DESIGN_QUOTAS = {
    "eventbridge_rules_per_bus": "rules on the bus",
    "eventbridge_wildcard_rules_per_bus": "rules with a wildcard filter on the bus",
    "cloudformation_resources_per_stack": "resources in the CloudFormation template",
}


@dataclass(frozen=True)
class QuotaExceeded:
    """A quota a design exceeds: which (a key of ``data/quotas.json``), where, how much it needs and may have."""

    quota: str
    where: str
    found: int
    limit: int
    adjustable: bool
    url: str

    def __str__(self) -> str:
        kind = "a default quota, adjustable through Service Quotas" if self.adjustable else "not adjustable"
        return (f"{self.where}: {self.found:,} {DESIGN_QUOTAS[self.quota]}, more than AWS allows "
                f"({self.limit:,}, {self.quota}: {kind}; {self.url})")


def design_quotas(quotas_file: str | Path = QUOTAS_FILE) -> dict[str, dict]:
    """The entries of :data:`DESIGN_QUOTAS` in ``quotas_file``: ``{key: {"value", "adjustable", "source"}}``.

    Raises :class:`~yafdp.catalog.model.CatalogError` naming the file and the key of one missing or without a
    whole value and a source.
    """
    quotas = read_json(Path(quotas_file)).get("quotas", {})
    for key in DESIGN_QUOTAS:
        entry = quotas.get(key)
        if not isinstance(entry, dict) or type(entry.get("value")) is not int or "url" not in entry.get("source", {}):
            raise CatalogError(quotas_file, f"quotas.{key}", "is missing, or has no whole value and source URL")
    return {key: quotas[key] for key in DESIGN_QUOTAS}


def exceeded_quotas(plan: DeploymentPlan, template: dict | None = None,
                    quotas_file: str | Path = QUOTAS_FILE) -> list[QuotaExceeded]:
    """Every quota of :data:`DESIGN_QUOTAS` that ``plan`` (and its CloudFormation ``template``, when given)
    exceeds, in a stable order; empty when it fits.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> from yafdp.plan import build_plan
    >>> exceeded_quotas(build_plan(load_catalog(), "yafdp"))
    []
    """
    quotas = design_quotas(quotas_file)

    def over(key: str, where: str, found: int) -> list[QuotaExceeded]:
        entry = quotas[key]
        return [QuotaExceeded(key, where, found, entry["value"], bool(entry.get("adjustable")), entry["source"]["url"])
                ] if found > entry["value"] else []

    bus = f"bus {plan.bus}"
    found = over("eventbridge_rules_per_bus", bus, len(plan.rules))
    found += over("eventbridge_wildcard_rules_per_bus", bus, sum(_has_wildcard(r.pattern) for r in plan.rules))
    if template is not None:
        found += over("cloudformation_resources_per_stack", "the CloudFormation template",
                      len(template.get("Resources", {})))
    return found


def check_quotas(plan: DeploymentPlan, template: dict | None = None) -> None:
    """Refuse, as :class:`~yafdp.plan.model.PlanError` (one line), a plan (or template) that exceeds a quota of
    :data:`DESIGN_QUOTAS`: it could not be deployed as it is. The first three are named, with how many more."""
    found = exceeded_quotas(plan, template)
    if found:
        more = f"; and {len(found) - 3} more" if len(found) > 3 else ""
        raise PlanError("cannot deploy as designed: " + "; ".join(map(str, found[:3])) + more
                        + ": split the design across event buses or stacks, or raise an adjustable quota")


def check_deployable(plan: DeploymentPlan, template: dict | None = None) -> None:
    """Refuse, as :class:`~yafdp.plan.model.PlanError`, a plan AWS would not take: a name longer than AWS allows
    (:func:`~yafdp.plan.model.check_names`) or a quota exceeded (:func:`check_quotas`). ``yafdp plan`` and
    ``deploy`` ask it before printing or deploying anything."""
    check_names(plan)
    check_quotas(plan, template)


def _has_wildcard(pattern: dict) -> bool:
    """Whether an event pattern has a ``wildcard`` filter (``anything-but`` wildcards included), as the pattern
    engine reads it (a field that happens to be named "wildcard" is no filter)."""
    kinds = (op.WILDCARD, op.ANYTHING_BUT_WILDCARD)
    return any(alt.kind in kinds for branch in compile_pattern(pattern).branches for alts in branch.values()
               for alt in alts)
