"""The composition root: the one place that knows which backends exist and wires a run's bus from its parts.

:data:`BACKENDS` maps a backend name to the factory that opens its bus; every factory takes the run's options,
the catalog and marketplace (loaded once by the caller) and the run database, and returns a
:class:`~yafdp.runtime.interfaces.Bus`.
"""

from __future__ import annotations

import functools
import random
import sqlite3
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from yafdp.custom_event_bus.choices import Choices
from yafdp.errors import RefusedError
from yafdp.extras import require

if TYPE_CHECKING:
    from yafdp.catalog import Catalog
    from yafdp.runtime.interfaces import Bus, TimingModel
    from yafdp.runs.options import RunOptions

# Each factory imports its backend when it opens one, so a command that only names the backends (the command
# line's parser, for --backend's choices) imports none of them.


def timing_for(latency_model: str, *, seed: int = 0, invocation: str = "queue", quota_scale: float = 1.0,
               bus_kind: str = "classic") -> TimingModel:
    """The timing a run uses: measured wall-clock for ``"none"``, else the simulated AWS time of a latency
    profile (a name from ``data/latency/`` or a profile file), with the quotas scaled by ``quota_scale``, and the
    model of the run's kind of bus (:mod:`yafdp.simulation.buses`): EventBridge's Classic bus and its account
    quotas, or the Custom Event Bus and its limits per event group and per bus.

    Raises :class:`~yafdp.simulation.profiles.LatencyProfileError` for a profile that does not load.

    Examples
    --------
    >>> timing_for("none").simulated, timing_for("aws-eu-west-1", quota_scale=0.5).quotas.lambda_concurrent_executions
    (False, 500)
    """
    if latency_model in (None, "", "none"):
        from yafdp.backends.local.timing import MeasuredTiming

        return MeasuredTiming()
    from yafdp.simulation.buses import event_bus_for
    from yafdp.simulation.timing import SimulatedTiming

    profile, quotas = profile_and_quotas(latency_model, quota_scale)
    bus = None  # the timing's default: the Classic bus at the account's quotas (none for an orchestration)
    if bus_kind == "custom" and invocation == "queue":
        bus = event_bus_for(bus_kind, profile, quotas, random.Random(f"{seed}:bus"))
    return SimulatedTiming(profile, quotas, seed=seed, invocation=invocation, bus=bus)


def profile_and_quotas(latency_model: str, quota_scale: float = 1.0):
    """The latency profile ``latency_model`` (a name from ``data/latency/`` or a profile file) and the account's
    quotas (``data/quotas.json``) scaled by ``quota_scale``: ``(LatencyProfile, Quotas)``.

    Raises :class:`~yafdp.simulation.profiles.LatencyProfileError` for a profile that does not load and
    :class:`~yafdp.errors.RefusedError` for a scale out of range.
    """
    from yafdp.simulation.profiles import load_profile
    from yafdp.simulation.quotas import load_quotas

    quotas = load_quotas()
    if quota_scale != 1.0:
        quotas = quotas.scaled(quota_scale)
    return load_profile(latency_model), quotas


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def open_local(options: RunOptions, catalog: Catalog, world: Any, db, *, session: int = 0,
               timing: TimingModel | None = None, echo: Callable[[str], None] = _stderr) -> Bus:
    """The local backend: the EventBridge-faithful bus in this process (or, with ``options.style ==
    "orchestration"``, the local Step Functions runner) over ``db``."""
    from yafdp.plan import build_plan

    orchestrated = options.style == "orchestration"
    plan = build_plan(catalog, bus=None if orchestrated else options.bus)
    timing = timing or timing_for(options.latency_model, seed=options.seed, quota_scale=options.quota_scale,
                                  invocation="direct" if orchestrated else "queue", bus_kind=plan.bus_kind)
    if orchestrated:
        from yafdp.backends.local.step_functions import LocalStepFunctions

        return LocalStepFunctions(catalog, plan, world, db, seed=options.seed, timing=timing, workflow=options.workflow)
    if plan.bus_kind == "custom":
        from yafdp.backends.local.custom_bus import LocalCustomBus as bus_type
    else:
        from yafdp.backends.local.bus import LocalBus as bus_type
    return bus_type(catalog, plan, world, db, seed=options.seed, session=session, faults=options.faults,
                    durable=options.store == "file", timing=timing,
                    commit_every=200 if options.store == "file" else 5000)


