"""The local orchestrator: runs the generated Step Functions state machine over the services' own handlers.

It is the orchestration counterpart of the local bus, and is built on it: the same workload, handlers, units
of work, clock and ``run.db``, so :mod:`yafdp.check` and :mod:`yafdp.trace` read its runs unchanged. What it
changes is who decides what runs next: a published event is recorded but routed to no rule; the state
machine invokes each subscriber as a Task, recorded as a delivery of its event under the rule it stands for.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from functools import partial

from yafdp.bus import LocalBus
from yafdp.catalog import Catalog
from yafdp.latency import TokenBucket
from yafdp.marketplace import Marketplace
from yafdp.orchestration import (OrchestrationError, SagaStepFailedError, TaskRunner, lambda_error,
                                 state_machine_definition, state_machine_name, task_event)
from yafdp.plan import DeploymentPlan
from yafdp.unit_of_work import UnitOfWork

EXPRESS_BILLING_STEP = 0.1  # seconds: Express workflow duration is billed in 100 ms steps


@dataclass
class _Execution:
    started: float


class _Thread:
    """Where one branch of an execution is: the states of its scope and the Parallel state it reports to."""

    __slots__ = ("states", "execution", "join", "index")

    def __init__(self, states: dict, execution: _Execution, join: "_Join | None", index: int):
        self.states, self.execution, self.join, self.index = states, execution, join, index


class _Join:
    __slots__ = ("thread", "state", "outputs", "remaining")

    def __init__(self, thread: _Thread, state: dict):
        self.thread, self.state = thread, state
        self.outputs = [None] * len(state["Branches"])
        self.remaining = len(state["Branches"])


class LocalOrchestrator(LocalBus):
    """A Step Functions workflow (``standard`` or ``express``) in this process, with the plan's services as Tasks.

    A run drives it as it drives the bus (``schedule``, ``call``, ``run``). The start event an entry point
    publishes starts an execution; with a simulated timing each Task waits for the profile's Step Functions
    task latency and for a Lambda execution environment, executions start within the StartExecution quota and
    a Standard workflow's state transitions within theirs.
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world: Marketplace, db: sqlite3.Connection, *,
                 seed: int = 0, timing=None, workflow: str = "standard", commit_every: int = 5000):
        if workflow not in ("standard", "express"):
            raise ValueError(f"workflow must be 'standard' or 'express', got {workflow!r}")
        super().__init__(catalog, plan, world, db, seed=seed, timing=timing, commit_every=commit_every)
        self.workflow = workflow
        self.definition = state_machine_definition(catalog, plan)
        self.runner = TaskRunner(catalog)
        self._functions = {f"arn:aws:lambda:{plan.region}:{plan.account}:function:{s.function}": s.name
                           for s in plan.services}
        self._rule_names = {r.subscription: r.name for r in plan.rules}
        self._published: list[dict] = []
        self._task_latency = self._starts = self._transitions = None
        if getattr(self.timing, "simulated", False):
            quotas = self.timing.quotas
            self._task_latency = self.timing.profile.hops[f"step_functions_{workflow}_task"]
            if workflow == "standard":
                self._starts = TokenBucket(quotas.step_functions_standard_starts_per_second,
                                           quotas.step_functions_standard_starts_burst)
                self._transitions = TokenBucket(quotas.step_functions_standard_transitions_per_second,
                                                quotas.step_functions_standard_transitions_burst)
            else:
                self._starts = TokenBucket(quotas.step_functions_express_starts_per_second,
                                           quotas.step_functions_express_starts_burst)
        self.executions = self.executions_succeeded = self.executions_failed = self.transitions = 0
        self.execution_seconds = self.express_billed_seconds = 0.0

    def report(self) -> dict:
        """Executions and state transitions: what Step Functions would bill."""
        return {
            "state_machine": state_machine_name(self.plan), "workflow": self.workflow,
            "executions": self.executions, "executions_succeeded": self.executions_succeeded,
            "executions_failed": self.executions_failed, "state_transitions": self.transitions,
            "execution_seconds": round(self.execution_seconds, 3),
            "express_billed_seconds": round(self.express_billed_seconds, 1),
            "starts_throttled": self._starts.throttled if self._starts else 0,
            "transitions_throttled": self._transitions.throttled if self._transitions else 0,
            "transitions_throttle_delay_s": round(self._transitions.delay, 3) if self._transitions else 0.0,
        }

    def _route(self, envelope: dict, published_vt: float, again: bool = False, only=None) -> None:
        # No rules here: the start event starts an execution; every other event is a Task's output.
        if envelope["detail-type"] == self.catalog.bus.start_event:
            self._start_execution(envelope, published_vt)
        else:
            self._published.append(envelope)

    # ---------------------------------------------------------------- the interpreter

    def _start_execution(self, envelope: dict, t: float) -> None:
        if self._starts is not None:
            t = self._starts.admit(t)
        self.executions += 1
        thread = _Thread(self.definition["States"], _Execution(started=t), None, 0)
        self._enter(thread, self.definition["StartAt"], {"emitted": envelope["detail-type"], "event": envelope}, t)

    def _enter(self, thread: _Thread, name: str, data, t: float) -> None:
        self.transitions += 1
        if self._transitions is not None:
            t = self._transitions.admit(t)
        state = thread.states[name]
        kind = state["Type"]
        if kind == "Task":
            delay = self._task_latency.sample(self._timing_rng) if self._task_latency is not None else 0.0
            self.schedule(t + delay, partial(self._invoke, thread, name, data))
        elif kind == "Choice":
            self._enter(thread, _choose(name, state, data), data, t)
        elif kind == "Parallel":
            join = _Join(thread, state)
            for index, branch in enumerate(state["Branches"]):
                self._enter(_Thread(branch["States"], thread.execution, join, index), branch["StartAt"], data, t)
        elif kind == "Succeed":
            self._finish(thread, data, t)
        else:
            raise OrchestrationError(f"state {name!r} is a {kind} state; the local orchestrator runs "
                                     "Task, Choice, Parallel and Succeed states")

    def _invoke(self, thread: _Thread, name: str, data) -> None:
        state = thread.states[name]
        parameters = _resolve(state["Parameters"], data)
        service = self._functions[parameters["FunctionName"]]
        timing, vt = self.timing, self.vt
        start = timing.slot(service, vt)
        if start > vt:  # every execution environment the function may have is busy: wait for one
            self.schedule(start, partial(self._invoke, thread, name, data))
            return
        end = start + timing.duration(service, self._timing_rng)
        timing.book(service, start, end)
        payload = parameters["Payload"]
        event_id = task_event(payload)["id"]
        rule = self._rule_names[payload["rule"]]
        uow = UnitOfWork(service, self._states[service], self.world, self.now)
        try:
            prepared = self.runner.run(payload, uow)
        except Exception as exc:  # the handler failed: the Task fails with the exception's name, as in Lambda
            self.stats.failed += 1
            self._trace.append((event_id, rule, service, 1, timing.now(start), timing.now(end), "failed",
                                f"{type(exc).__name__}: {exc}"))
            self.schedule(end, partial(self._caught, thread, name, data, lambda_error(exc)))
            return
        self.writer.put_state(service, uow.writes)
        self.writer.processed.add((rule, event_id))
        self._published.clear()
        self._publish(prepared, at=end)
        published = list(self._published)
        self.stats.delivered += 1
        self._trace.append((event_id, rule, service, 1, timing.now(start), timing.now(end), "ok", None))
        try:
            output = self.runner.output(published)
        except SagaStepFailedError as exc:
            self.schedule(end, partial(self._caught, thread, name, data, lambda_error(exc)))
            return
        self.schedule(end, partial(self._succeeded, thread, name, output))

    def _succeeded(self, thread: _Thread, name: str, output: dict) -> None:
        state = thread.states[name]
        result = _resolve(state["ResultSelector"], {"Payload": output}) if "ResultSelector" in state else output
        self._next(thread, state, result, self.vt)

    def _caught(self, thread: _Thread, name: str, data, error: dict) -> None:
        for catcher in thread.states[name].get("Catch", ()):
            if error["Error"] in catcher["ErrorEquals"] or {"States.ALL", "States.TaskFailed"} & set(catcher["ErrorEquals"]):
                self._enter(thread, catcher["Next"], _at_result_path(data, catcher.get("ResultPath", "$"), error), self.vt)
                return
        self.executions_failed += 1  # nothing catches it: the execution fails and the saga stops here

    def _next(self, thread: _Thread, state: dict, output, t: float) -> None:
        if state.get("End"):
            self._finish(thread, output, t)
        else:
            self._enter(thread, state["Next"], output, t)

    def _finish(self, thread: _Thread, output, t: float) -> None:
        join = thread.join
        if join is None:
            seconds = t - thread.execution.started
            self.executions_succeeded += 1
            self.execution_seconds += seconds
            self.express_billed_seconds += math.ceil(seconds / EXPRESS_BILLING_STEP - 1e-9) * EXPRESS_BILLING_STEP
            return
        join.outputs[thread.index] = output
        join.remaining -= 1
        if join.remaining == 0:
            self._next(join.thread, join.state, join.outputs, t)


