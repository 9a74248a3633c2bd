"""The account's quotas the latency model enforces (``data/quotas.json``, each with its AWS source) and the
token bucket that applies a rate limit as AWS does."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

from yafdp.errors import RefusedError

UNSCALED_QUOTAS = ("lambda_new_environments_per_10_seconds", "sqs_event_source_initial_concurrency",
                   "sqs_event_source_scale_up_per_minute")

# How far the quotas scale (--quota-scale): an account a thousand times smaller or larger. Smaller, a throughput
# quota of a few requests per second (Step Functions' 300 starts per second at 0.001: 0.3) already keeps a long
# run waiting; far smaller, the waits would take the simulated clock past any representable time.
QUOTA_SCALE_RANGE = (0.001, 1000.0)


@dataclass(frozen=True)
class Quotas:
    """The account's limits the model enforces (see ``data/quotas.json`` for what each is and its source)."""

    eventbridge_put_events_per_second: float
    eventbridge_invocations_per_second: float
    custom_event_bus_events_per_second: float
    custom_event_bus_group_events_plus_kb_per_second: float
    lambda_concurrent_executions: int
    lambda_new_environments_per_10_seconds: int
    sqs_event_source_initial_concurrency: int
    sqs_event_source_scale_up_per_minute: float
    sqs_event_source_maximum_concurrency: int
    step_functions_standard_transitions_per_second: float
    step_functions_standard_transitions_burst: float
    step_functions_standard_starts_per_second: float
    step_functions_standard_starts_burst: float
    step_functions_express_starts_per_second: float
    step_functions_express_starts_burst: float

    def scaled(self, factor: float) -> "Quotas":
        """The account's throughput and concurrency quotas multiplied by ``factor`` (a smaller account, whose
        limits a laptop reaches with fewer orders); how Lambda creates environments and how the SQS event
        source mapping scales up stay as they are.

        Examples
        --------
        >>> load_quotas().scaled(0.01).lambda_concurrent_executions
        10
        """
        low, high = QUOTA_SCALE_RANGE
        if not low <= factor <= high:
            raise RefusedError(f"the scale factor must be from {low:g} to {high:g}, got {factor}")
        changes = {}
        for f in fields(self):
            if f.name in UNSCALED_QUOTAS:
                continue
            value = getattr(self, f.name) * factor
            changes[f.name] = max(1, round(value)) if isinstance(getattr(self, f.name), int) else value
        return replace(self, **changes)


def load_quotas(path: str | Path | None = None) -> Quotas:
    """Load ``data/quotas.json`` (or another quotas file of the same shape).

    Examples
    --------
    >>> load_quotas().eventbridge_put_events_per_second
    10000.0
    """
    from yafdp.catalog.errors import CatalogError
    from yafdp.catalog.loader import read_json  # here: the command line reads QUOTA_SCALE_RANGE, and no file
    from yafdp.shipped import QUOTAS_FILE
    from yafdp.simulation.profiles import LatencyProfileError

    file = Path(path) if path is not None else QUOTAS_FILE
    try:
        quotas = read_json(file)["quotas"]
    except CatalogError as exc:
        raise LatencyProfileError(exc.file, exc.key, exc.problem) from None
    except (KeyError, TypeError) as exc:
        raise LatencyProfileError(file, "quotas", f"cannot read the quotas: {exc}") from None
    values = {}
    for f in fields(Quotas):
        burst = f.name.endswith("_burst")  # a token bucket's size sits next to its refill rate
        key = f.name.removesuffix("_burst") + "_per_second" if burst else f.name
        entry = quotas.get(key)
        if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
            raise LatencyProfileError(file, f"quotas.{key}", "is missing or has no value and source")
        raw = entry.get("burst", entry["value"]) if burst else entry["value"]
        values[f.name] = int(raw) if f.type == "int" else float(raw)
    return Quotas(**values)



class TokenBucket:
    """A throttle as AWS applies it (``rate`` per second, bursts up to ``burst``), as a first-come queue (the generic
    cell rate algorithm): :meth:`earliest` says when a request made at ``t`` could be accepted, :meth:`take` accepts
    one at a time at or after that, and :meth:`admit` does both (a caller that waits for as long as it takes).

    Examples
    --------
    >>> bucket = TokenBucket(rate=2.0, burst=2)
    >>> [bucket.admit(0.0) for _ in range(4)], bucket.throttled
    ([0.0, 0.0, 0.5, 1.0], 2)
    >>> bucket.earliest(0.0)  # a fifth request at 0 could go at 1.5 s; asking does not take a token
    1.5
    """

    __slots__ = ("interval", "tolerance", "ready", "throttled", "delay")

    def __init__(self, rate: float, burst: float | None = None):
        self.interval = 1.0 / rate
        self.tolerance = (max(burst or rate, 1.0) - 1.0) * self.interval
        self.ready = -math.inf  # the "theoretical arrival time" of the generic cell rate algorithm
        self.throttled, self.delay = 0, 0.0

    def earliest(self, t: float) -> float:
        """When a request made at ``t`` (seconds) could be accepted: ``t`` itself unless the bucket is empty then."""
        at = self.ready - self.tolerance
        return at if at > t else t

    def take(self, t: float, asked: float | None = None) -> float:
        """Accept a request at ``t`` (no earlier than :meth:`earliest` of it); ``asked``: when it was first made,
        if earlier (it counts as throttled, and the wait in :attr:`delay`). Returns ``t``."""
        if asked is not None and t > asked:
            self.throttled += 1
            self.delay += t - asked
        ready = self.ready
        self.ready = (ready if ready > t else t) + self.interval
        return t

    def admit(self, t: float, within: float = math.inf) -> float | None:
        """Accept a request made at ``t`` as soon as the bucket allows (waiting in line, first come first served)
        and return when; None, taking nothing, when that would be more than ``within`` seconds after ``t``."""
        ready = self.ready
        at = ready - self.tolerance
        if at <= t:
            self.ready = (ready if ready > t else t) + self.interval
            return t
        if at - t > within:
            return None
        self.throttled += 1
        self.delay += at - t
        self.ready = ready + self.interval  # ready >= at > t
        return at
