"""The local Step Functions runner: the generated state machine run over the services' own handlers.

It is the orchestration counterpart of the local bus and composes the same parts (the scheduler, the services
with their state in ``run.db``, the timing model), so :mod:`yafdp.analysis.check` and :mod:`yafdp.analysis.trace`
read its runs unchanged. What differs is who decides what runs next: a published event is recorded but routed
to no rule; the state machine invokes each subscriber as a Task, recorded as a delivery of its event under the
rule it stands for.
"""

from __future__ import annotations

import math
import random
import sqlite3
from dataclasses import dataclass
from functools import partial
from typing import Iterable

from yafdp.catalog import Catalog
from yafdp.catalog.marketplace import Marketplace
from yafdp.errors import BackendError, RefusedError
from yafdp.plan import DeploymentPlan
from yafdp.plan.step_functions import OrchestrationError, state_machine_definition
from yafdp.runtime.interfaces import TimingModel
from yafdp.runtime.publishing import prepare_put_events
from yafdp.runtime.tasks import SagaStepFailedError, TaskRunner, lambda_error, task_event
from yafdp.runtime.unit_of_work import Envelope
from yafdp.simulation.recording import ExecutionRecorder
from yafdp.simulation.step_functions import WORKFLOWS, StepFunctionsModel

from yafdp.backends.local.run_writer import RunWriter
from yafdp.backends.local.scheduler import Scheduler
from yafdp.backends.local.services import InProcessDriving, LocalServices
from yafdp.backends.local.timing import MeasuredTiming

EXPRESS_BILLING_STEP = 0.1  # seconds: Express workflow duration is billed in 100 ms steps


@dataclass
class _Execution:
    started: float


class _Thread:
    """Where one branch of an execution is: the states of its scope and the Parallel state it reports to, and
    (when the runner records) the id of the last step it took."""

    __slots__ = ("states", "execution", "join", "index", "last")

    def __init__(self, states: dict, execution: _Execution, join: "_Join | None", index: int, last: int | None):
        self.states, self.execution, self.join, self.index, self.last = states, execution, join, index, last


class _Join:
    __slots__ = ("thread", "state", "outputs", "remaining", "lasts")

    def __init__(self, thread: _Thread, state: dict):
        self.thread, self.state = thread, state
        self.outputs = [None] * len(state["Branches"])
        self.remaining = len(state["Branches"])
        self.lasts: list[int | None] = [None] * len(state["Branches"])


