"""Calibration: a latency profile fitted to the measured deliveries of a real (moto or AWS) run's ``run.db``."""

from __future__ import annotations

import copy
import statistics
from pathlib import Path

from yafdp.errors import RefusedError
from yafdp.runtime import rundb
from yafdp.simulation.profiles import DEFAULT_PROFILE, load_profile

FITTED_QUANTILES = (10, 50, 90, 99)


def fit_profile(run_db: str | Path, base: str | Path = DEFAULT_PROFILE, name: str | None = None) -> dict:
    """A latency profile (as a JSON document) fitted to the deliveries of a real run's ``run.db``.

    The hop (from an event's publication to its handler starting, first attempts that succeeded) replaces the
    base profile's EventBridge delivery, with SQS polling folded into it, for a choreography run, or the Step
    Functions task latency of the run's workflow for an orchestrated one; handler times (handler start to end)
    replace the handler distribution, overall and per service. Everything else comes from ``base``. Measured
    hops include the cold starts that happened during the run.

    (Run in ``tests/integration/test_documented_examples.py``: a simulated run is priced and fitted.)
    """
    path = Path(run_db)
    path = path / "run.db" if path.is_dir() else path
    document = copy.deepcopy(load_profile(base).document)
    with rundb.open_run(path) as db:
        info = rundb.get_info(db)
        rows = db.execute("SELECT d.target, d.delivered_at - e.published_at, d.finished_at - d.delivered_at"
                          " FROM deliveries d JOIN events e USING (event_id)"
                          " WHERE d.outcome = 'ok' AND d.attempt = 1").fetchall()
    if len(rows) < 20:
        raise RefusedError(f"{path} has {len(rows)} successful first deliveries; fitting needs at least 20")
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
    document["description"] = f"Fitted by yafdp.simulation.fit_profile from {path} on top of {document.get('region', base)}."
    document["fitted_from"] = fitted
    return document


def _fitted(seconds: list[float], source: dict, what: str) -> dict:
    cuts = statistics.quantiles(seconds, n=100, method="inclusive") if len(seconds) > 1 else [seconds[0]] * 99
    quantiles, floor = {}, 0.001  # milliseconds; a measured zero (a local run) stays a tiny positive latency
    for level in FITTED_QUANTILES:
        floor = max(floor, round(cuts[level - 1] * 1000, 3))
        quantiles[f"p{level}"] = floor
    return {**quantiles, "what": what, "source": source}
