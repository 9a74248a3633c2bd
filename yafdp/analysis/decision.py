"""Chapter 09's decision guide, as tables: what each Step Functions workflow type promises, how much the latency
comparison depends on its inputs, and the cost lines the per-order cost table leaves out.

Not part of the runtime core (it uses pandas). Every AWS fact here comes from ``data/`` with its quote
(``workflows.json``, ``prices.json``, ``quotas.json``, the latency profile); where AWS is silent the function says
what it chose, as a parameter.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from pathlib import Path

import pandas as pd

from yafdp.analysis.costs import describe_price, load_prices, usage_from_run
from yafdp.analysis.trace import end_to_end, load_run
from yafdp.backends.local.step_functions import refuse_callbacks
from yafdp.catalog import load_catalog
from yafdp.catalog.marketplace import load_marketplace
from yafdp.plan import build_plan
from yafdp.plan.step_functions import state_machine_definition, with_human_step
from yafdp.plan.workflow_types import new_accounts_note, workflow_types
from yafdp.runs import RunOptions, finish, run_saga, start_saga
from yafdp.simulation.profiles import load_profile, profile_text

SECONDS_PER_MONTH = 30 * 24 * 3600


def workflow_semantics() -> pd.DataFrame:
    """Standard, asynchronous Express and synchronous Express side by side: how an execution runs, how long it may
    run, whether a Task can wait for a person (``.waitForTaskToken``), where its history is and what it is billed
    by, each cell as ``data/workflows.json`` quotes AWS (the quotes in the ``source`` rows).

    Examples
    --------
    >>> table = workflow_semantics()
    >>> table.loc["execution", "Standard"], table.loc["execution", "Express, asynchronous (StartExecution)"]
    ('exactly-once', 'at-least-once')
    """
    rows: dict[str, dict] = {}
    for kind in workflow_types().values():
        rows[kind.label] = {
            "execution": kind.execution,
            "longest execution": _duration(kind.max_duration_seconds),
            "a Task that waits for a person (.waitForTaskToken)": "yes" if kind.callback_tasks else "no",
            "execution history": kind.history,
            "billed by": kind.billed_by,
            "source": "; ".join(sorted({s["url"] for s in kind.sources.values()})),
        }
    return pd.DataFrame(rows)


def new_accounts() -> str:
    """AWS's caveat on the Standard quotas a new account starts with, quoted, with its page."""
    note = new_accounts_note()
    return f"\u201c{note['quote']}\u201d ({note['url']})"


def _duration(seconds: float) -> str:
    if seconds >= 365 * 24 * 3600:
        return f"{seconds / (365 * 24 * 3600):g} year"
    return f"{seconds / 60:g} minutes"


# ---------------------------------------------------------------- the latency comparison's sensitivity

# The band of plausible inputs (AWS publishes no latency for either hop, so these are the project's choices, said
# here and in chapter 09): the EventBridge hop was measured to a Lambda function invoked asynchronously and is
# charged here to an SQS target, which has no asynchronous invocation queue to wait in, so it may be faster: from
# half the measured figure to the figure as measured. Each Step Functions Task figure was measured with
# StartExecution included, which the steps after the first do not pay: again from half to the whole.
EVENTBRIDGE_SCALES = (0.5, 1.0)
TASK_SCALES = (0.5, 1.0)
SCALED_HOPS = {"choreography": ("eventbridge_delivery",),
               "orchestration": ("step_functions_standard_task", "step_functions_express_task")}


def scaled_profile(base: str | Path, factors: dict[str, float], path: str | Path) -> Path:
    """A copy of latency profile ``base`` with each hop of ``factors`` (``{hop: factor}``) multiplied, written to
    ``path`` and checked to load; the copy says what was scaled and why in its description."""
    document = copy.deepcopy(load_profile(base).document)
    for hop, factor in factors.items():
        spec = document["distributions_ms"][hop]
        for key in list(spec):
            if key.startswith("p") and key[1:].replace(".", "").isdigit():
                spec[key] = round(spec[key] * factor, 3)
        spec["assumption"] = (spec.get("assumption", "") + f" Scaled by {factor:g} for a sensitivity run.").strip()
    document["name"] = f"{document['name']}-scaled"
    document["description"] += f" Sensitivity copy: {json.dumps(factors)}."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile_text(document), encoding="utf-8")
    load_profile(path)  # the copy must load as a profile
    return path


