"""Latency profiles: each hop's latency as cited quantiles (``data/latency/<name>.json``), as distributions.

Every figure names who measured it, where and when, or is labelled an assumption; :func:`profile_text` is
a profile's file (e.g. a fitted one), which ``yafdp fit-profile`` writes.
"""

from __future__ import annotations

import json
import math
import random
import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import fastjsonschema

from yafdp.catalog import CatalogError
from yafdp.catalog.loader import read_json, shape_check
from yafdp.errors import RefusedError
from yafdp.shipped import PROFILES_DIR

DEFAULT_PROFILE = "aws-eu-west-1"
QUANTILE_KEY = re.compile(r"^p(\d{1,2}(\.\d+)?)$")


class LatencyProfileError(CatalogError):
    """A latency profile or the quotas file is missing or malformed; says which file and key."""


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
            raise RefusedError("a distribution needs at least one quantile such as p50")
        values = [v for _, v in points]
        if any(b < a for a, b in zip(values, values[1:])):
            raise RefusedError(f"quantiles must not decrease with the level: {quantiles_ms}")
        self.quantiles_ms = {f"p{_label(q)}": v for q, v in points}
        self.constant = values[0] / 1000 if values[0] == values[-1] else None
        if self.constant is None and values[0] <= 0:
            raise RefusedError(f"a varying latency must be positive at every quantile: {quantiles_ms}")
        self._z = [NormalDist().inv_cdf(q / 100) for q, _ in points]
        self._log = [math.log(v / 1000) for v in values] if self.constant is None else []
        self._slope = [(b - a) / (zb - za) for a, b, za, zb in zip(self._log, self._log[1:], self._z, self._z[1:])]
        n = self.TABLE
        self._table = [self.quantile(k / n) for k in range(1, n)] if self.constant is None else []

    def sample(self, rng: random.Random) -> float:
        if self.constant is not None:
            return self.constant
        # (the table's size read from module constants, not the class: a run draws three latencies a delivery)
        position = rng.random() * _TABLE
        k = int(position)
        if 1 <= k < _TABLE_LAST:  # between the table's quantiles k/n and (k+1)/n
            table = self._table
            low = table[k - 1]
            return low + (table[k] - low) * (position - k)
        return self.quantile(min(max(position / _TABLE, 1e-12), 1 - 1e-12))

    def samples(self, count: int, generator: "numpy.random.Generator") -> "numpy.ndarray":
        """``count`` latencies (seconds) drawn at once from ``generator``, as :meth:`sample` draws one: the same
        table between its quantiles k/n and (k+1)/n, the exact quantile in the extreme 1/n of each tail.

        Examples
        --------
        >>> import numpy
        >>> d = Distribution({"p50": 148, "p90": 241, "p99": 387})
        >>> drawn = d.samples(100_000, numpy.random.default_rng(1))
        >>> round(float(numpy.median(drawn)) * 1000)
        148
        """
        import numpy

        if self.constant is not None:
            return numpy.full(count, self.constant)
        position = generator.random(count) * self.TABLE
        k = position.astype(numpy.int64)
        table = numpy.asarray(self._table)
        inside = (k >= 1) & (k < self.TABLE - 1)
        low = table[numpy.clip(k - 1, 0, self.TABLE - 2)]
        high = table[numpy.clip(k, 0, self.TABLE - 2)]
        drawn = low + (high - low) * (position - k)
        for i in numpy.flatnonzero(~inside):  # about 2 in 1,024: the tails, computed exactly
            drawn[i] = self.quantile(min(max(position[i] / self.TABLE, 1e-12), 1 - 1e-12))
        return drawn

    def quantile(self, q: float) -> float:
        """The latency (seconds) at probability ``q`` (0 < q < 1)."""
        if self.constant is not None:
            return self.constant
        z = NormalDist().inv_cdf(q)
        zs = self._z
        i = min(max(bisect_right(zs, z), 1), len(zs) - 1) - 1
        return math.exp(self._log[i] + self._slope[i] * (z - zs[i]))


_TABLE = Distribution.TABLE
_TABLE_LAST = _TABLE - 1


def _level(key: str) -> float:
    match = QUANTILE_KEY.match(key)
    if not match or not 0 < float(match.group(1)) < 100:
        raise RefusedError(f"{key!r} is not a quantile name such as p50 or p99.9")
    return float(match.group(1))


def _label(level: float) -> str:
    return str(int(level)) if level == int(level) else str(level)


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
    if file.is_dir():
        raise LatencyProfileError(file, "", "is a folder, not a latency profile file: give a profile's JSON file, "
                                            "or the name of a shipped one (e.g. aws-eu-west-1)")
    if not file.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.json")))
        raise LatencyProfileError(file, "", f"no such latency profile; the shipped ones are {known} (or 'none')")
    try:
        document = read_json(file)
        shape_check(file, document, _PROFILE_SHAPE)
    except CatalogError as exc:  # named for what it is: a latency profile, not a catalog file
        raise LatencyProfileError(exc.file, exc.key, exc.problem) from None

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
    """A profile file's path: ``name_or_path`` itself when it looks like a path or names a file that exists,
    else the shipped profile of that name in ``data/latency/``."""
    text = str(name_or_path)
    if text.endswith(".json") or "/" in text or "\\" in text or Path(text).is_file():
        return Path(text)
    return PROFILES_DIR / f"{text}.json"


def profile_text(document: dict) -> str:
    """A profile document (e.g. from :func:`~yafdp.simulation.fitting.fit_profile`) as the text of its file;
    ``yafdp fit-profile`` writes it under the run folder's rules and checks that it loads with :func:`load_profile`.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "copy.json"
    >>> _ = path.write_text(profile_text(load_profile().document))
    >>> load_profile(path).name
    'aws-eu-west-1'
    """
    return json.dumps(document, indent=2) + "\n"

