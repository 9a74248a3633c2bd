"""What a run is asked to do: the options of ``yafdp run``, checked before anything starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from yafdp.errors import RefusedError
from yafdp.runtime.faults import Faults

if TYPE_CHECKING:
    from yafdp.catalog import Catalog

STORES = ("memory", "file")
STYLES = ("choreography", "orchestration")
MAX_ORDERS = 10_000_000  # every request is stored in run.db before the first is sent
# Batches in hand at once per service queue on moto (--concurrency), each handled in a thread of this process
# with a connection of its own (yafdp.backends.aws.clients.pool_for). Lambda's SQS event source mapping goes
# further on AWS (ScalingConfig.MaximumConcurrency, 2 to 1,000, AWS Lambda API Reference), but here every thread
# shares one interpreter with the moto server: 50 per queue, 300 for six services, is as far as a run is tested
# (tests/integration/test_aws_concurrency.py runs it).
MAX_CONCURRENCY = 50


@dataclass(frozen=True)
class RunOptions:
    """The options of one run; :class:`~yafdp.errors.RefusedError` names the first that is wrong.

    Which backends exist is :mod:`yafdp.runs.bootstrap`'s to say (it checks ``backend``).
    """

    orders: int = 20
    seed: int = 0
    out: Path = Path("runs/latest")
    store: str = "memory"
    # business outcome rates by name, over the catalog's defaults (its saga.py's OUTCOME_RATES), e.g.
    # {"delivery_failure": 0.2}; checked against the catalog when the run starts
    rates: Mapping[str, float] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    arrival_rate: float = 50.0
    catalog_dir: Path | None = None
    exclude_services: tuple[str, ...] = ()  # e.g. ("loyalty",): the platform before that service existed
    orders_file: Path | None = None  # a JSON list of order requests to place instead of generated ones
    backend: str = "local"  # or "moto" / "aws": see yafdp.backends.aws.deployment
    keep: bool = False  # aws, moto: leave the deployment in place after the run (destroy it yourself)
    latency_model: str = "none"  # "none": measured wall-clock; else a profile in data/latency/ (or a file)
    style: str = "choreography"  # or "orchestration": the same flow run by a Step Functions state machine
    workflow: str = "standard"  # the orchestration's Step Functions workflow type: standard or express
    quota_scale: float = 1.0  # the simulated account's quotas multiplied by this (to reach them with fewer orders)
    # Which kind of EventBridge bus: "classic" (rules and targets) or "custom" (the Custom Event Bus); None: the
    # catalog's (bus.json's "kind").
    bus: str | None = None
    concurrency: int = 4  # moto: batches in hand at once per service queue, each handled in a thread of its own
    point_in_time_recovery: bool = False  # moto/aws: continuous backups of the service tables (off for a short run)
    # a catalog built in memory (yafdp.catalog.inline.add_service) instead of the one in catalog_dir
    catalog: Catalog | None = field(default=None, repr=False, compare=False)
    # Replace a run already in ``out``. The workbook re-runs into its build folder, so the library does by
    # default; ``yafdp run`` refuses unless --force (see yafdp.runs.folder).
    overwrite: bool = True

    def __post_init__(self):
        from yafdp.catalog.model import BUS_KINDS  # here, not above: the command line reads this module's limits
        from yafdp.simulation.step_functions import WORKFLOWS

        if not isinstance(self.rates, Mapping):
            raise RefusedError(f"rates must be a mapping of outcome name to probability, got {self.rates!r}")
        object.__setattr__(self, "rates", MappingProxyType(dict(self.rates)))
        if self.store not in STORES:
            raise RefusedError(f"store must be one of {STORES}, got {self.store!r}")
        if self.style not in STYLES:
            raise RefusedError(f"style must be one of {STYLES}, got {self.style!r}")
        if self.bus is not None and self.bus not in BUS_KINDS:
            raise RefusedError(f"bus must be one of {BUS_KINDS}, got {self.bus!r}")
        if self.workflow not in WORKFLOWS:
            raise RefusedError(f"workflow must be one of {WORKFLOWS}, got {self.workflow!r}")
        if self.workflow != "standard" and self.style != "orchestration":
            raise RefusedError(f"workflow {self.workflow!r} is the state machine's type: it needs style 'orchestration' "
                               "(--style orchestration); the choreography has no workflow")
        if (isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int)
                or not 1 <= self.concurrency <= MAX_CONCURRENCY):
            raise RefusedError(f"concurrency must be a whole number of batches in hand per queue, from 1 to {MAX_CONCURRENCY}, "
                               f"got {self.concurrency!r}")
        if not 0 <= self.orders <= MAX_ORDERS:
            raise RefusedError(f"orders must be from 0 to {MAX_ORDERS:,}, got {self.orders}")
        for name in ("arrival_rate", "quota_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise RefusedError(f"{name} must be a positive finite number, got {value}")

    def describe(self) -> dict:
        """The options as ``run_info`` and ``summary.json`` record them (plain JSON values)."""
        return {
            "backend": self.backend, "store": self.store, "seed": self.seed,
            # --orders does not apply to an orders file: its count is the summary's orders.requested
            "orders_requested": None if self.orders_file else self.orders,
            "rates": dict(self.rates), "faults": self.faults.to_dict(), "arrival_rate": self.arrival_rate,
            "latency_model": self.latency_model, "times": self.times(), "quota_scale": self.quota_scale,
            "concurrency": self.concurrency, "style": self.style, "bus": self.bus, "workflow": self.workflow if self.style == "orchestration" else None,
            "catalog_dir": str(self.catalog_dir) if self.catalog_dir else None,
            "catalog_in_memory": self.catalog is not None,
            "exclude_services": list(self.exclude_services),
            "orders_file": str(self.orders_file) if self.orders_file else None,
        }

    def times(self) -> str:
        """What the run's recorded times are."""
        if self.latency_model == "none":
            return "measured wall-clock seconds since the run started"
        return f"simulated seconds on a virtual clock, latency model {self.latency_model!r}"


