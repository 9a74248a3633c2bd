"""Choreography beside orchestration, as tables: latency, messages per order, coupling, the cost of adding a
service, money per million orders, and latency as the offered load passes the account's quotas (replayed).

Not part of the runtime core (it uses pandas); notebook 09 calls it.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pandas as pd

from yafdp.catalog import Catalog, load_catalog
from yafdp.analysis.costs import ASSUMED, PRICED_AS, cost_per_million_orders, load_prices, price_region, usage_from_run
from yafdp.simulation.quotas import Quotas
from yafdp.plan.step_functions import state_machine_definition, walk_states
from yafdp.plan import build_plan
from yafdp.progress import progress_bar
from yafdp.runs.replaying import replay_recording
from yafdp.simulation.recording import Recording
from yafdp.analysis.trace import end_to_end, flag_few_samples, load_run, percentiles, run_info


def saga_latency(runs: dict[str, str | Path]) -> pd.DataFrame:
    """One row per order and run: ``style`` (the run's label), ``order_id``, ``saga_ms`` (the start event to the
    saga's terminal event) and ``times`` (measured or simulated, and how)."""
    frames = []
    for label, path in runs.items():
        run = load_run(path)
        table = end_to_end(run)
        frames.append(pd.DataFrame({"style": label, "order_id": table["order_id"], "saga_ms": table["saga_s"] * 1000,
                                    "times": run.time_label}))
    return pd.concat(frames, ignore_index=True)


def latency_summary(latency: pd.DataFrame) -> pd.DataFrame:
    """p50/p95/p99/max of :func:`saga_latency` per style, in milliseconds, a style of few orders flagged
    (:func:`~yafdp.analysis.trace.flag_few_samples`)."""
    table = latency.groupby("style", sort=False)["saga_ms"].apply(percentiles).unstack()
    table["count"] = table["count"].astype(int)
    return flag_few_samples(table.rename(columns={c: f"{c}_ms" for c in table.columns if c != "count"}).round(1))


def messages_per_order(runs: dict[str, str | Path]) -> pd.DataFrame:
    """What each order costs in messages and calls, per style (billable usage from :mod:`yafdp.analysis.costs`)."""
    rows = {}
    for label, path in runs.items():
        usage = usage_from_run(path)
        info = run_info(path)
        per_order = usage.per_order()
        rows[label] = {
            "events published": info["summary"]["events_published"] / usage.orders,
            "handler runs (deliveries or Tasks)": info["summary"]["deliveries"]["total"] / usage.orders,
            "EventBridge events": per_order["eventbridge_events"],
            "SQS requests": per_order["sqs_requests"],
            "Lambda invocations": per_order["lambda_requests"],
            "Step Functions state transitions": info["summary"].get("orchestration", {}).get("state_transitions", 0) / usage.orders,
        }
    return pd.DataFrame(rows).round(2)


def designs(runs: dict[str, str | Path], workflows: dict[str, list] | None = None) -> pd.DataFrame:
    """The designs side by side on what their runs measured, one column per run (its label): the orders, how many of
    ``yafdp check``'s invariants held, events published (on the bus, except for the orchestration, which routes none),
    handler runs (bus deliveries or Tasks), Lambda invocations as AWS would bill them, and Step Functions executions
    and states entered, each per order. ``workflows`` adds, for a run whose service runs a workflow of its own (the
    hybrid), that workflow's executions (:class:`~yafdp.backends.local.sync_execution.SyncExecution`): their
    executions and states entered, and their Tasks as Lambda invocations (each Task a function of the service's own
    on AWS)."""
    from yafdp.analysis.check import check_run

    workflows = workflows or {}
    columns = {}
    for label, path in runs.items():
        summary, usage = run_info(path)["summary"], usage_from_run(path)
        orders, orchestration, inner = usage.orders, summary.get("orchestration") or {}, workflows.get(label, [])
        results = [r for r in check_run(path) if r.applies and not r.skipped]
        columns[label] = {
            "orders": orders,
            "invariants of yafdp check that hold": f"{sum(r.passed for r in results)} of {len(results)}",
            "events published per order": round(summary["events_published"] / orders, 2),
            "handler runs per order (deliveries or Tasks)": round(summary["deliveries"]["total"] / orders, 2),
            "Lambda invocations per order": round(usage.per_order()["lambda_requests"]
                                                  + sum(e.invocations for e in inner) / orders, 2),
            "Step Functions executions per order": round((orchestration.get("executions", 0) + len(inner)) / orders, 2),
            "Step Functions states entered per order": round(
                (orchestration.get("state_transitions", 0) + sum(len(e.states) for e in inner)) / orders, 2),
        }
    return pd.DataFrame(columns)


def coupling(catalog: Catalog) -> pd.DataFrame:
    """Who knows whom. Choreography: a service knows the event types it reacts to and publishes, and names the
    producers (``source``) of what it reacts to in its rules. Orchestration: the state machine names every
    service's function, every handler and every event type that decides a branch; services name nobody.

    Examples
    --------
    >>> table = coupling(load_catalog()).set_index(["participant", "style"])
    >>> int(table.loc[("state machine", "orchestration"), "services it names"])
    6
    """
    rows = []
    for service in catalog.services.values():
        reacts = {e for sub in service.subscriptions for e in catalog.matched_events(sub)}
        named = {catalog.events[e].service for e in reacts} - {service.name}
        rows.append({"participant": service.name, "style": "choreography", "services it names": len(named),
                     "event types it knows": len(reacts | service.may_emit())})
        rows.append({"participant": service.name, "style": "orchestration", "services it names": 0,
                     "event types it knows": len(reacts | service.may_emit())})
    definition = state_machine_definition(catalog, build_plan(catalog))
    functions, events = set(), {catalog.bus.start_event}
    for _, state in walk_states(definition):
        if state["Type"] == "Task":
            functions.add(state["Parameters"]["FunctionName"])
            events.update(e for c in state.get("Catch", ()) for e in c["ErrorEquals"])
        events.update(choice["StringEquals"] for choice in state.get("Choices", ()))
    rows.append({"participant": "state machine", "style": "orchestration", "services it names": len(functions),
                 "event types it knows": len(events)})
    return pd.DataFrame(rows)


def loyalty_change(catalog_dir: str | Path | None = None, service: str = "loyalty") -> pd.DataFrame:
    """What adding ``service`` changes in each style: files and definitions touched, lines, rules or states,
    and what has to be deployed again.

    Examples
    --------
    >>> int(loyalty_change().set_index("style").loc["choreography", "other services' files changed"])
    0
    """
    after = load_catalog(catalog_dir)
    before = after.without(service)
    added_file = Path(after.services[service].file)
    others_changed = [s for s in before.services if before.services[s] != after.services[s]]
    old = _definition_lines(before)
    new = _definition_lines(after)
    diff = list(difflib.unified_diff(old, new, lineterm="", n=0))
    plus = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    minus = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    old_states = _states(before)
    new_states = _states(after)
    added = [n for n in new_states if n not in old_states]
    changed = [n for n in new_states if n in old_states and new_states[n] != old_states[n]]
    return pd.DataFrame([
        {"style": "choreography", "what you edit": f"add {added_file.parent.name}/{added_file.name} (a new file)",
         "other services' files changed": len(others_changed),
         "lines added": len(added_file.read_text().splitlines()), "lines removed": 0,
         "rules or states added": len(after.services[service].subscriptions), "existing states changed": 0,
         "redeployed": f"the {service} service only (its rules, queue and function)"},
        {"style": "orchestration", "what you edit": "the state machine definition (one shared document)",
         "other services' files changed": 0, "lines added": plus, "lines removed": minus,
         "rules or states added": len(added), "existing states changed": len(changed),
         "redeployed": f"the state machine every order runs through, and the {service} function"},
    ])


def _states(catalog: Catalog) -> dict[str, dict]:
    """Every state by name, a Parallel state by its own fields and its branches' first states (so a change
    deep in a branch counts once, where it is)."""
    definition = state_machine_definition(catalog, build_plan(catalog))
    return {name: {**state, "Branches": [b["StartAt"] for b in state["Branches"]]} if "Branches" in state else state
            for name, state in walk_states(definition)}


def _definition_lines(catalog: Catalog) -> list[str]:
    return json.dumps(state_machine_definition(catalog, build_plan(catalog)), indent=2).splitlines()


def cost_table(runs: dict[str, str | Path], *, lambda_memory_mb: int = 256) -> pd.DataFrame:
    """US dollars per million orders: one column per run, one row per billed item, and the total."""
    prices = load_prices()
    columns = {label: cost_per_million_orders(usage_from_run(path, lambda_memory_mb=lambda_memory_mb), prices)
               for label, path in runs.items()}
    table = pd.DataFrame(columns)
    table = table[(table != 0).any(axis=1)]
    table.loc["total"] = table.sum()
    return table.round(2)


def price_sources() -> pd.DataFrame:
    """Every price the cost table uses: its unit, the Region it is for, AWS's page, and the words on an AWS page that
    state it (or that the price is this workbook's assumption, :data:`~yafdp.analysis.costs.ASSUMED`)."""
    prices = load_prices()
    rows = []
    for usage_name, price_name in PRICED_AS.items():
        price = prices[price_name]
        source = price["source"]
        rows.append({"usage": usage_name, "price (USD)": f"{price['usd']:g}", "per": f"{price['per']:,}",
                     "unit": price["unit"], "region": price_region(price),
                     "AWS's words": source["quote"] or f"none: {ASSUMED}",
                     "AWS page": source["quote_url"] or source["page"], "read": source["read"]})
    return pd.DataFrame(rows).set_index("usage")


def quota_loads(run_path: str | Path, quotas: Quotas) -> dict[str, float]:
    """The offered load (orders per second) at which each quota starts to bind, from a run at low load:
    the quota divided by what one order uses of it (PutEvents calls, target invocations, Lambda busy seconds,
    or Step Functions starts and transitions)."""
    run = load_run(run_path)
    summary = run.info["summary"]
    orders = summary["orders"]["placed"]
    busy = (run.deliveries["finished_at"] - run.deliveries["delivered_at"]).sum() / orders
    loads = {"Lambda concurrency quota": float(quotas.lambda_concurrent_executions / busy)}
    if run.info.get("style", "choreography") == "choreography":
        loads["PutEvents quota"] = quotas.eventbridge_put_events_per_second / (summary["events_published"] / orders)
        loads["EventBridge invocations quota"] = (quotas.eventbridge_invocations_per_second
                                                  / (summary["deliveries"]["total"] / orders))
    elif run.info.get("workflow") == "express":
        loads["StartExecution quota (Express)"] = quotas.step_functions_express_starts_per_second
    else:
        transitions = summary["orchestration"]["state_transitions"] / orders
        loads["StartExecution quota (Standard)"] = quotas.step_functions_standard_starts_per_second
        loads["state transitions quota (Standard)"] = quotas.step_functions_standard_transitions_per_second / transitions
    return dict(sorted(loads.items(), key=lambda item: item[1]))


def replay_sweep(recording: Recording, rates: list[float], seconds: float, *, latency_model: str = "aws-eu-west-1",
                 quota_scale: float = 1.0, seed: int = 0, progress: bool | None = None) -> pd.DataFrame:
    """Replay ``recording``'s sagas (:mod:`yafdp.simulation.replay`: no handler runs again, which assumes the
    handlers' decisions do not depend on timing) at each offered load in ``rates`` (orders per second) for
    ``seconds`` simulated seconds of arrivals, and at least 50 orders so that a light load still gives
    percentiles; one row per load: the end-to-end latency (p50, p99, ms) of the orders that finished, how many
    were refused or cut short by throttling, what the quotas throttled or gave up on, and the replay's own wall
    seconds.

    ``progress``: a bar of the loads replayed, out of ``rates`` (see :func:`yafdp.progress.progress_bar`: None shows
    it where someone watches)."""
    rows = []
    with progress_bar(len(rates), f"{recording.style} offered loads (replayed)", "loads", show=progress) as loads:
        for rate in rates:
            orders = max(50, round(rate * seconds))
            result = replay_recording(recording, latency_model=latency_model, quota_scale=quota_scale, arrival_rate=rate,
                                      orders=orders, seed=seed)
            simulation, orchestration = result.simulation, result.orchestration
            rows.append({"offered orders/s": rate, "orders": orders, "p50_ms": result.saga_ms["p50"],
                         "p99_ms": result.saga_ms["p99"], "refused": result.refused, "not finished": result.not_finished,
                         "put_events_throttled": simulation["put_events_throttled"],
                         "put_events_refused": simulation["put_events_refused"],
                         "invocations_throttled": simulation["invocations_throttled"],
                         "transitions_throttled": orchestration.get("transitions_throttled", 0),
                         "waited_for_an_environment": simulation["waited_for_an_environment"],
                         "cold_starts": simulation["cold_starts"],
                         "account_concurrency_full": simulation["account_concurrency_full"],
                         "handler runs": result.deliveries["total"], "replay wall s": round(result.wall_seconds, 2)})
            loads.update(1)
    return pd.DataFrame(rows)
