"""The ``moto`` and ``aws`` backends: deploy the plan, fire the workload's orders, wait until every order
is terminal, export state and trace into ``run.db`` (the local backend's schema) and destroy the deployment.

The two differ only in where the calls go (a moto server started in this process, or AWS with the default
credential chain and region) and in who runs the handlers: on moto, which cannot execute Lambda code
without a container engine, queue pollers in this process do what Lambda's event source mapping does;
on AWS, Lambda runs them.
"""

from __future__ import annotations

import secrets
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from yafdp import store
from yafdp.catalog import Catalog, load_catalog
from yafdp.faults import Faults
from yafdp.marketplace import load_marketplace
from yafdp.plan import DeploymentPlan, build_plan
from yafdp.runs import RunOptions, arrivals, describe, finish, placing
from yafdp.services.order import TERMINAL

from yafdp.aws.bus import AwsBus
from yafdp.aws.clients import AwsClients, make_clients
from yafdp.aws.deployer import apply
from yafdp.aws.dynamo_state import items_of
from yafdp.aws.functions import InProcessFunctions, LambdaFunctions
from yafdp.aws.moto_server import MotoServer
from yafdp.aws.package import build_package
from yafdp.aws.teardown import destroy

@dataclass(frozen=True)
class BackendSettings:
    """How a backend's deployment behaves and how patiently a run waits for it."""

    visibility_timeout_seconds: int  # the retry delay of a failed message
    run_functions: bool  # Lambda consumes the queues (AWS); else pollers in this process (moto)
    quiet_checks: int  # empty queues seen this many times in a row = settled
    check_seconds: float
    timeout_seconds: float  # plus timeout_per_order for each order
    timeout_per_order: float
    allowed_faults: tuple[str, ...]


SETTINGS = {
    "moto": BackendSettings(2, False, 2, 0.1, 60.0, 1.0,
                            ("handler_failure_rate", "poison_rate", "duplicate_rate")),
    # SQS's counts are approximate and EventBridge delivers asynchronously: look longer before calling it quiet.
    "aws": BackendSettings(30, True, 5, 2.0, 300.0, 1.0, ("handler_failure_rate", "poison_rate")),
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
           faults: Faults = Faults(), seed: int = 0, echo: Callable[[str], None] = print) -> DeploymentPlan:
    """Build the plan for ``clients``' account and region and apply it; returns the plan.

    Examples
    --------
    >>> from yafdp.catalog import load_catalog
    >>> with MotoServer() as url:
    ...     clients = make_clients(url)
    ...     plan = deploy(clients, load_catalog(), backend="moto", prefix="doc-deploy", echo=lambda line: None)
    ...     _ = destroy(clients, "doc-deploy", echo=lambda line: None)
    >>> plan.bus, plan.account
    ('doc-deploy-saga', '123456789012')
    """
    settings = SETTINGS[backend]
    plan = build_plan(catalog, prefix, region=clients.region, account=clients.account(), run_id=prefix,
                      visibility_timeout_seconds=settings.visibility_timeout_seconds)
    apply(plan, clients, build_package(catalog_dir), run_functions=settings.run_functions, faults=faults, seed=seed,
          echo=echo)
    return plan


def open_bus(plan: DeploymentPlan, catalog: Catalog, clients: AwsClients, *, backend: str, catalog_dir=None,
             faults: Faults = Faults(), seed: int = 0, orders: int = 0, teardown=None) -> AwsBus:
    """An :class:`AwsBus` on a deployment, its queues being consumed (by pollers here on moto), whose
    :meth:`~AwsBus.run` waits until every order is terminal (or dead letters explain why not)."""
    settings = SETTINGS[backend]
    if settings.run_functions:
        functions = LambdaFunctions(plan, clients)
    else:
        functions = InProcessFunctions(plan, catalog, load_marketplace(catalog_dir), clients, faults=faults, seed=seed)
    bus = AwsBus(catalog, plan, clients, functions, quiet_checks=settings.quiet_checks,
                 check_seconds=settings.check_seconds, teardown=teardown,
                 timeout=settings.timeout_seconds + settings.timeout_per_order * orders)
    bus.until = lambda: _saga_settled(bus)
    bus.explain = lambda: _stuck_orders(bus)
    return bus


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def start_saga_on_aws(options: RunOptions, *, echo: Callable[[str], None] = _stderr,
                      endpoint_url: str | None = None) -> AwsBus:
    """Deploy the plan to ``options.backend`` (``moto``: a moto server started here unless ``endpoint_url``
    names one; ``aws``: your account) and schedule the run's orders: call ``bus.run()``, then
    :func:`yafdp.runs.finish`, which writes ``run.db`` and destroys the deployment (unless ``options.keep``,
    on aws). :func:`run_saga_on_aws` does it all."""
    _check(options)
    catalog = load_catalog(options.catalog_dir).without(*options.exclude_services)
    prefix = new_prefix()
    stack = ExitStack()  # undone in reverse: the deployment is destroyed, then the moto server stops
    try:
        if options.backend == "moto" and endpoint_url is None:
            endpoint_url = stack.enter_context(MotoServer())
        clients = make_clients(endpoint_url)
        stack.callback(_teardown, clients, prefix, options, echo)  # before deploying: a failed deploy is cleaned too
        created: list[str] = []
        echo(f"deploying the plan as {prefix}-… on {options.backend}")
        plan = deploy(clients, catalog, backend=options.backend, prefix=prefix, catalog_dir=options.catalog_dir,
                      faults=options.faults, seed=options.seed, echo=created.append)
        echo(f"deployed: {len(created)} changes" + (f" at {endpoint_url}" if endpoint_url else f" in {clients.region}"))
        bus = open_bus(plan, catalog, clients, backend=options.backend, catalog_dir=options.catalog_dir,
                       faults=options.faults, seed=options.seed, orders=options.orders, teardown=stack.close)
    except BaseException:
        stack.close()
        raise
    Path(options.out).mkdir(parents=True, exist_ok=True)
    store.set_info(bus.db, **describe(options), status="running", prefix=prefix, region=clients.region,
                   services=list(catalog.services), rules={r.name: r.pattern for r in plan.rules})
    for at, request in arrivals(options, load_marketplace(options.catalog_dir)):
        bus.schedule(at, placing(bus, request))
    return bus