def latency_sensitivity(out_dir: str | Path, *, orders: int = 150, seed: int = 0, arrival_rate: float = 20.0,
                        latency_model: str = "aws-eu-west-1", workflow: str = "standard",
                        eventbridge_scales=EVENTBRIDGE_SCALES, task_scales=TASK_SCALES,
                        catalog_dir: str | Path | None = None) -> pd.DataFrame:
    """How the end-to-end comparison of the two styles moves over the plausible inputs: the choreography run with
    the EventBridge hop at each of ``eventbridge_scales`` of the profile's figure, the orchestration (``workflow``)
    with its Task hop at each of ``task_scales``, the same seeded orders each time. One row per pair: both medians
    (ms) and how many times slower the choreography's median is. ``catalog_dir``: the catalog folder whose saga is
    run (None: the shipped one).

    (Chapter 09 runs it; ``tests/integration/test_decision_guide.py`` checks that its corner with every input as
    measured is the plain comparison, and that the ratio moves the way its inputs do.)
    """
    out = Path(out_dir)
    medians: dict[tuple[str, float], float] = {}
    for style, scales in (("choreography", eventbridge_scales), ("orchestration", task_scales)):
        for scale in scales:
            profile = scaled_profile(latency_model, {hop: scale for hop in SCALED_HOPS[style]},
                                     out / f"profile-{style}-{scale:g}.json")
            run_dir = out / f"{style}-{scale:g}"
            run_saga(RunOptions(orders=orders, seed=seed, out=run_dir, arrival_rate=arrival_rate,
                                latency_model=str(profile), style=style,
                                workflow=workflow if style == "orchestration" else "standard", catalog_dir=catalog_dir))
            medians[(style, scale)] = float(end_to_end(load_run(run_dir))["saga_s"].median() * 1000)
    rows = []
    for eb in eventbridge_scales:
        for task in task_scales:
            chor, orch = medians[("choreography", eb)], medians[("orchestration", task)]
            rows.append({"EventBridge hop (× measured)": eb, "Step Functions Task (× measured)": task,
                         "choreography p50 (ms)": round(chor, 1), f"orchestration ({workflow}) p50 (ms)": round(orch, 1),
                         "choreography / orchestration": round(chor / orch, 2)})
    return pd.DataFrame(rows)


def eventbridge_hop_measured() -> dict:
    """What the profile's EventBridge figure measured: its quantiles, one key each (``"p50 (ms)"``: milliseconds),
    then in its own words ``what``, ``method``, ``measured``, ``url`` and the assumption that reuses it for an SQS
    target (``reused for``)."""
    spec = load_profile().document["distributions_ms"]["eventbridge_delivery"]
    return {**{f"{k} (ms)": v for k, v in spec.items() if k.startswith("p")}, "what": spec["what"],
            "method": spec["source"]["method"], "measured": spec["source"]["measured"], "url": spec["source"]["url"],
            "reused for": spec["assumption"]}


# ---------------------------------------------------------------- what the cost table leaves out

# Idle polling, where AWS is silent: an SQS event source mapping keeps polling an empty queue. That it polls with
# its initial five concurrent batches (data/quotas.json, sqs_event_source_initial_concurrency) and long-polls 20 s
# (the maximum ReceiveMessage wait) is the project's assumption; "Short polling is billed the same as long polling"
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/best-practices-using-appropriate-polling-mode.html).
IDLE_POLLERS = 5
IDLE_WAIT_SECONDS = 20.0


def idle_receives_per_month(queues: int, *, pollers: int = IDLE_POLLERS, wait_seconds: float = IDLE_WAIT_SECONDS) -> float:
    """Empty ReceiveMessage requests a month that ``queues`` event source mappings make on queues with nothing in them.

    Examples
    --------
    >>> idle_receives_per_month(1)
    648000.0
    """
    return queues * pollers * SECONDS_PER_MONTH / wait_seconds


def lines_left_out(runs: dict[str, str | Path], *, queues: int | None = None) -> pd.DataFrame:
    """The cost lines the per-million-orders table does not carry, per style, each with what a run shows of it and
    its price where ``data/prices.json`` has one: the EventBridge archive the plan creates (every event archived),
    an Express workflow's execution history (only in CloudWatch Logs) and the event source mappings' idle polling
    (a monthly floor, not per order).

    ``runs`` are chapter 09's (a choreography and the orchestrations); ``queues`` is the number of service queues
    the event source mappings poll (default: the choreography run's services).
    """
    prices = load_prices()
    rows = []
    for label, path in runs.items():
        run = load_run(path)
        orders = max(1, run.info["summary"]["orders"]["placed"])
        per_million = 1_000_000 / orders
        style = run.info.get("style", "choreography")
        if style == "choreography":
            archived = float((run.events["detail"].str.len() + run.events["source"].str.len()
                              + run.events["detail_type"].str.len()).sum())
            rows.append({"style": label, "line": "EventBridge archive of every event (the plan's archive)",
                         "quantity": f"{archived * per_million / 1e9:,.2f} GB archived per million orders",
                         "price": "not priced: AWS bills archived events by the GB (\u201cEventBridge charges apply to "
                                  "archives\u201d, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-archive.html); "
                                  "AWS's user guide gives no rate (see https://aws.amazon.com/eventbridge/pricing/)"})
            services = queues if queues is not None else len(run.info.get("sources", {})) or 6
            idle = idle_receives_per_month(services)
            price = prices["sqs_standard_request"]
            counted = usage_from_run(path).per_order().get("sqs_requests", 0.0)
            rows.append({"style": label, "line": "idle polling of the service queues (per month, not per order)",
                         "quantity": (f"{idle:,.0f} empty receives a month for {services} queues "
                                      f"({IDLE_POLLERS} pollers each, {IDLE_WAIT_SECONDS:g} s long polls: the project's "
                                      f"assumption); the run counted {counted:.1f} SQS requests an order, so below "
                                      f"{idle / counted:,.0f} orders a month the floor outweighs them"
                                      if counted else f"{idle:,.0f} empty receives a month"),
                         "price": f"${idle * price['usd'] / price['per']:,.2f} a month at {describe_price(price)}: "
                                  "the table's SQS line is a lower bound at low traffic"})
        elif run.info.get("workflow") == "express":
            transitions = run.info["summary"].get("orchestration", {}).get("state_transitions", 0) / orders
            rows.append({"style": label, "line": "Express execution history in CloudWatch Logs",
                         "quantity": f"{transitions:.1f} states entered an order: at log level ALL at least one log "
                                     "event each, none kept unless logging is on",
                         "price": "not priced: CloudWatch Logs bills ingestion and storage by the GB; the project "
                                  "has no copy of its pricing page"})
    return pd.DataFrame(rows).set_index(["style", "line"])


