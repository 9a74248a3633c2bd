"""The local Step Functions runner: the generated state machine run over the services' own handlers.

It is the orchestration counterpart of the local bus and composes the same parts (the scheduler, the services
with their state in ``run.db``, the timing model), so :mod:`yafdp.analysis.check` and :mod:`yafdp.analysis.trace`
read its runs unchanged. What differs is who decides what runs next: a published event is recorded but routed
to no rule; the state machine invokes each subscriber as a Task, recorded as a delivery of its event under the
rule it stands for.

The States language is applied as Step Functions applies it (:mod:`yafdp.backends.local.asl`): input and output
processing, ``Retry`` before ``Catch``, and a ``Parallel`` state that fails as soon as one branch fails: "If any
branch fails, because of an unhandled error or by transitioning to a Fail state, the entire Parallel state fails and
all of its branches are stopped" (Parallel workflow state,
https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html). A branch's Task already invoked still
runs to its end, as a Lambda function does (its result is then ignored); nothing after it runs. The two workflow
types differ as "Standard vs. Express Workflows" documents
(https://docs.aws.amazon.com/step-functions/latest/dg/concepts-standard-vs-express.html) in what the runner models:
the maximum duration (one year, five minutes: an execution past it fails with ``States.Timeout``, and an Express
one is billed up to the limit), billing (Standard per state transition, retries included; Express per execution and
per 100 ms of duration, failed and timed-out executions included) and the quotas a simulated account applies
(StartExecution for both, state transitions for Standard only). A Task's ``TimeoutSeconds`` ("If the task runs longer
than the specified seconds, this state fails with a States.Timeout error", Task workflow state,
https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html) runs on the virtual clock from when the attempt
starts (Step Functions' task latency and the wait for a Lambda execution environment count); each retry is a new
attempt with its own timeout (the docs are silent on this; it is the runner's choice). A result at exactly the
timeout is in time ("longer than"). A handler already running when its Task times out runs to its end, its result
ignored, as a Lambda function does; one not yet started is not invoked. A callback Task (``.waitForTaskToken``) has
the same deadline: its outcome is the answer sent back with its token, not its function's return. Not modelled:
Express's at-least-once execution of asynchronous workflows (an execution here runs once), execution history,
heartbeats (refused).
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterable

from yafdp.catalog import Catalog
from yafdp.errors import BackendError, RefusedError
from yafdp.plan import DeploymentPlan
from yafdp.plan.step_functions import (OrchestrationError, callback_timeout_rules, is_callback, is_lambda_invoke,
                                       state_machine_definition, walk_states)
from yafdp.plan.workflow_types import runner_type
from yafdp.runtime import rundb
from yafdp.runtime.envelope import CLOCK_ORIGIN, epoch_of, make_envelope
from yafdp.runtime.interfaces import TimingModel
from yafdp.runtime.publishing import prepare_put_events
from yafdp.runtime.unit_of_work import Envelope
from yafdp.simulation.recording import ExecutionRecorder
from yafdp.simulation.step_functions import WORKFLOWS, StepFunctionsModel

from yafdp.backends.local import asl
from yafdp.backends.local.run_writer import RunWriter
from yafdp.backends.local.scheduler import Scheduler
from yafdp.backends.local.services import InProcessDriving, LocalServices
from yafdp.backends.local.timing import MeasuredTiming
from yafdp.backends.tasks import SagaStepFailedError, TaskRunner, lambda_error, task_event

EXPRESS_BILLING_STEP = 0.1  # seconds: Express workflow duration is billed in 100 ms steps
# "Maximum duration: 1 year (Standard), 5 minutes (Express)" (Standard vs. Express Workflows), as data/workflows.json
# quotes it.
MAX_DURATION_SECONDS = {workflow: float(runner_type(workflow).max_duration_seconds) for workflow in WORKFLOWS}


@dataclass
class _Execution:
    """One execution: when it started, when it must end by, and how it ended (``RUNNING`` until then)."""

    started: float
    deadline: float
    status: str = "RUNNING"
    error: dict | None = None

    @property
    def running(self) -> bool:
        return self.status == "RUNNING"


class _Join:
    """A Parallel state waiting for its branches: the visit of the state, the outputs so far, whether a branch
    failed (which fails the state and stops the others), and (when the runner records) each branch's last step."""

    __slots__ = ("visit", "outputs", "remaining", "failed", "lasts")

    def __init__(self, visit: "_Visit", branches: int):
        self.visit = visit
        self.outputs: list = [None] * branches
        self.remaining, self.failed = branches, False
        self.lasts: list[int | None] = [None] * branches