# ---------------------------------------------------------------- the JSONPath subset the generated states use


def _path(data, path: str):
    if path == "$":
        return data
    if not path.startswith("$."):
        raise OrchestrationError(f"path {path!r}: the local orchestrator reads only paths like $.a.b")
    for key in path[2:].split("."):
        if not isinstance(data, dict) or key not in data:
            raise OrchestrationError(f"States.Runtime: path {path!r} does not exist in the state's input")
        data = data[key]
    return data


def _resolve(template: dict, data) -> dict:
    """A Parameters or ResultSelector template: keys ending in ``.$`` take the value at their path."""
    resolved = {}
    for key, value in template.items():
        if key.endswith(".$"):
            resolved[key[:-2]] = _path(data, value)
        elif isinstance(value, dict):
            resolved[key] = _resolve(value, data)
        else:
            resolved[key] = value
    return resolved


def _at_result_path(data, result_path: str, result):
    if result_path == "$":
        return result
    if not result_path.startswith("$.") or "." in result_path[2:] or not isinstance(data, dict):
        raise OrchestrationError(f"ResultPath {result_path!r}: the local orchestrator supports $ and $.name")
    return {**data, result_path[2:]: result}


def _choose(name: str, state: dict, data) -> str:
    for rule in state["Choices"]:
        if set(rule) != {"Variable", "StringEquals", "Next"}:
            raise OrchestrationError(f"Choice state {name!r}: the local orchestrator supports StringEquals rules only")
        if _path(data, rule["Variable"]) == rule["StringEquals"]:
            return rule["Next"]
    if "Default" not in state:
        raise OrchestrationError(f"States.NoChoiceMatched in Choice state {name!r}")
    return state["Default"]
