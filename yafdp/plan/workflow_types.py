"""Step Functions' workflow types as AWS documents them (``data/workflows.json``, each value with the AWS page it
quotes): how an execution runs (exactly-once, at-least-once, at-most-once), how long it may run, whether it can
wait for a callback (``.waitForTaskToken``), where its history is, and what it is billed by.

The local runner (:mod:`yafdp.backends.local.step_functions`) takes its maximum durations and its refusal of
callback Tasks in an Express workflow from here; chapter 09 shows the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from yafdp.catalog import DEFAULT_DATA_DIR
from yafdp.errors import ConfigurationError

WORKFLOWS_FILE = DEFAULT_DATA_DIR / "workflows.json"
# The runner's two workflows and the type each one runs as: an Express workflow run by the local runner is started
# with StartExecution, the asynchronous kind.
RUNNER_TYPES = {"standard": "standard", "express": "express_async"}


@dataclass(frozen=True)
class WorkflowType:
    """One workflow type: ``execution`` (``exactly-once``, ``at-least-once`` or ``at-most-once``),
    ``max_duration_seconds``, ``callback_tasks`` (whether a Task may wait for a task token), ``history`` and
    ``billed_by`` as AWS words them, and ``sources`` (per field: the AWS ``quote`` and its ``url``)."""

    name: str
    label: str
    execution: str
    max_duration_seconds: float
    callback_tasks: bool
    history: str
    billed_by: str
    sources: dict


@lru_cache(maxsize=1)
def _document() -> dict:
    try:
        return json.loads(WORKFLOWS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{WORKFLOWS_FILE}: {exc}") from None


def workflow_types() -> dict[str, WorkflowType]:
    """Every workflow type of ``data/workflows.json`` by name (``standard``, ``express_async``, ``express_sync``).

    Raises :class:`~yafdp.errors.ConfigurationError` naming the file (and key) when it does not load.

    Examples
    --------
    >>> types = workflow_types()
    >>> types["standard"].execution, types["express_async"].execution, types["express_sync"].max_duration_seconds
    ('exactly-once', 'at-least-once', 300)
    """
    types = {}
    for name, spec in _document()["types"].items():
        try:
            types[name] = WorkflowType(name=name, **spec)
        except TypeError as exc:
            raise ConfigurationError(f"{WORKFLOWS_FILE}: types.{name}: {exc}") from None
    return types


def runner_type(workflow: str) -> WorkflowType:
    """The workflow type the local runner's ``workflow`` (``standard`` or ``express``) runs as."""
    return workflow_types()[RUNNER_TYPES[workflow]]


def new_accounts_note() -> dict:
    """AWS's word that new accounts start with reduced state-transition quotas: ``{"quote", "url"}``."""
    return dict(_document()["new_accounts"])
