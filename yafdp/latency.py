"""Simulated AWS time for the local backend: hop latencies, cold starts, concurrency and quotas on a virtual clock.

A latency profile (``data/latency/<name>.json``) gives each hop's latency as cited quantiles; ``data/quotas.json``
gives the throughput and concurrency limits. :class:`SimulatedTiming` implements the bus's timing hooks (see
:class:`yafdp.bus.MeasuredTiming`) on virtual time, so 100,000 orders simulate in well under a minute, and
:func:`fit_profile` calibrates a profile from a real run's ``run.db``.
"""

from __future__ import annotations

import copy
import heapq
import json
import math
import random
import re
import statistics
from bisect import bisect_right
from dataclasses import dataclass, fields, replace
from pathlib import Path
from statistics import NormalDist

import fastjsonschema

from yafdp import store
from yafdp.catalog import DEFAULT_DATA_DIR, CatalogError, _read_json, _shape_check

DEFAULT_PROFILE = "aws-eu-west-1"
PROFILES_DIR = DEFAULT_DATA_DIR / "latency"
QUOTAS_FILE = DEFAULT_DATA_DIR / "quotas.json"
ENTRIES_PER_PUT_EVENTS = 10
QUANTILE_KEY = re.compile(r"^p(\d{1,2}(\.\d+)?)$")
FITTED_QUANTILES = (10, 50, 90, 99)


class LatencyProfileError(CatalogError):
    """A latency profile or the quotas file is missing or malformed; says which file and key."""


# ---------------------------------------------------------------- distributions


class Distribution:
    """A latency given by some of its quantiles (``{"p50": 148, "p99": 387}``, milliseconds), sampled in seconds.

    Between two given quantiles the logarithm of the latency is linear in the normal score, beyond the outer
    ones it continues the nearest segment: exactly a lognormal when the quantiles come from one, and every
    given quantile is reproduced. One quantile (or all equal) makes a constant. Sampling interpolates a
    table of the quantile function (the extreme 1/1024 of each tail is computed exactly), which is fast.

    Examples
    --------
    >>> d = Distribution({"p50": 148, "p90": 241, "p99": 387})
    >>> round(d.quantile(0.5) * 1000), round(d.quantile(0.99) * 1000)
    (148, 387)
    >>> Distribution({"p50": 0}).sample(random.Random(1))
    0.0
    """

    __slots__ = ("quantiles_ms", "constant", "_z", "_log", "_slope", "_table")
    TABLE = 1024

    def __init__(self, quantiles_ms: dict[str, float]):
        points = sorted((_level(key), float(value)) for key, value in quantiles_ms.items())
        if not points:
            raise ValueError("a distribution needs at least one quantile such as p50")
        values = [v for _, v in points]
        if any(b < a for a, b in zip(values, values[1:])):
            raise ValueError(f"quantiles must not decrease with the level: {quantiles_ms}")
        self.quantiles_ms = {f"p{_label(q)}": v for q, v in points}
        self.constant = values[0] / 1000 if values[0] == values[-1] else None
        if self.constant is None and values[0] <= 0:
            raise ValueError(f"a varying latency must be positive at every quantile: {quantiles_ms}")
        self._z = [NormalDist().inv_cdf(q / 100) for q, _ in points]
        self._log = [math.log(v / 1000) for v in values] if self.constant is None else []
        self._slope = [(b - a) / (zb - za) for a, b, za, zb in zip(self._log, self._log[1:], self._z, self._z[1:])]
        n = self.TABLE
        self._table = [self.quantile(k / n) for k in range(1, n)] if self.constant is None else []

    def sample(self, rng: random.Random) -> float:
        if self.constant is not None:
            return self.constant
        position = rng.random() * self.TABLE
        k = int(position)
        if 1 <= k < self.TABLE - 1:  # between the table's quantiles k/n and (k+1)/n
            table = self._table
            low = table[k - 1]
            return low + (table[k] - low) * (position - k)
        return self.quantile(min(max(position / self.TABLE, 1e-12), 1 - 1e-12))

    def quantile(self, q: float) -> float:
        """The latency (seconds) at probability ``q`` (0 < q < 1)."""
        if self.constant is not None:
            return self.constant
        z = NormalDist().inv_cdf(q)
        zs = self._z
        i = min(max(bisect_right(zs, z), 1), len(zs) - 1) - 1
        return math.exp(self._log[i] + self._slope[i] * (z - zs[i]))