class _Thread:
    """Where one branch of an execution is: the states of its scope and the Parallel state it reports to, and
    (when the runner records) the id of the last step it took."""

    __slots__ = ("states", "execution", "join", "index", "last")

    def __init__(self, states: dict, execution: _Execution, join: _Join | None, index: int, last: int | None):
        self.states, self.execution, self.join, self.index, self.last = states, execution, join, index, last

    @property
    def alive(self) -> bool:
        """Whether the thread may still run: its execution runs and no Parallel state above it has failed."""
        if not self.execution.running:
            return False
        join = self.join
        while join is not None:
            if join.failed:
                return False
            join = join.visit.thread.join
        return True


@dataclass
class _Visit:
    """One visit of a Task, Parallel or Pass state: its raw input, what it runs with, each retrier's retries, and for
    a Task with ``TimeoutSeconds``, when the current attempt times out (virtual seconds), when its outcome arrives
    (once it is invoked; for a callback Task, once the person answers) and the attempt that timed out (0: none), and
    for a callback Task, the current attempt's task token and whether the person answered it."""

    thread: _Thread
    name: str
    raw_input: object
    effective: object = None
    retries: list[int] = field(default_factory=list)
    attempt: int = 1
    entered: float = 0.0
    deadline: float | None = None
    outcome_at: float | None = None
    timed_out: int = 0
    token: str | None = None  # a callback Task's current attempt's task token ($$.Task.Token)
    answered: bool = False  # a callback Task's person has answered this attempt: its handler runs now
    handed: bool = False  # a callback Task's function has handed a token on in this visit (its event reached it)
    decided: bool = False  # a callback Task's person's decision (its handler's work) was committed in this visit

    @property
    def current(self) -> bool:
        """Whether the Task's current attempt still waits for its outcome (it has not timed out)."""
        return self.timed_out != self.attempt