def open_deployed(options: RunOptions, catalog: Catalog, world: Any, db, *, session: int = 0,
                  timing: TimingModel | None = None, echo: Callable[[str], None] = _stderr,
                  endpoint_url: str | None = None) -> Bus:
    """The ``moto`` and ``aws`` backends: the plan deployed (on moto to ``endpoint_url``, else to the server
    ``yafdp moto-server`` runs, else to one started here for the run; or to your AWS account), its bus exporting into
    ``db``. On a Custom Event Bus (``options.bus`` or the catalog's) on moto, this process also serves the bus
    (:func:`serve_custom_event_bus`), its subscribers delivering to that moto server. The bus's ``close()`` destroys
    the deployment (unless ``options.keep``) and stops a moto server of its own; when the run was not saved to
    ``options.out`` by then, it keeps the deployment and ``echo`` says its prefix and the command that destroys it
    (on a moto server of its own there is nothing to keep).

    Raises :class:`~yafdp.errors.RefusedError` before deploying anything for options the backend cannot
    run and for an ``out`` folder a run cannot be saved to."""
    from yafdp.backends.aws.clients import make_clients, pool_for
    from yafdp.backends.aws.deployment import deploy, new_prefix, open_deployed_bus
    from yafdp.backends.aws.moto_server import MotoServer, running_server
    from yafdp.backends.aws.teardown import destroy
    from yafdp.runtime import rundb

    refuse_unsupported(options)
    given_endpoint = endpoint_url  # the commands find the server `yafdp moto-server` runs without being told
    found = None
    if options.backend == "moto" and endpoint_url is None:
        found = running_server()
        endpoint_url = found["url"] if found else None
    out = Path(options.out)  # checked by the run's lifecycle before anything was deployed
    prefix = new_prefix()
    stack = ExitStack()  # undone in reverse: the deployment is destroyed, then the moto server stops
    deployed_at = time.time()

    def saved() -> bool:  # lifecycle.finish writes run.db before it closes the bus
        db_file = out / "run.db"
        return db_file.is_file() and db_file.stat().st_mtime >= deployed_at

    def nothing_to_keep() -> bool:
        """Whether the run finished (every event exported into its database) and its database, still open, holds no
        event: a run that placed no order has no trace to keep (lifecycle.finish closes the bus of one that leaves
        an earlier run in place before it closes the database). A run stopped on the way is never judged so: its
        events may not be exported yet."""
        try:
            return rundb.get_info(db).get("status") == "finished" and \
                db.execute("SELECT NOT EXISTS (SELECT 1 FROM events)").fetchone()[0] == 1
        except sqlite3.ProgrammingError:  # closed: the run was saved, or stopped
            return False

    def teardown(clients) -> None:
        bus = " --bus custom" if custom else ""  # export and destroy read the Custom Event Bus only when told
        if options.keep and not setting_up[0]:
            echo(f"kept the deployment {prefix}: export its run again with `yafdp export --backend {options.backend} "
                 f"--prefix {prefix}{bus} --out DIR`, remove it with `yafdp destroy --backend {options.backend} "
                 f"--prefix {prefix}{bus}`")
        elif setting_up[0] or saved() or nothing_to_keep():
            echo(f"destroyed {len(destroy(clients, prefix, echo=lambda line: None))} resources named {prefix}-…")
        elif own_server:
            echo(f"the run was not saved to {out}; its moto deployment {prefix} lived in this process and ends with it")
        else:  # keep the evidence: the trace is in the deployment's tables
            where = (f" --endpoint-url {given_endpoint}" if given_endpoint else "") + bus
            echo(f"the run was not saved to {out}: kept the deployment {prefix} (its trace is in the DynamoDB tables "
                 f"{prefix}-*); save it with `yafdp export --backend {options.backend} --prefix {prefix}{where} --out DIR`"
                 f", then remove it with `yafdp destroy --backend {options.backend} --prefix {prefix}{where}`")

    own_server = options.backend == "moto" and endpoint_url is None
    custom = (options.bus or catalog.bus.kind) == "custom"
    try:
        if own_server:
            endpoint_url = stack.enter_context(MotoServer())
        bus_url = undelivered = None
        if custom and options.backend == "moto":  # moto has no Custom Event Bus: the one beside it, or one served here
            if found and found.get("url") == endpoint_url and found.get("bus_url"):
                bus_url = found["bus_url"]
                undelivered = functools.partial(undelivered_at, bus_url)
            else:
                served = stack.enter_context(serve_custom_event_bus(endpoint_url=endpoint_url, seed=options.seed))
                bus_url, undelivered = served.url, served.undelivered
        pollers = options.concurrency * len(catalog.services) if options.backend == "moto" else 0
        clients = make_clients(endpoint_url, bus_endpoint_url=bus_url, custom_bus=custom,
                               max_pool_connections=pool_for(pollers))
        stack.callback(teardown, clients)  # before deploying: a failed deploy is cleaned too
        setting_up = [True]  # until the bus is open, a failure destroys what was made
        created: list[str] = []
        echo(f"deploying the plan as {prefix}-… on {options.backend}"
             + (f" (the moto server at {endpoint_url})" if options.backend == "moto" and not own_server else "")
             + (f" (the Custom Event Bus served at {bus_url})" if bus_url else ""))
        plan = deploy(clients, catalog, backend=options.backend, prefix=prefix, catalog_dir=options.catalog_dir,
                      faults=options.faults, seed=options.seed, echo=created.append,
                      point_in_time_recovery=options.point_in_time_recovery, bus=options.bus)
        echo(f"deployed: {len(created)} changes" + (f" at {endpoint_url}" if endpoint_url else f" in {clients.region}"))
        rundb.set_info(db, prefix=prefix, region=clients.region)
        bus = open_deployed_bus(plan, catalog, world, clients, db, backend=options.backend, faults=options.faults,
                                seed=options.seed, teardown=stack.close,
                                concurrency=options.concurrency, undelivered=undelivered)
        setting_up[0] = False
        return bus
    except BaseException:
        stack.close()
        raise