def _level(key: str) -> float:
    match = QUANTILE_KEY.match(key)
    if not match or not 0 < float(match.group(1)) < 100:
        raise ValueError(f"{key!r} is not a quantile name such as p50 or p99.9")
    return float(match.group(1))


def _label(level: float) -> str:
    return str(int(level)) if level == int(level) else str(level)


# ---------------------------------------------------------------- profiles and quotas

_SOURCE = {"type": "object"}
_DISTRIBUTION = {
    "type": "object",
    "patternProperties": {QUANTILE_KEY.pattern: {"type": "number", "minimum": 0}},
    "properties": {"what": {"type": "string"}, "source": _SOURCE, "assumption": {"type": "string"}},
    "additionalProperties": False,
}
REQUIRED_HOPS = ("eventbridge_delivery", "sqs_polling", "step_functions_standard_task", "step_functions_express_task",
                 "lambda_runtime_init", "lambda_package_init", "handler")
_PROFILE_SHAPE = fastjsonschema.compile({
    "type": "object",
    "required": ["name", "description", "distributions_ms", "lambda"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "region": {"type": "string"},
        "distributions_ms": {"type": "object", "required": list(REQUIRED_HOPS), "additionalProperties": _DISTRIBUTION},
        "handler_by_service": {"type": "object", "additionalProperties": _DISTRIBUTION},
        "lambda": {
            "type": "object",
            "required": ["idle_timeout_seconds"],
            "properties": {
                "idle_timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
                "reserved_concurrency": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                "esm_scale_down_idle_seconds": {"type": "number", "minimum": 0},
            },
        },
        "fitted_from": {"type": "object"},
    },
})


@dataclass(frozen=True)
class LatencyProfile:
    """A named set of hop latencies and Lambda settings, as loaded from ``data/latency/<name>.json``."""

    name: str
    document: dict
    hops: dict[str, Distribution]
    handler_by_service: dict[str, Distribution]
    idle_timeout: float
    reserved_concurrency: dict[str, int]
    esm_scale_down_idle: float

    def handler(self, service: str) -> Distribution:
        return self.handler_by_service.get(service, self.hops["handler"])


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> LatencyProfile:
    """Load a latency profile: a name from ``data/latency/`` or the path of a profile file (e.g. a fitted one).

    Examples
    --------
    >>> profile = load_profile("aws-eu-west-1")
    >>> round(profile.hops["eventbridge_delivery"].quantile(0.5) * 1000)
    148
    """
    file = _profile_file(name_or_path)
    if not file.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.json")))
        raise LatencyProfileError(file, "", f"no such latency profile; the shipped ones are {known} (or 'none')")
    document = _read_json(file)
    _shape_check(file, document, _PROFILE_SHAPE)

    def distribution(key: str, spec: dict) -> Distribution:
        if "source" not in spec and "assumption" not in spec:
            raise LatencyProfileError(file, key, "needs a source (who measured it, where, when) or an assumption "
                                                 "(why it is not measured)")
        try:
            return Distribution({k: v for k, v in spec.items() if QUANTILE_KEY.match(k)})
        except ValueError as exc:
            raise LatencyProfileError(file, key, str(exc)) from None

    lam = document["lambda"]
    return LatencyProfile(
        name=document["name"], document=document,
        hops={k: distribution(f"distributions_ms.{k}", v) for k, v in document["distributions_ms"].items()},
        handler_by_service={k: distribution(f"handler_by_service.{k}", v)
                            for k, v in document.get("handler_by_service", {}).items()},
        idle_timeout=float(lam["idle_timeout_seconds"]),
        reserved_concurrency=dict(lam.get("reserved_concurrency", {})),
        esm_scale_down_idle=float(lam.get("esm_scale_down_idle_seconds", 60.0)),
    )