class LocalStepFunctions(InProcessDriving):
    """A Step Functions workflow (``standard`` or ``express``) in this process, with the plan's services as Tasks.

    A run drives it as it drives the bus (:class:`~yafdp.runtime.interfaces.Bus`). The start event an entry point
    publishes starts an execution; with a simulated timing each Task waits for the profile's Step Functions
    task latency and for a Lambda execution environment, executions start within the StartExecution quota and
    a Standard workflow's state transitions within theirs (:class:`~yafdp.simulation.step_functions.StepFunctionsModel`).

    ``recorder``, when set (an :class:`~yafdp.simulation.recording.ExecutionRecorder`), hears every execution's
    start, states entered, Tasks run and Parallel branches joined: each order's causal graph, for the replay.

    Raises :class:`~yafdp.errors.RefusedError` for an unknown ``workflow``.
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world: Marketplace, db: sqlite3.Connection, *,
                 seed: int = 0, timing: TimingModel | None = None, workflow: str = "standard",
                 commit_every: int = 5000, epoch: float = 1_767_225_600.0):
        if workflow not in WORKFLOWS:
            raise RefusedError(f"workflow must be 'standard' or 'express', got {workflow!r}")
        catalog.compile_schemas()
        self.catalog, self.plan, self.world, self.db = catalog, plan, world, db
        self.workflow, self.commit_every = workflow, commit_every
        self.timing = timing or MeasuredTiming()
        self.writer = RunWriter(db, durable=False)
        self.scheduler = Scheduler(random.Random(f"{seed}:0:order"))
        self.services = LocalServices(catalog, plan, world, self.writer, self.timing, self.scheduler, seed=seed,
                                      epoch=epoch)
        self.stats = self.services.stats
        self._timing_rng = random.Random(f"{seed}:0:timing")
        self._trace = self.writer.deliveries
        self.definition = state_machine_definition(catalog, plan)
        self.runner = TaskRunner(catalog)
        self._functions = {plan.function_arn(s.name): s.name for s in plan.services}
        self._rule_names = {r.subscription: r.name for r in plan.rules}
        self._task_output: list[Envelope] | None = None  # while a Task's events are recorded: its output
        self._task_latency = self._starts = self._transitions = self._model = None
        if self.timing.simulated:
            self._model = StepFunctionsModel(self.timing.quotas, self.timing.profile, workflow)
            self._task_latency, self._starts, self._transitions = (self._model.task_latency, self._model.starts,
                                                                   self._model.transitions)
        self.recorder: ExecutionRecorder | None = None
        self.executions = self.executions_succeeded = self.executions_failed = self.transitions = 0
        self.execution_seconds = self.express_billed_seconds = 0.0
        self.db.execute("BEGIN")

    # ---------------------------------------------------------------- the Bus interface

    def put_events(self, entries: Iterable[dict], *, sender: str) -> dict:
        """Publish entries as service ``sender``: recorded; the saga's start event starts an execution.
        Returns PutEvents' per-entry answer ``{"FailedEntryCount", "Entries"}``, as every backend's bus does."""
        return self.services.put_events(prepare_put_events(self.catalog, sender, entries), self.vt,
                                        on_event=self._started)

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point now (e.g. ``place_order``, whose event starts an execution)."""
        result, uow, prepared = self.services.call(service, entrypoint, payload)
        self.services.apply(service, uow)
        self.services.record(prepared, self.services.admitted(prepared, self.vt), on_event=self._started)
        return result

    def redrive(self, dead_letter_ids: Iterable[int] | None = None) -> int:
        """Nothing to redrive: a Task's failure is caught by the state machine, which has no dead-letter queue."""
        return 0

    def replay(self, start: float, end: float, *, name: str = "replay", rules: Iterable[str] | None = None) -> int:
        """Refused: a state machine has no event archive (replay is an EventBridge feature).

        Raises
        ------
        BackendError
            always, saying so.
        """
        raise BackendError("the orchestration style has no event archive to replay: replay is EventBridge's "
                           "(run the choreography, --style choreography)")

    def commit(self) -> None:
        """Write everything buffered and commit."""
        self.services.commit()

    def close(self) -> None:
        """Nothing to release: the runner lives in this process."""

    def report(self) -> dict:
        """State writes, executions and state transitions (what Step Functions would bill), and the timing model's facts."""
        facts: dict = {"state_writes": self.writer.writes, "orchestration": {
            "state_machine": self.plan.state_machine, "workflow": self.workflow,
            "executions": self.executions, "executions_succeeded": self.executions_succeeded,
            "executions_failed": self.executions_failed, "state_transitions": self.transitions,
            "execution_seconds": round(self.execution_seconds, 3),
            "express_billed_seconds": round(self.express_billed_seconds, 1),
            **(self._model.report() if self._model is not None else
               {"starts_throttled": 0, "transitions_throttled": 0, "transitions_throttle_delay_s": 0.0}),
        }}
        if self.timing.simulated:
            facts["simulation"] = {**self.timing.report(), "virtual_seconds": round(self.vt, 3)}
        return facts

    def _started(self, envelope: Envelope, published_vt: float) -> None:
        # No rules here: the start event starts an execution; every other event is a Task's output.
        if envelope["detail-type"] == self.catalog.bus.start_event:
            self._start_execution(envelope, published_vt)
        elif self._task_output is not None:
            self._task_output.append(envelope)


    # ---------------------------------------------------------------- the interpreter

    def _start_execution(self, envelope: dict, t: float) -> None:
        if self._starts is not None:
            t = self._starts.admit(t)
        self.executions += 1
        last = self.recorder.start(envelope["detail"].get("order_id")) if self.recorder is not None else None
        thread = _Thread(self.definition["States"], _Execution(started=t), None, 0, last)
        self._enter(thread, self.definition["StartAt"], {"emitted": envelope["detail-type"], "event": envelope}, t)

    def _enter(self, thread: _Thread, name: str, data, t: float) -> None:
        self.transitions += 1
        if self.recorder is not None:
            thread.last = self.recorder.transition(thread.last)
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
                self._enter(_Thread(branch["States"], thread.execution, join, index, thread.last), branch["StartAt"],
                            data, t)
        elif kind == "Succeed":
            self._end_thread(thread, data, t)
        else:
            raise OrchestrationError(f"state {name!r} is a {kind} state; the local runner runs "
                                     "Task, Choice, Parallel and Succeed states")

    def _invoke(self, thread: _Thread, name: str, data, reserved: tuple[float, float] | None = None) -> None:
        state = thread.states[name]
        parameters = _resolve(state["Parameters"], data)
        service = self._functions[parameters["FunctionName"]]
        timing, vt = self.timing, self.scheduler.vt
        if reserved is None:
            start, end = timing.reserve(service, vt)
            if end is None or start > vt:  # every environment the function may have is busy: wait for one
                self.schedule(start, partial(self._invoke, thread, name, data, None if end is None else (start, end)))
                return
        else:
            start, end = reserved
        payload = parameters["Payload"]
        event_id = task_event(payload)["id"]
        rule = self._rule_names[payload["rule"]]
        uow = self.services.unit_of_work(service)
        try:
            prepared = self.runner.run(payload, uow)
        except Exception as exc:  # the handler failed: the Task fails with the exception's name, as in Lambda
            if self.recorder is not None:
                thread.last = self.recorder.task(thread.last, service, rule, [])
            self.stats.failed += 1
            self._trace.append((event_id, rule, service, 1, timing.now(start), timing.now(end), "failed",
                                f"{type(exc).__name__}: {exc}"))
            self.schedule(end, partial(self._caught, thread, name, data, lambda_error(exc)))
            return
        self.services.apply(service, uow)
        self.writer.processed.add((rule, event_id))
        published: list[Envelope] = []
        self._task_output = published
        self.services.record(prepared, self.services.admitted(prepared, end), on_event=self._started,
                             published_by=f"{rule}#{event_id}")
        self._task_output = None
        if self.recorder is not None:
            thread.last = self.recorder.task(thread.last, service, rule, [e["detail-type"] for e in published])
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
            self._end_thread(thread, output, t)
        else:
            self._enter(thread, state["Next"], output, t)

    def _end_thread(self, thread: _Thread, output, t: float) -> None:
        join = thread.join
        if join is None:
            seconds = t - thread.execution.started
            self.executions_succeeded += 1
            self.execution_seconds += seconds
            self.express_billed_seconds += math.ceil(seconds / EXPRESS_BILLING_STEP - 1e-9) * EXPRESS_BILLING_STEP
            return
        join.outputs[thread.index] = output
        join.lasts[thread.index] = thread.last
        join.remaining -= 1
        if join.remaining == 0:
            if self.recorder is not None:
                join.thread.last = self.recorder.join(join.lasts)
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