BACKENDS: dict[str, Callable[..., Bus]] = {"local": open_local, "moto": open_deployed, "aws": open_deployed}


# What a served bus does where AWS is silent (yafdp.custom_event_bus.choices): a new bus is CREATING for half a
# second before it is ACTIVE, and a deleted one DELETING as long, so a client that does not wait for the
# EventBusActive waiter (and the waiter itself) sees the bus's asynchronous states as on AWS.
SERVED_CHOICES = Choices(bus_creating_seconds=0.5, bus_deleting_seconds=0.5)


class ServedCustomEventBus:
    """The Custom Event Bus served on AWS's wire protocol (``yafdp serve``): :attr:`url` is its endpoint (for
    ``boto3.client("eventbridgev2", endpoint_url=url)``), :attr:`targets_url` the endpoint (a moto server) of the
    account its subscribers deliver to (SQS queues, IAM roles), :attr:`service` the engine behind it. A context
    manager; :meth:`close` stops it (the moto server too, when it started one)."""

    def __init__(self, endpoint, targets_url: str, stack: ExitStack):
        self.endpoint, self.targets_url, self._stack = endpoint, targets_url, stack
        self.service, self.url = endpoint.service, endpoint.url

    def close(self) -> None:
        self._stack.close()

    def undelivered(self) -> int:
        """Events its subscribers have still to deliver (:meth:`~yafdp.custom_event_bus.service.CustomEventBusService.undelivered`)."""
        with self.endpoint.lock:
            return self.service.undelivered()

    def __enter__(self) -> "ServedCustomEventBus":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def undelivered_at(bus_url: str) -> int:
    """How many events the Custom Event Bus served at ``bus_url`` (by ``yafdp moto-server``, in its process) has
    still to deliver (:data:`yafdp.custom_event_bus.endpoint.UNDELIVERED_PATH`)."""
    import json
    import urllib.request

    from yafdp.custom_event_bus.endpoint import UNDELIVERED_PATH

    with urllib.request.urlopen(bus_url + UNDELIVERED_PATH, timeout=30) as answer:
        return int(json.loads(answer.read())["undelivered"])