def _profile_file(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if text.endswith(".json") or "/" in text or "\\" in text:
        return Path(text)
    return PROFILES_DIR / f"{text}.json"


UNSCALED_QUOTAS = ("lambda_new_environments_per_10_seconds", "sqs_event_source_initial_concurrency",
                   "sqs_event_source_scale_up_per_minute")


@dataclass(frozen=True)
class Quotas:
    """The account's limits the model enforces (see ``data/quotas.json`` for what each is and its source)."""

    eventbridge_put_events_per_second: float
    eventbridge_invocations_per_second: float
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
        if factor <= 0:
            raise ValueError(f"the scale factor must be positive, got {factor}")
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
    file = Path(path) if path is not None else QUOTAS_FILE
    try:
        quotas = json.loads(file.read_text(encoding="utf-8"))["quotas"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
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


# ---------------------------------------------------------------- the model


class TokenBucket:
    """A throttle as AWS applies it (``rate`` per second, bursts up to ``burst``), as a first-come queue:
    :meth:`admit` says when a request made at ``t`` is accepted (the SDK's retries until then are not modelled).
    """

    __slots__ = ("interval", "tolerance", "ready", "throttled", "delay")

    def __init__(self, rate: float, burst: float | None = None):
        self.interval = 1.0 / rate
        self.tolerance = (max(burst or rate, 1.0) - 1.0) * self.interval
        self.ready = -math.inf  # the "theoretical arrival time" of the generic cell rate algorithm
        self.throttled, self.delay = 0, 0.0

    def admit(self, t: float) -> float:
        at = self.ready - self.tolerance
        if at > t:
            self.throttled += 1
            self.delay += at - t
            t = at
        self.ready = max(self.ready, t) + self.interval
        return t


class _Function:
    """One Lambda function's execution environments as the model sees them."""

    __slots__ = ("busy", "idle", "promised", "ramp_start", "last_busy", "creations", "peak", "cap", "handler")

    def __init__(self, creations: TokenBucket, cap: int, handler: Distribution):
        self.busy: list[float] = []  # heap: when each environment in use is free again (all its work assigned)
        self.idle: list[float] = []  # stack: when each idle environment became free, the most recent on top
        self.promised: list[tuple[float, float]] = []  # heap: (start, duration) promised to deliveries that wait
        self.ramp_start: float | None = None  # when the SQS event source mapping started scaling up
        self.last_busy = 0.0
        self.creations = creations
        self.peak = 0
        self.cap = cap  # the most it may ever run at once: reserved (or account) concurrency, the mapping's maximum
        self.handler = handler

    def release(self, t: float) -> int:
        """Environments whose work ended by ``t`` become idle; returns how many."""
        busy, idle = self.busy, self.idle
        count = 0
        while busy and busy[0] <= t:
            idle.append(heapq.heappop(busy))
            count += 1
        return count


class SimulatedTiming:
    """The bus's timing hooks on a virtual clock, with AWS latencies, Lambda cold starts and quotas.

    Each delivery waits for its hop (EventBridge to the queue, then the event source mapping's polling), then
    for an execution environment of its service's function: a warm idle one, a new one after a cold start
    (runtime and package init) while the function's concurrency allows it, or the first one to finish. The
    account's concurrency, the SQS event source mapping's scaling (5 batches, +300 a minute, at most 1,000),
    reserved concurrency, the function scaling rate, and EventBridge's PutEvents and invocation rates bound it.
    Environments idle longer than the profile's idle timeout are reclaimed. Recorded times are virtual seconds.

    ``invocation`` is ``"queue"`` for the choreography (SQS event source mapping in front of every function) and
    ``"direct"`` when an orchestrator invokes the functions. ``slot`` decides where a delivery runs and draws
    its duration; the ``duration`` and ``book`` calls that follow it return and confirm that decision. A
    delivery that must wait is promised the start of the first environment to free up (first come, first
    served, as a queue with a fixed number of servers), so it is re-queued once, not once per completion.

    Examples
    --------
    >>> timing = SimulatedTiming(load_profile(), seed=1)
    >>> timing.slot("payment", 0.0) > 0.2  # the first call of a function waits for a cold start
    True
    """

    simulated = True

    def __init__(self, profile: LatencyProfile, quotas: Quotas | None = None, *, seed: int = 0,
                 invocation: str = "queue"):
        if invocation not in ("queue", "direct"):
            raise ValueError(f"invocation must be 'queue' or 'direct', got {invocation!r}")
        self.profile = profile
        self.quotas = q = quotas or load_quotas()
        self.name = profile.name
        self.invocation = invocation
        self._queued = invocation == "queue"
        self._rng = random.Random(f"{seed}:latency")
        hops = profile.hops
        self._bus, self._poll = hops["eventbridge_delivery"], hops["sqs_polling"]
        self._runtime_init, self._package_init = hops["lambda_runtime_init"], hops["lambda_package_init"]
        self._init_estimate = self._runtime_init.quantile(0.5) + self._package_init.quantile(0.5)
        self._idle_timeout = profile.idle_timeout
        self._account = q.lambda_concurrent_executions
        self._ramp_first = q.sqs_event_source_initial_concurrency
        self._ramp_per_second = q.sqs_event_source_scale_up_per_minute / 60
        # Only the choreography goes through EventBridge; an orchestrator's services publish nothing on a bus.
        self._put_events = TokenBucket(q.eventbridge_put_events_per_second) if self._queued else None
        self._invocations = TokenBucket(q.eventbridge_invocations_per_second) if self._queued else None
        self._functions: dict[str, _Function] = {}
        self._running = 0  # environments in use across the account (as of the last release)
        self._pending = 0.0
        self.cold_starts = self.warm_starts = self.waits = self.account_full = 0

    # -- the hooks the bus calls

    def now(self, virtual: float) -> float:
        return virtual

    def hop_delay(self, rule, rng: random.Random) -> float:
        return self._bus.sample(rng) + self._poll.sample(rng)

    def admit(self, at: float, entries: int) -> float:
        """When a PutEvents call of ``entries`` entries made at ``at`` is accepted (one request per 10 entries)."""
        if self._put_events is None:
            return at
        for _ in range(max(1, -(-entries // ENTRIES_PER_PUT_EVENTS))):
            at = self._put_events.admit(at)
        return at

    def duration(self, service: str, rng: random.Random) -> float:
        return self._pending

    def book(self, service: str, start: float, end: float) -> None:
        """Nothing to do: :meth:`slot` already assigned the environment and the time it is busy."""

    def slot(self, service: str, t: float) -> float:
        """The virtual time the delivery asking at ``t`` starts its handler; the model reserves it."""
        fn = self._functions.get(service) or self._function(service)
        promised = fn.promised
        if promised and promised[0][0] <= t:  # a delivery coming back for the start it was promised
            self._pending = heapq.heappop(promised)[1]
            return t
        asked = t
        if self._invocations is not None:
            t = self._invocations.admit(t)
        busy, idle = fn.busy, fn.idle
        if busy and busy[0] <= t:
            self._running -= fn.release(t)
        if idle and t - idle[-1] > self._idle_timeout:
            idle.clear()  # the most recently used is too old: every idle environment was reclaimed
        room = len(busy) < self._limit(fn, t)
        if room and not (self._running < self._account or self._account_has_room(t)):
            room = False
            self.account_full += 1
        if room and idle:
            idle.pop()
            self.warm_starts += 1
            return self._assign(fn, asked, t)
        if room:
            return self._cold(fn, asked, t)
        self.waits += 1
        if not busy:  # the account is full of other functions' work: ask again when some of it ends
            return min(other.busy[0] for other in self._functions.values() if other.busy)
        start = heapq.heappop(busy)
        self._running -= 1
        if self._queued and fn.ramp_start is None:
            fn.ramp_start = t  # messages are waiting: the event source mapping starts scaling up
        grow_at = self._next_capacity(fn, t)
        if grow_at is not None and grow_at + self._init_estimate < start and self._account_has_room(t):
            heapq.heappush(busy, start)
            self._running += 1
            return self._cold(fn, asked, grow_at)
        self.warm_starts += 1
        return self._assign(fn, asked, start)

    # -- helpers

    def _function(self, service: str) -> _Function:
        q = self.quotas
        creations = TokenBucket(q.lambda_new_environments_per_10_seconds / 10, q.lambda_new_environments_per_10_seconds)
        reserved = self.profile.reserved_concurrency.get(service)
        cap = min(self._account, reserved if reserved is not None else self._account)
        if self._queued:
            cap = min(cap, q.sqs_event_source_maximum_concurrency)
        fn = self._functions[service] = _Function(creations, cap, self.profile.handler(service))
        return fn

    def _limit(self, fn: _Function, t: float) -> int:
        """How many environments the function may run at ``t``: its cap, and the SQS mapping's scaling so far."""
        if not self._queued:
            return fn.cap
        if fn.ramp_start is None:
            return min(fn.cap, self._ramp_first)
        if not fn.busy and not fn.promised and t - fn.last_busy > self.profile.esm_scale_down_idle:
            fn.ramp_start = None  # quiet again: the mapping scales back to its first batches
            return min(fn.cap, self._ramp_first)
        return min(fn.cap, self._ramp_first + int(self._ramp_per_second * (t - fn.ramp_start)))

    def _next_capacity(self, fn: _Function, t: float) -> float | None:
        """When the event source mapping may run one more batch than it has now (None: not before its cap)."""
        if not self._queued or fn.ramp_start is None:
            return None
        wanted = len(fn.busy) + 2  # the one taken for this delivery, and one more
        if wanted > fn.cap:
            return None
        return max(t, fn.ramp_start + (wanted - self._ramp_first) / self._ramp_per_second)

    def _account_has_room(self, t: float) -> bool:
        """Whether the account runs fewer environments than its concurrency quota at ``t``."""
        for f in self._functions.values():  # free what ended before t everywhere, then count
            self._running -= f.release(t)
        return self._running < self._account

    def _cold(self, fn: _Function, asked: float, t: float) -> float:
        created = fn.creations.admit(t)
        self.cold_starts += 1
        ready = created + self._runtime_init.sample(self._rng) + self._package_init.sample(self._rng)
        return self._assign(fn, asked, ready)

    def _assign(self, fn: _Function, asked: float, start: float) -> float:
        duration = fn.handler.sample(self._rng)
        end = start + duration
        busy = fn.busy
        heapq.heappush(busy, end)
        self._running += 1
        if end > fn.last_busy:
            fn.last_busy = end
        if len(busy) > fn.peak:
            fn.peak = len(busy)
        if start <= asked:
            self._pending = duration
            return asked
        heapq.heappush(fn.promised, (start, duration))
        return start

    def report(self) -> dict:
        """What the model did: cold and warm starts, waits for an environment, throttling, peak concurrency."""
        return {
            "latency_model": self.name,
            "invocation": self.invocation,
            "cold_starts": self.cold_starts,
            "warm_starts": self.warm_starts,
            "waited_for_an_environment": self.waits,
            "put_events_throttled": self._put_events.throttled if self._queued else 0,
            "put_events_throttle_delay_s": round(self._put_events.delay, 3) if self._queued else 0.0,
            "invocations_throttled": self._invocations.throttled if self._queued else 0,
            "invocations_throttle_delay_s": round(self._invocations.delay, 3) if self._queued else 0.0,
            "account_concurrency_full": self.account_full,
            "peak_concurrency": {name: fn.peak for name, fn in sorted(self._functions.items())},
        }


def timing_for(latency_model: str, *, seed: int = 0, invocation: str = "queue", quota_scale: float = 1.0):
    """The timing a run uses: measured wall-clock for ``"none"``, else :class:`SimulatedTiming` with the profile.

    Examples
    --------
    >>> timing_for("none").simulated, timing_for("aws-eu-west-1", quota_scale=0.5).quotas.lambda_concurrent_executions
    (False, 500)
    """
    if latency_model in (None, "", "none"):
        from yafdp.bus import MeasuredTiming

        return MeasuredTiming()
    quotas = load_quotas()
    if quota_scale != 1.0:
        quotas = quotas.scaled(quota_scale)
    return SimulatedTiming(load_profile(latency_model), quotas, seed=seed, invocation=invocation)


# ---------------------------------------------------------------- calibration


def fit_profile(run_db: str | Path, base: str | Path = DEFAULT_PROFILE, name: str | None = None) -> dict:
    """A latency profile (as a JSON document) fitted to the deliveries of a real run's ``run.db``.

    The hop (from an event's publication to its handler starting, first attempts that succeeded) replaces the
    base profile's EventBridge delivery, with SQS polling folded into it, for a choreography run, or the Step
    Functions task latency of the run's workflow for an orchestrated one; handler times (handler start to end)
    replace the handler distribution, overall and per service. Everything else comes from ``base``. Measured
    hops include the cold starts that happened during the run.

    Examples
    --------
    >>> import tempfile
    >>> from yafdp.runs import RunOptions, run_saga
    >>> out = Path(tempfile.mkdtemp())
    >>> _ = run_saga(RunOptions(orders=30, seed=2, out=out, latency_model="aws-eu-west-1"))
    >>> sorted(fit_profile(out / "run.db")["handler_by_service"])[:2]
    ['delivery', 'loyalty']
    """
    path = Path(run_db)
    path = path / "run.db" if path.is_dir() else path
    document = copy.deepcopy(load_profile(base).document)
    with store.open_run(path) as db:
        info = store.get_info(db)
        rows = db.execute("SELECT d.target, d.delivered_at - e.published_at, d.finished_at - d.delivered_at"
                          " FROM deliveries d JOIN events e USING (event_id)"
                          " WHERE d.outcome = 'ok' AND d.attempt = 1").fetchall()
    if len(rows) < 20:
        raise ValueError(f"{path} has {len(rows)} successful first deliveries; fitting needs at least 20")
    orchestrated = info.get("style") == "orchestration"
    fitted = {"file": str(path), "deliveries": len(rows), "backend": info.get("backend"),
              "latency_model": info.get("latency_model"), "style": info.get("style", "choreography")}
    source = {"fitted_from": str(path), "deliveries": len(rows), "backend": info.get("backend")}
    hops = document["distributions_ms"]
    if orchestrated:
        workflow = info.get("workflow", "standard")
        hops[f"step_functions_{workflow}_task"] = _fitted([r[1] for r in rows], source,
                                                          "Step Functions task latency measured in a run")
    else:
        hops["eventbridge_delivery"] = _fitted([r[1] for r in rows], source,
                                               "publication to handler start measured in a run (SQS polling included)")
        hops["sqs_polling"] = {"p50": 0, "source": source, "what": "included in eventbridge_delivery"}
    hops["handler"] = _fitted([r[2] for r in rows], source, "handler time measured in a run")
    by_service: dict[str, list[float]] = {}
    for target, _, processing in rows:
        by_service.setdefault(target, []).append(processing)
    document["handler_by_service"] = {service: _fitted(values, source, f"{service} handler time measured in a run")
                                      for service, values in sorted(by_service.items()) if len(values) >= 20}
    document["name"] = name or f"fitted-{path.parent.name}"
    document["description"] = f"Fitted by yafdp.latency.fit_profile from {path} on top of {document.get('region', base)}."
    document["fitted_from"] = fitted
    return document


def _fitted(seconds: list[float], source: dict, what: str) -> dict:
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else [seconds[0]] * 99
    quantiles, floor = {}, 0.001  # milliseconds; a measured zero (a local run) stays a tiny positive latency
    for level in FITTED_QUANTILES:
        floor = max(floor, round(cuts[level - 1] * 1000, 3))
        quantiles[f"p{level}"] = floor
    return {**quantiles, "what": what, "source": source}


def save_profile(document: dict, path: str | Path) -> Path:
    """Write a profile document (e.g. from :func:`fit_profile`) and check that it loads.

    Examples
    --------
    >>> import tempfile
    >>> path = save_profile(load_profile().document, Path(tempfile.mkdtemp()) / "copy.json")
    >>> load_profile(path).name
    'aws-eu-west-1'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    load_profile(path)
    return path