class LocalStepFunctions(InProcessDriving):
    """A Step Functions workflow (``standard`` or ``express``) in this process, with the plan's services as Tasks.

    A run drives it as it drives the bus (:class:`~yafdp.runtime.interfaces.Bus`). The start event an entry point
    publishes starts an execution; with a simulated timing each Task waits for the profile's Step Functions
    task latency and for a Lambda execution environment, executions start within the StartExecution quota and
    a Standard workflow's state transitions within theirs (:class:`~yafdp.simulation.step_functions.StepFunctionsModel`).

    ``recorder``, when set (an :class:`~yafdp.simulation.recording.ExecutionRecorder`), hears every execution's
    start, states entered, Tasks run and Parallel branches joined: each order's causal graph, for the replay.

    ``definition`` replaces the state machine generated from the catalog (e.g. one edited to add a ``Retry``), and
    ``handlers`` replace some rules' handlers (by catalog rule name), e.g. one that fails in a test.

    A callback Task (``lambda:invoke.waitForTaskToken``, a Standard workflow's only) invokes its function with a task
    token and waits: until :meth:`send_task_success` or :meth:`send_task_failure` with that token, or its
    ``TimeoutSeconds`` (it then fails with ``States.Timeout``): the same per-attempt deadline as any Task's, from when
    the attempt starts, the person's answer being the attempt's outcome. Each attempt (a retry) hands on a new token;
    an earlier attempt's token is answered no more (the docs are silent; it is the runner's choice). Locally the
    function hands the token to a person, who takes their time: ``responder(token, payload)`` is asked when the Task
    is invoked, and returns the seconds after which the person answers, or None when nobody ever does. The person's
    decision is the handler's (the marketplace decides it, as in the choreography), made and published when they
    answer, then sent back with the token.

    Raises :class:`~yafdp.errors.RefusedError` for an unknown ``workflow``, and
    :class:`~yafdp.plan.step_functions.OrchestrationError` for a definition the runner cannot run as Step Functions
    would (see :func:`yafdp.backends.local.asl.check_definition`), a callback Task in an Express workflow included.
    """

    def __init__(self, catalog: Catalog, plan: DeploymentPlan, world: Any, db: sqlite3.Connection, *,
                 seed: int = 0, timing: TimingModel | None = None, workflow: str = "standard",
                 commit_every: int = 5000, epoch: float = CLOCK_ORIGIN, definition: dict | None = None,
                 handlers: dict[str, Callable] | None = None, responder: Callable | None = None):
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
        # A schedule's event (a saga's deadline) is recorded as published; like every event but the start event, no
        # rule routes it here: the state machine decides what runs.
        self.services.use_scheduler(lambda name, entry: self.services.record(
            [entry], self.vt, on_event=self._started, published_by=f"schedule#{name}"))
        self._timing_rng = random.Random(f"{seed}:0:timing")
        self._jitter = random.Random(f"{seed}:0:jitter")
        self._trace = self.writer.deliveries
        self._waiting: dict[str, _Visit] = {}  # task token -> the callback Task waiting for it
        self._tokens = random.Random(f"{seed}:0:tokens")
        self.use_definition(definition if definition is not None else state_machine_definition(catalog, plan), responder)
        self.runner = TaskRunner(catalog, handlers)
        self._functions = {plan.function_arn(s.name): s.name for s in plan.services}
        self._functions.update({s.function: s.name for s in plan.services})
        self._rule_names = {r.subscription: r.name for r in plan.rules}
        self._task_output: list[Envelope] | None = None  # while a Task's events are recorded: its output
        self._task_latency = self._starts = self._transitions = self._model = None
        if self.timing.simulated:
            self._model = StepFunctionsModel(self.timing.quotas, self.timing.profile, workflow)
            self._task_latency, self._starts, self._transitions = (self._model.task_latency, self._model.starts,
                                                                   self._model.transitions)
        self.recorder: ExecutionRecorder | None = None
        self.executions = self.executions_succeeded = self.executions_failed = self.executions_timed_out = 0
        self.transitions = 0
        self.execution_seconds = self.express_billed_seconds = 0.0
        self.db.execute("BEGIN")

    def use_definition(self, definition: dict, responder: Callable | None = None) -> None:
        """Run ``definition`` from now on (e.g. the generated one with a human step,
        :func:`~yafdp.plan.step_functions.with_human_step`), with ``responder`` for its callback Tasks.

        Raises :class:`~yafdp.plan.step_functions.OrchestrationError` for a definition the runner cannot run as Step
        Functions would, a callback Task in an Express workflow included (nothing is changed then)."""
        asl.check_definition(definition)
        refuse_callbacks(definition, self.workflow)
        self.definition, self.responder = definition, responder
        timeouts = callback_timeout_rules(definition)
        if timeouts:  # the checker accepts these rules' publications on the event their callback Task waited on
            rundb.set_info(self.db, callback_timeout_rules=timeouts)
        self._fillers: dict[int, Callable] = {}  # by id of a template of this definition
        self.max_duration = MAX_DURATION_SECONDS[self.workflow]
        if "TimeoutSeconds" in definition:
            self.max_duration = min(self.max_duration, float(definition["TimeoutSeconds"]))

    # ---------------------------------------------------------------- the Bus interface

    def put_events(self, entries: Iterable[dict], *, sender: str) -> dict:
        """Publish entries as service ``sender``: recorded; the saga's start event starts an execution.
        Returns PutEvents' per-entry answer ``{"FailedEntryCount", "Entries"}``, as every backend's bus does."""
        return self.services.put_events(prepare_put_events(self.catalog, sender, entries), self.vt,
                                        on_event=self._started)

    def call(self, service: str, entrypoint: str, payload) -> object:
        """Call a service's API entry point now (e.g. ``place_order``, whose event starts an execution).

        An exception (such as ``OrderRejectedError``, or :class:`~yafdp.runtime.envelope.PublishError` when a
        simulated account throttles its PutEvents past the client's retries) propagates with nothing stored or
        published, as on the bus."""
        result, uow, prepared, published_vt = self.services.call(service, entrypoint, payload, self.vt)
        self.services.apply(service, uow)
        self.services.record(prepared, published_vt, on_event=self._started)
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
        facts: dict = {"state_writes": self.writer.writes, "state_reads": self.writer.reads,
                       "scheduler": self.services.schedules.report(), "orchestration": {
            "state_machine": self.plan.state_machine, "workflow": self.workflow,
            "executions": self.executions, "executions_succeeded": self.executions_succeeded,
            "executions_failed": self.executions_failed, "executions_timed_out": self.executions_timed_out,
            "state_transitions": self.transitions,
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

    # ---------------------------------------------------------------- executions

    def _start_execution(self, envelope: dict, t: float) -> None:
        if self._starts is not None:
            t = self._starts.admit(t)
        self.executions += 1
        execution = _Execution(started=t, deadline=t + self.max_duration)
        last = self.recorder.start(self.catalog.saga.saga_id(envelope["detail"])) if self.recorder is not None else None
        thread = _Thread(self.definition["States"], execution, None, 0, last)
        self._enter(thread, self.definition["StartAt"], {"emitted": envelope["detail-type"], "event": envelope}, t)

    def _alive(self, thread: _Thread, t: float) -> bool:
        """Whether ``thread`` may take its next step at ``t``; an execution past its maximum duration times out
        there (its deadline): it fails with States.Timeout and is billed up to the deadline."""
        execution = thread.execution
        if execution.running and t > execution.deadline:
            self._end_execution(execution, "TIMED_OUT", execution.deadline,
                                {"Error": asl.TIMEOUT, "Cause": f"the execution ran past its maximum duration of "
                                                                f"{self.max_duration:g} s ({self.workflow})"})
        return thread.alive

    def _end_execution(self, execution: _Execution, status: str, t: float, error: dict | None = None,
                       output=None) -> None:
        """The execution ends at ``t`` with ``status`` (``SUCCEEDED`` with ``output``, ``FAILED`` or ``TIMED_OUT``
        with ``error``), counted and billed."""
        execution.status, execution.error = status, error
        if status == "SUCCEEDED":
            self.executions_succeeded += 1
        elif status == "TIMED_OUT":
            self.executions_timed_out += 1
        else:
            self.executions_failed += 1
        seconds = max(0.0, t - execution.started)
        self.execution_seconds += seconds
        self.express_billed_seconds += math.ceil(seconds / EXPRESS_BILLING_STEP - 1e-9) * EXPRESS_BILLING_STEP

    # ---------------------------------------------------------------- states

    def _enter(self, thread: _Thread, name: str, data, t: float) -> None:
        if not self._alive(thread, t):
            return
        self.transitions += 1
        if self.recorder is not None:
            thread.last = self.recorder.transition(thread.last)
        if self._transitions is not None:
            t = self._transitions.admit(t)
        state = thread.states[name]
        kind = state["Type"]
        try:
            if kind == "Task":
                visit = _Visit(thread, name, data, entered=t)
                if not is_callback(state["Resource"]):  # a callback Task's parameters carry each attempt's token
                    visit.effective = self._parameters(state, name, data, t)
                self._schedule_task(visit, t)
            elif kind == "Choice":
                effective = asl.select(data, state.get("InputPath", "$"))
                chosen = asl.choose(name, state, effective)
                self._enter(thread, chosen, asl.select(effective, state.get("OutputPath", "$")), t)
            elif kind == "Parallel":
                self._start_branches(_Visit(thread, name, data, self._parameters(state, name, data, t)), t)
            elif kind == "Pass":
                effective = self._parameters(state, name, data, t)
                self._next(thread, state, self._output(state, data, state.get("Result", effective)), t)
            elif kind == "Succeed":
                effective = asl.select(data, state.get("InputPath", "$"))
                self._end_thread(thread, asl.select(effective, state.get("OutputPath", "$")), t)
            else:  # Fail: its Error and Cause (both optional) are the branch's or the execution's failure
                self._thread_failed(thread, {"Error": state.get("Error", ""), "Cause": state.get("Cause", "")}, t)
        except asl.StatesError as exc:  # an input or output path that names nothing: the state fails
            self._state_failed(_Visit(thread, name, data), exc.output(), t)

    def _parameters(self, state: dict, name: str, data, t: float, token: str | None = None):
        """``InputPath`` then ``Parameters``: what the state works on (``$$`` reads the context object, as far as the
        runner keeps one: the state's name and when it was entered, the state machine's name, a callback Task's
        token)."""
        effective = asl.select(data, state.get("InputPath", "$"))
        if "Parameters" in state:
            context = {"State": {"Name": name, "EnteredTime": t}, "StateMachine": {"Name": self.plan.state_machine}}
            if token is not None:
                context["Task"] = {"Token": token}
            effective = self._filler(state["Parameters"])(effective, context)
        return effective

    def _filler(self, template):
        filler = self._fillers.get(id(template))  # the templates live as long as the definition, as this runner
        if filler is None:
            filler = self._fillers[id(template)] = asl.filler(template)
        return filler

    def _output(self, state: dict, raw_input, result):
        """``ResultSelector`` (a Task's or Parallel's), ``ResultPath`` into the raw input, then ``OutputPath``."""
        if "ResultSelector" in state:
            result = self._filler(state["ResultSelector"])(result, None)
        placed = asl.place(raw_input, result, state.get("ResultPath", "$"))
        return asl.select(placed, state.get("OutputPath", "$"))

    def _next(self, thread: _Thread, state: dict, output, t: float) -> None:
        if state.get("End"):
            self._end_thread(thread, output, t)
        else:
            self._enter(thread, state["Next"], output, t)

    def _end_thread(self, thread: _Thread, output, t: float) -> None:
        join = thread.join
        if join is None:
            self._end_execution(thread.execution, "SUCCEEDED", t, output=output)
            return
        join.outputs[thread.index] = output
        join.lasts[thread.index] = thread.last
        join.remaining -= 1
        if join.remaining == 0 and not join.failed:
            visit = join.visit
            if self.recorder is not None:
                visit.thread.last = self.recorder.join(join.lasts)
            state = visit.thread.states[visit.name]
            try:
                output = self._output(state, visit.raw_input, join.outputs)
            except asl.StatesError as exc:
                self._state_failed(visit, exc.output(), t)
                return
            self._next(visit.thread, state, output, t)

    # ---------------------------------------------------------------- Parallel

    def _start_branches(self, visit: _Visit, t: float) -> None:
        thread, state = visit.thread, visit.thread.states[visit.name]
        join = _Join(visit, len(state["Branches"]))
        for index, branch in enumerate(state["Branches"]):
            self._enter(_Thread(branch["States"], thread.execution, join, index, thread.last), branch["StartAt"],
                        visit.effective, t)

    # ---------------------------------------------------------------- Task

    def _schedule_task(self, visit: _Visit, t: float) -> None:
        delay = self._task_latency.sample(self._timing_rng) if self._task_latency is not None else 0.0
        state = visit.thread.states[visit.name]
        if is_callback(state["Resource"]):  # each attempt hands on a token of its own, answered by nobody yet
            visit.token, visit.answered = "%032x" % self._tokens.getrandbits(128), False
            visit.effective = self._parameters(state, visit.name, visit.raw_input, visit.entered, token=visit.token)
        timeout = state.get("TimeoutSeconds")
        if timeout is not None:  # this attempt's timeout, on the virtual clock
            visit.deadline, visit.outcome_at = t + timeout, None
            self.schedule(visit.deadline, partial(self._task_timed_out, visit, visit.attempt))
        self.schedule(t + delay, partial(self._invoke, visit))

    def _task_timed_out(self, visit: _Visit, attempt: int) -> None:
        """The attempt's ``TimeoutSeconds`` have passed: unless its outcome arrives by then (or it is no longer the
        current attempt), the Task fails with States.Timeout, which Retry and Catch then handle as any error."""
        if attempt != visit.attempt or (visit.outcome_at is not None and visit.outcome_at <= visit.deadline):
            return
        visit.timed_out = attempt
        timeout = visit.thread.states[visit.name]["TimeoutSeconds"]
        if visit.token is not None and self._waiting.pop(visit.token, None) is not None:
            cause = f"Task {visit.name!r} had no answer within its TimeoutSeconds ({timeout} s)"
        else:
            cause = f"Task {visit.name!r} ran longer than its TimeoutSeconds ({timeout} s)"
        if self._alive(visit.thread, self.scheduler.vt):
            self._state_failed(visit, {"Error": asl.TIMEOUT, "Cause": cause}, self.scheduler.vt)

    def _invoke(self, visit: _Visit, reserved: tuple[float, float] | None = None) -> None:
        thread, vt = visit.thread, self.scheduler.vt
        if not self._alive(thread, vt) or not visit.current:
            return  # stopped (a sibling branch failed), or timed out (the Task or the execution) before it was invoked
        state = thread.states[visit.name]
        function, payload = _lambda_call(state, visit.effective)
        service = self._functions.get(function)
        if service is None:
            visit.outcome_at = vt
            self._state_failed(visit, {"Error": "Lambda.ResourceNotFoundException",
                                       "Cause": f"Function not found: {function}"}, vt)
            return
        timing = self.timing
        if reserved is None:
            start, end = timing.reserve(service, vt)
            visit.outcome_at = end
            if end is None or start > vt:  # every environment the function may have is busy: wait for one
                self.schedule(start, partial(self._invoke, visit, None if end is None else (start, end)))
                return
        else:
            start, end = reserved
        event_id = task_event(payload)["id"]
        rule = self._rule_names[payload["rule"]]
        attempt = visit.attempt
        if visit.token is not None and not visit.answered:  # the function hands the token to the person and returns
            self.stats.delivered += 1
            # the event reached the function when it first handed a token on; a retry's hand-off delivers it again
            outcome, visit.handed = "duplicate" if visit.handed else "ok", True
            self._trace.append((event_id, rule, service, attempt, timing.now(start), timing.now(end), outcome, None))
            self._hand_token_on(visit, end)
            return
        recorder = self.recorder
        # a retry after the work was committed (a callback Task's hand-off recorded its event delivered, not decided)
        if visit.decided if visit.token is not None else attempt > 1 and self.writer.is_processed(rule, event_id):
            published = self._published_by(f"{rule}#{event_id}")
            if recorder is not None:  # the function ran again and published nothing new
                thread.last = recorder.task(thread.last, service, rule, [])
            self._trace.append((event_id, rule, service, attempt, timing.now(start), timing.now(end), "duplicate", None))
        else:
            uow = self.services.unit_of_work(service)
            try:
                prepared = self.runner.run(payload, uow)
                # a simulated account may throttle the function's PutEvents: past the SDK's retries the function
                # fails (a DeliveryError, ThrottlingException), and nothing of its work is stored
                accepted = self.services.admitted(prepared, end)
            except Exception as exc:  # the handler failed: the Task fails with the exception's name, as in Lambda
                if recorder is not None:
                    thread.last = recorder.task(thread.last, service, rule, [])
                self.stats.failed += 1
                self._trace.append((event_id, rule, service, attempt, timing.now(start), timing.now(end), "failed",
                                    f"{type(exc).__name__}: {exc}"))
                self.schedule(end, partial(self._task_failed, visit, lambda_error(exc), attempt))
                return
            self.services.apply(service, uow)
            self.writer.processed.add((rule, event_id))
            visit.decided = True
            published = []
            self._task_output = published
            self.services.record(prepared, accepted, on_event=self._started, published_by=f"{rule}#{event_id}")
            self._task_output = None
            if recorder is not None:
                thread.last = recorder.task(thread.last, service, rule, [e["detail-type"] for e in published])
            if not visit.answered:  # a callback Task's delivery was recorded when its function handed the token on
                self.stats.delivered += 1
                self._trace.append((event_id, rule, service, attempt, timing.now(start), timing.now(end), "ok", None))
        try:
            output = self.runner.output(published)
        except SagaStepFailedError as exc:
            self.schedule(end, partial(self._task_failed, visit, lambda_error(exc), attempt))
            return
        if visit.token is not None:  # the person's answer, sent with the token: SendTaskSuccess's output
            result = {"Payload": output}
        else:
            result = output if not is_lambda_invoke(state["Resource"]) else \
                {"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200}
        self.schedule(end, partial(self._task_succeeded, visit, result, attempt))

    # ---------------------------------------------------------------- callback Tasks (.waitForTaskToken)

    def _hand_token_on(self, visit: _Visit, at: float) -> None:
        """A callback Task's function was invoked and handed the attempt's token on at ``at``: the attempt's outcome
        is the person's (``responder``'s) answer, which the attempt's ``TimeoutSeconds`` deadline
        (:meth:`_task_timed_out`) waits for, as for any Task. The person's decision is the handler's (the marketplace
        decides it, as in the choreography), made and published when they answer, not before."""
        visit.outcome_at = None  # the function's return is not the outcome: the answer is
        self._waiting[visit.token] = visit
        delay = self.responder(visit.token, visit.effective.get("Payload", {})) if self.responder else None
        if delay is not None:
            self.scheduler.timer(at + float(delay), self._person_answers, (visit.token,))

    def waiting(self) -> list[dict]:
        """The callback Tasks waiting for a token now: ``{"token", "state", "order_id"}`` each."""
        return [{"token": token, "state": visit.name,
                 "order_id": task_event(visit.effective.get("Payload", {})).get("detail", {}).get("order_id")}
                for token, visit in self._waiting.items()]

    def _person_answers(self, token: str) -> None:
        """The person answers: their decision (the handler) is made and published now, and sent back with the token
        (SendTaskSuccess, or SendTaskFailure for a rejection) when the handler returns; the attempt's outcome is then,
        and it times out if that is past its deadline."""
        visit = self._waiting.pop(token, None)
        if visit is None:
            return  # the attempt timed out (or was answered through the API) before the answer
        visit.answered = True
        self._invoke(visit)

    def send_task_success(self, token: str, output) -> None:
        """SendTaskSuccess: the Task waiting for ``token`` succeeds with ``output`` (its result, which its
        ``ResultSelector`` and ``ResultPath`` then apply to).

        Raises :class:`~yafdp.errors.RefusedError` (``TaskTimedOut``, as Step Functions answers) for a token no Task
        waits for: one that timed out, or was answered already."""
        visit = self._claim(token)
        self._task_succeeded(visit, output, visit.attempt)

    def send_task_failure(self, token: str, error: str, cause: str = "") -> None:
        """SendTaskFailure: the Task waiting for ``token`` fails with ``error`` (its ``Retry`` and ``Catch`` apply).
        Raises :class:`~yafdp.errors.RefusedError` (``TaskTimedOut``) for a token no Task waits for."""
        visit = self._claim(token)
        self._task_failed(visit, {"Error": error, "Cause": cause}, visit.attempt)

    def _claim(self, token: str) -> _Visit:
        if token not in self._waiting:
            raise RefusedError(f"TaskTimedOut: no Task waits for the token {token[:12]}… (it timed out or was answered)")
        visit = self._waiting.pop(token)
        visit.outcome_at = self.scheduler.vt  # the answer is the attempt's outcome, in time: its deadline has not passed
        return visit

    def _published_by(self, marker: str) -> list[dict]:
        """The events a Task's committed work published (for a retry that finds the work done)."""
        self.writer.flush()
        rows = self.db.execute("SELECT event_id, source, detail_type, detail, time FROM events WHERE published_by = ?"
                               " ORDER BY seq", (marker,)).fetchall()
        return [make_envelope(event_id, source, detail_type, json.loads(detail), epoch_of(time))
                for event_id, source, detail_type, detail, time in rows]

    def _task_succeeded(self, visit: _Visit, result, attempt: int) -> None:
        thread, vt = visit.thread, self.scheduler.vt
        if not self._alive(thread, vt) or attempt != visit.attempt or not visit.current:
            return  # the result of a Task whose branch was stopped, or that (or whose execution) timed out, is ignored
        state = thread.states[visit.name]
        try:
            output = self._output(state, visit.raw_input, result)
        except asl.StatesError as exc:
            self._state_failed(visit, exc.output(), vt)
            return
        self._next(thread, state, output, vt)

    def _task_failed(self, visit: _Visit, error: dict, attempt: int) -> None:
        if attempt != visit.attempt or not visit.current:
            return  # the outcome of an attempt that timed out is ignored
        if self._alive(visit.thread, self.scheduler.vt):
            self._state_failed(visit, error, self.scheduler.vt)

    # ---------------------------------------------------------------- errors: Retry, then Catch

    def _state_failed(self, visit: _Visit, error: dict, t: float) -> None:
        """A Task, Parallel or other state reported ``error``: the first retrier whose ``ErrorEquals`` names it
        retries the state if its ``MaxAttempts`` allow (each retrier counts its own retries in this visit of the
        state), else the first matching catcher sends the error output on, else the thread fails."""
        thread = visit.thread
        state = thread.states[visit.name]
        handles = state["Type"] in ("Task", "Parallel")  # only they have Retry and Catch
        retriers = state.get("Retry", ()) if handles else ()
        if len(visit.retries) < len(retriers):
            visit.retries = [0] * len(retriers)
        retry = asl.next_retry(retriers, error["Error"], visit.retries, self._jitter)
        if retry is not None:
            index, delay = retry
            visit.retries[index] += 1
            visit.attempt += 1
            self.transitions += 1  # "Retries are treated as state transitions" (billing)
            self.schedule(t + delay, partial(self._retry, visit))
            return
        catcher = asl.catcher_for(state.get("Catch", ()) if handles else (), error["Error"])
        if catcher is not None:
            try:
                output = asl.place(visit.raw_input, error, catcher.get("ResultPath", "$"))
            except asl.StatesError as exc:
                self._thread_failed(thread, exc.output(), t)
                return
            self._enter(thread, catcher["Next"], output, t)
            return
        self._thread_failed(thread, error, t)

    def _retry(self, visit: _Visit) -> None:
        vt = self.scheduler.vt
        if not self._alive(visit.thread, vt):
            return
        if visit.thread.states[visit.name]["Type"] == "Parallel":
            self._start_branches(visit, vt)
        else:
            self._schedule_task(visit, vt)

    def _thread_failed(self, thread: _Thread, error: dict, t: float) -> None:
        """Nothing caught ``error``: the execution fails, or, in a branch, the Parallel state fails with it and its
        other branches stop."""
        join = thread.join
        if join is None:
            self._end_execution(thread.execution, "FAILED", t, error)
            return
        if join.failed:
            return
        join.failed = True  # its other branches stop: nothing of theirs runs from now on
        self._state_failed(join.visit, error, t)


# ---------------------------------------------------------------- helpers


def refuse_callbacks(definition: dict, workflow: str) -> None:
    """Refuse a definition with a callback Task (``.waitForTaskToken``) for a ``workflow`` that cannot wait for a task
    token (an Express one, as data/workflows.json quotes AWS).

    Raises :class:`~yafdp.plan.step_functions.OrchestrationError` naming the state and quoting AWS."""
    kind = runner_type(workflow)
    callbacks = [name for name, state in walk_states(definition) if state["Type"] == "Task" and is_callback(state["Resource"])]
    if callbacks and not kind.callback_tasks:
        source = kind.sources["callback_tasks"]
        raise OrchestrationError(f"state {callbacks[0]!r} waits for a task token (.waitForTaskToken), which the workflow "
                                 f"type {kind.label} cannot do: \u201c{source['quote']}\u201d ({source['url']}); run it "
                                 "as a Standard workflow")


def _lambda_call(state: dict, effective) -> tuple[str, dict]:
    """The function a Task invokes and the payload it sends: ``arn:aws:states:::lambda:invoke`` takes them from
    its ``Parameters`` (``FunctionName``, ``Payload``); a Task whose ``Resource`` is a function's ARN sends its input."""
    resource = state["Resource"]
    if is_lambda_invoke(resource):
        if not isinstance(effective, dict) or "FunctionName" not in effective:
            raise OrchestrationError(f"Task {state.get('Comment', '')!r}: lambda:invoke needs Parameters.FunctionName")
        return effective["FunctionName"], effective.get("Payload", {})
    if ":lambda:" in resource and ":function:" in resource:
        return resource, effective
    raise OrchestrationError(f"Task resource {resource!r}: the local runner invokes Lambda functions only")