def monthly_floor_orders(sqs_requests_per_order: float, queues: int) -> float:
    """Orders a month below which the idle polling of ``queues`` outweighs the SQS requests the orders make.

    Examples
    --------
    >>> round(monthly_floor_orders(13.0, 6))
    299077
    """
    return idle_receives_per_month(queues) / sqs_requests_per_order if sqs_requests_per_order else math.inf


# ---------------------------------------------------------------- a human step: the restaurant confirms by hand

HUMAN_STEP = {"rule": "restaurant-reviews-paid-order", "on_timeout": "restaurant-rejects-timed-out-order",
              "timeout_seconds": 600, "think_seconds": (60.0, 300.0)}


def human_step_definition(catalog, plan, *, timeout_seconds: int = HUMAN_STEP["timeout_seconds"]) -> dict:
    """The generated state machine with the restaurant's confirmation as a person's step: a callback Task
    (``.waitForTaskToken``) that waits up to ``timeout_seconds``, then runs the Restaurant's timeout handler, whose
    rejection is caught as any rejection (the refund follows)."""
    on_timeout = catalog.subscription(HUMAN_STEP["on_timeout"])
    return with_human_step(state_machine_definition(catalog, plan), HUMAN_STEP["rule"], timeout_seconds=timeout_seconds,
                           on_timeout={"rule": on_timeout.rule, "handler": on_timeout.handler,
                                       "service_function": plan.service(on_timeout.service).function})


def restaurant_tablet(world, seed: int = 0, think_seconds=HUMAN_STEP["think_seconds"]):
    """The person at each restaurant's tablet, as a runner's ``responder``: an open restaurant answers after a think
    time drawn between ``think_seconds`` (seconds, seeded); one whose ``answers`` is false never does (None)."""
    rng = random.Random(f"{seed}:tablet")

    def answer_after(token: str, payload: dict) -> float | None:
        restaurant = world.restaurants[payload["event"]["detail"]["restaurant_id"]]
        return rng.uniform(*think_seconds) if restaurant.get("answers", True) else None

    return answer_after


def human_step_run(out: str | Path, requests: list[dict], *, workflow: str = "standard",
                   latency_model: str = "aws-eu-west-1", seed: int = 0,
                   timeout_seconds: int = HUMAN_STEP["timeout_seconds"], responder=None) -> dict:
    """Place ``requests`` (order requests) on the orchestration with the restaurant's human step, run them to their end
    and save the run in ``out``. Returns the run's summary. ``responder(token, payload)`` is the person at the
    tablet (seconds until they answer, or None: never); default :func:`restaurant_tablet`.

    Raises :class:`~yafdp.plan.step_functions.OrchestrationError` for an Express ``workflow``: it cannot wait for a
    task token (nothing is run, and ``out`` is left as it was)."""
    catalog, world = load_catalog(), load_marketplace()
    options = RunOptions(orders=0, seed=seed, out=out, style="orchestration", workflow=workflow,
                         latency_model=latency_model)
    definition = human_step_definition(catalog, build_plan(catalog), timeout_seconds=timeout_seconds)
    refuse_callbacks(definition, workflow)  # before the run folder is touched
    started, bus = time.perf_counter(), start_saga(options)
    bus.use_definition(definition, responder or restaurant_tablet(world, seed))
    for request in requests:
        bus.call("order", "place_order", request)
    bus.run()
    return finish(bus, options, options.out, time.perf_counter() - started)