def run_saga_on_aws(options: RunOptions, *, echo: Callable[[str], None] = _stderr, endpoint_url: str | None = None) -> dict:
    """Run the workload on ``options.backend`` (``moto`` or ``aws``); return the summary (also written to
    ``summary.json``, beside ``run.db``). The deployment is destroyed at the end, whatever happens, unless
    ``options.keep`` (aws only: a moto server started here ends with the run). A run whose orders are not
    all terminal in time raises :class:`~yafdp.aws.bus.NotSettledError` naming them, after writing ``run.db``.

    Examples
    --------
    >>> import tempfile
    >>> summary = run_saga_on_aws(RunOptions(orders=3, backend="moto", out=Path(tempfile.mkdtemp())), echo=lambda s: None)
    >>> summary["orders"]["placed"], summary["orders"]["not_terminal"]
    (3, 0)
    """
    bus = start_saga_on_aws(options, echo=echo, endpoint_url=endpoint_url)
    try:
        started = time.perf_counter()
        try:
            bus.run()
        finally:  # a stuck run still leaves its evidence in run.db
            summary = finish(bus, options, Path(options.out), time.perf_counter() - started)
        return summary
    finally:
        bus.close()


def _teardown(clients: AwsClients, prefix: str, options: RunOptions, echo) -> None:
    if options.keep and options.backend == "aws":
        echo(f"kept the deployment: remove it with `yafdp destroy --backend aws --prefix {prefix}`")
    else:
        echo(f"destroyed {len(destroy(clients, prefix, echo=lambda line: None))} resources named {prefix}-…")


def _check(options: RunOptions) -> BackendSettings:
    if options.backend not in SETTINGS:
        raise ValueError(f"backend must be one of {', '.join(SETTINGS)} here; got {options.backend!r}")
    settings = SETTINGS[options.backend]
    if options.latency_model != "none" or options.style != "choreography":
        raise ValueError(f"the {options.backend} backend runs the choreography and measures its times; latency models "
                         "and the orchestration style run on the local backend (--backend local)")
    if options.store != "memory":
        raise ValueError(f"--store {options.store} is for the local backend (resumable runs); the {options.backend} "
                         "backend keeps state in DynamoDB and writes run.db at the end")
    unsupported = [name for name, rate in options.faults.to_dict().items()
                   if name.endswith("_rate") and rate and name not in settings.allowed_faults]
    if unsupported:
        raise ValueError(f"the {options.backend} backend cannot inject {', '.join(unsupported)}; it can inject "
                         f"{', '.join(settings.allowed_faults)} (the local backend injects them all)")
    return settings


def _saga_settled(bus: AwsBus) -> bool:
    """Whether the saga has nothing left to do: every order terminal, or dead letters to explain why not."""
    return all(status in TERMINAL for status in _order_statuses(bus).values()) or any(_dead_letter_depths(bus).values())


def _order_statuses(bus: AwsBus) -> dict[str, str]:
    """Every order's status, read from the Order service's table."""
    return {order_id: item.get("status") for order_id, item in
            items_of(bus.clients.dynamodb, bus.plan.service("order").table, "order")}


def _dead_letter_depths(bus: AwsBus) -> dict[str, int]:
    """Messages in each dead-letter queue of the deployment (service queues' and rules')."""
    names = [s.queue_dead_letter_queue for s in bus.plan.services] + [r.target.dead_letter_queue for r in bus.plan.rules]
    sqs, depths = bus.clients.sqs, {}
    for name in names:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        depths[name] = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                           ["Attributes"]["ApproximateNumberOfMessages"])
    return depths


def _stuck_orders(bus: AwsBus) -> str:
    """The orders that are not terminal, with their status, for an error message."""
    statuses = _order_statuses(bus)
    stuck = [f"{o} ({s})" for o, s in statuses.items() if s not in TERMINAL]
    if not stuck:
        return "every order is terminal"
    return f"{len(stuck)} of {len(statuses)} orders are not terminal: {', '.join(stuck[:10])}" + (" …" if len(stuck) > 10 else "")