def serve_custom_event_bus(*, endpoint_url: str | None = None, host: str = "127.0.0.1", port: int = 0,
                           region: str | None = None, choices: Choices = SERVED_CHOICES,
                           seed: int | str | None = None) -> ServedCustomEventBus:
    """Serve the Custom Event Bus engine on ``host``:``port`` (0: a free port) over the real-time clock, its
    subscribers delivering to the SQS queues of the moto server at ``endpoint_url`` (started in this process
    when None) with their delivery roles checked against that server's IAM roles
    (:class:`~yafdp.backends.aws.subscriber_targets.SqsSubscriberTargets`). The account is the one that server
    answers ``sts:GetCallerIdentity`` with; PutEvents is held to the bus's and the event groups' rates.

    Raises :class:`OSError` when the address cannot be listened on.

    (Run in ``tests/integration/test_served_custom_bus.py``: boto3's eventbridgev2 client against it.)
    """
    import secrets
    import threading

    from yafdp.backends.aws.clients import make_clients
    from yafdp.backends.aws.moto_server import MotoServer
    from yafdp.backends.aws.subscriber_targets import SqsSubscriberTargets
    from yafdp.custom_event_bus import CustomEventBusService, RealTimeClock
    from yafdp.custom_event_bus.endpoint import CustomEventBusEndpoint

    stack = ExitStack()
    try:
        if endpoint_url is None:
            endpoint_url = stack.enter_context(MotoServer())
        clients = make_clients(endpoint_url, region)
        lock = threading.Lock()
        clock = RealTimeClock(lock).start()
        stack.callback(clock.stop)
        service: CustomEventBusService | None = None
        targets = SqsSubscriberTargets(clients.sqs, clients.iam, clock,
                                       role_of=lambda arn: service.subscriber(arn).config.role_arn)
        stack.callback(targets.close)
        service = CustomEventBusService(clock, targets=targets, dead_letter_queues=targets.dead_letter,
                                        account=clients.account(), region=clients.region, choices=choices,
                                        enforce_quotas=True, seed=secrets.token_hex(8) if seed is None else seed)
        endpoint = stack.enter_context(CustomEventBusEndpoint(service, lock, host=host, port=port))
        return ServedCustomEventBus(endpoint, endpoint_url, stack)
    except BaseException:
        stack.close()
        raise


def refuse_unsupported(options: RunOptions, bus_kind: str = "classic") -> TimingModel | None:
    """Refuse, before anything is touched, options the chosen backend cannot run; the local backend's timing
    (its latency profile loaded, for a bus of ``bus_kind``), None for a deployed one.

    Raises :class:`~yafdp.errors.RefusedError`, or the profile's own error when it does not load;
    :class:`~yafdp.backends.aws.clients.AwsSetupError` for ``aws`` without a region or credentials;
    :class:`ModuleNotFoundError` for a deployed backend without yafdp's aws extra (boto3, moto).
    """
    if options.backend not in BACKENDS:
        raise RefusedError(f"backend must be one of {tuple(BACKENDS)}, got {options.backend!r}")
    if options.bus == "custom" and options.style == "orchestration":
        raise RefusedError("--bus chooses the bus the choreography's events travel on; the orchestration (--style "
                           "orchestration) has no bus: leave --bus out")
    if options.bus == "custom" and options.store == "file":
        raise RefusedError("a Custom Event Bus run keeps its bus in memory and cannot be resumed: --store file is for "
                           "the classic bus (leave --store out, or use --bus classic)")
    if options.backend == "local":
        return timing_for(options.latency_model, seed=options.seed, quota_scale=options.quota_scale,
                          invocation="direct" if options.style == "orchestration" else "queue", bus_kind=bus_kind)
    require("aws")
    from yafdp.backends.aws.deployment import SETTINGS

    settings = SETTINGS[options.backend]
    if options.latency_model != "none" or options.style != "choreography":
        raise RefusedError(f"the {options.backend} backend runs the choreography and measures its times; latency "
                           "models and the orchestration style run on the local backend (--backend local)")
    if options.store != "memory":
        raise RefusedError(f"--store {options.store} is for the local backend (resumable runs); the {options.backend} "
                           "backend keeps state in DynamoDB and writes run.db at the end")
    if options.backend == "aws":  # no region or no credentials: refused before the run folder is touched
        from yafdp.backends.aws.clients import aws_session

        aws_session()
    if options.keep and options.backend == "moto":
        from yafdp.backends.aws.moto_server import running_server

        if running_server() is None:
            raise RefusedError("--keep on moto needs a moto server that outlives the run: start one with "
                               "`yafdp moto-server` (in another terminal), then run again")
    unsupported = [name for name, rate in options.faults.to_dict().items()
                   if name.endswith("_rate") and rate and name not in settings.allowed_faults]
    if unsupported:
        raise RefusedError(f"the {options.backend} backend cannot inject {', '.join(unsupported)}; it can inject "
                           f"{', '.join(settings.allowed_faults)} (the local backend injects them all)")
    return None


def open_bus(options: RunOptions, catalog: Catalog, world: Any, db, *, session: int = 0,
             timing: TimingModel | None = None, echo: Callable[[str], None] = _stderr) -> Bus:
    """The bus of ``options.backend`` for this run, over the run database ``db``.

    Raises :class:`~yafdp.errors.RefusedError` for an unknown backend or options it cannot run.
    """
    factory = BACKENDS.get(options.backend)
    if factory is None:
        raise RefusedError(f"backend must be one of {tuple(BACKENDS)}, got {options.backend!r}")
    return factory(options, catalog, world, db, session=session, timing=timing, echo=echo)
