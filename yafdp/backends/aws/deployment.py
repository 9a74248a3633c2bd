"""The ``moto`` and ``aws`` backends' deployments: how each behaves, deploying the plan, and the bus on top.

The two differ only in where the calls go (a moto server started in this process, or AWS with the default
credential chain and region) and in who runs the handlers: on moto, which cannot execute Lambda code
without a container engine, queue pollers in this process do what Lambda's event source mapping does;
on AWS, Lambda runs them. :mod:`yafdp.runs.bootstrap` composes them into a run.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from yafdp.catalog import Catalog
from yafdp.plan import DeploymentPlan, build_plan
from yafdp.plan.custom_bus import refuse_function_targets
from yafdp.plan.service_quotas import check_deployable
from yafdp.runtime.faults import Faults

from yafdp.backends.aws.bus import AwsBus
from yafdp.backends.aws.clients import AwsClients
from yafdp.backends.aws.custom_bus import client_of
from yafdp.backends.aws.deployer import apply
from yafdp.backends.aws.functions import InProcessFunctions, LambdaFunctions
from yafdp.backends.aws.package import build_package


@dataclass(frozen=True)
class BackendSettings:
    """How a backend's deployment behaves and how patiently a run waits for it."""

    visibility_timeout_seconds: int  # the retry delay of a failed message
    run_functions: bool  # Lambda consumes the queues (AWS); else pollers in this process (moto)
    quiet_checks: int  # empty queues seen this many times in a row = settled
    check_seconds: float
    timeout_seconds: float  # how long a run waits for something to move on the deployment (AwsBus's timeout)
    allowed_faults: tuple[str, ...]


SETTINGS = {
    "moto": BackendSettings(2, False, 2, 0.1, 60.0,
                            ("handler_failure_rate", "poison_rate", "duplicate_rate")),
    # SQS's counts are approximate and EventBridge delivers asynchronously: look longer before calling it quiet.
    "aws": BackendSettings(30, True, 5, 2.0, 300.0, ("handler_failure_rate", "poison_rate")),
}


def new_prefix() -> str:
    """A fresh name prefix for one run's deployment.

    Examples
    --------
    >>> import re
    >>> bool(re.fullmatch(r"yafdp-[0-9a-f]{6}", new_prefix()))
    True
    """
    return f"yafdp-{secrets.token_hex(3)}"


def deploy(clients: AwsClients, catalog: Catalog, *, backend: str, prefix: str, catalog_dir: str | Path | None = None,
           faults: Faults = Faults(), seed: int = 0, echo: Callable[[str], None] = print,
           point_in_time_recovery: bool = True, bus: str | None = None) -> DeploymentPlan:
    """Build the plan for ``clients``' account, Region and partition and apply it (idempotent); returns the plan.

    ``backend`` is ``"moto"`` or ``"aws"`` (see :data:`SETTINGS`); ``echo`` hears every change made;
    ``point_in_time_recovery`` keeps continuous backups of the service tables (a short run may go without);
    ``bus`` the kind of bus (``"classic"`` or ``"custom"``; None: the catalog's). Raises
    :class:`~yafdp.plan.model.PlanError` for names longer than AWS allows or an AWS quota the design exceeds
    (:func:`~yafdp.plan.service_quotas.check_deployable`), before asking AWS anything,
    :class:`~yafdp.errors.RefusedError` for a Custom Event Bus without a client that reaches one or with a subscriber
    whose target is a function (run on the local backend only), and
    :class:`~yafdp.backends.aws.ownership.NotOwnedError` (nothing changed) when a resource of the plan exists
    and is not this deployment's.
    """
    settings = SETTINGS[backend]
    named = build_plan(catalog, prefix, run_id=prefix, bus=bus)
    check_deployable(named)  # names (they follow the prefix alone) and quotas: refused before AWS is asked
    if named.bus_kind == "custom":
        client_of(clients)
        refuse_function_targets(named.subscribers, "on moto or AWS")
    plan = build_plan(catalog, prefix, region=clients.region, account=clients.account(), run_id=prefix,
                      partition=clients.partition(), visibility_timeout_seconds=settings.visibility_timeout_seconds,
                      point_in_time_recovery=point_in_time_recovery, bus=bus)
    apply(plan, clients, build_package(catalog_dir), run_functions=settings.run_functions, faults=faults, seed=seed,
          echo=echo)
    return plan


def open_deployed_bus(plan: DeploymentPlan, catalog: Catalog, world: Any, clients: AwsClients, db, *,
                      backend: str, faults: Faults = Faults(), seed: int = 0,
                      teardown: Callable[[], None] | None = None, concurrency: int = 4,
                      undelivered: Callable[[], int] | None = None) -> AwsBus:
    """An :class:`AwsBus` on a deployment, exporting into ``db``, its queues being consumed (on moto here, by a
    poller per queue with up to ``concurrency`` batches in hand; on AWS by Lambda, which scales itself), whose
    :meth:`~AwsBus.run` waits until every order is terminal (or dead letters explain why not), and a served bus
    has delivered everything (``undelivered``, see :class:`AwsBus`)."""
    settings = SETTINGS[backend]
    if settings.run_functions:
        functions = LambdaFunctions(plan, clients)
    else:
        functions = InProcessFunctions(plan, catalog, world, clients, faults=faults, seed=seed, concurrency=concurrency)
    return AwsBus(catalog, plan, clients, functions, db=db, quiet_checks=settings.quiet_checks,
                  check_seconds=settings.check_seconds, teardown=teardown, settle_orders=True, undelivered=undelivered,
                  timeout=settings.timeout_seconds)
