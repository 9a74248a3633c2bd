"""The Amazon States Language as the local Step Functions runner applies it: reference paths, a state's input and
output processing (``InputPath``, ``Parameters``, ``ResultSelector``, ``ResultPath``, ``OutputPath``), error names,
retriers and catchers, and the checks Step Functions makes of a definition before it runs one.

Sources: "Handling errors in Step Functions workflows",
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html (retriers, catchers, error names);
"Processing input and output in Step Functions",
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-input-output-filtering.html, and "Paths",
https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html (``InputPath`` and
``OutputPath`` ``null`` give ``{}``, ``ResultPath`` ``null`` keeps the input, ``ResultPath`` merges into the state's
raw input, reference paths name one node with ``.`` and ``[ ]`` only); "Task workflow state",
https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html (``TimeoutSeconds``: a Task that runs longer
fails with ``States.Timeout``). Where a construct is not modelled (JSONata, intrinsic functions, ``Map`` and ``Wait``
states, paths beyond reference paths, Choice rules other than ``StringEquals``, heartbeats, ``TimeoutSecondsPath``)
the definition is refused before it runs, naming the state, rather than run differently from AWS.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Any, Callable

from yafdp.plan.step_functions import OrchestrationError

# Error names the States language defines ("Error names", concepts-error-handling).
ALL = "States.ALL"
TASK_FAILED = "States.TaskFailed"
TIMEOUT = "States.Timeout"
RUNTIME = "States.Runtime"
RESULT_PATH_MATCH_FAILURE = "States.ResultPathMatchFailure"
DATA_LIMIT_EXCEEDED = "States.DataLimitExceeded"
NO_CHOICE_MATCHED = "States.NoChoiceMatched"
# "States.ALL ... cannot catch States.DataLimitExceeded terminal error or Runtime error types", and States.Runtime
# "is not retriable, and will always cause the execution to fail" (concepts-error-handling.html#states-runtime-error):
# no ErrorEquals matches it, not even one naming it.
_NOT_CAUGHT_BY_ALL = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED})
NEVER_HANDLED = frozenset({RUNTIME})

# A retrier's defaults and bounds (concepts-error-handling: IntervalSeconds 1, MaxAttempts 3, BackoffRate 2.0;
# "MaxAttempts ... A value of 0 specifies that the error is never retried"; BackoffRate at least 1.0).
RETRIER_DEFAULTS = {"IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}
JITTER_STRATEGIES = ("FULL", "NONE")
STATE_TYPES = ("Task", "Choice", "Parallel", "Succeed", "Fail", "Pass")
# The one Choice rule the runner evaluates (a rule's Comment is allowed too).
CHOICE_RULE_FIELDS = frozenset({"Variable", "StringEquals", "Next"})
# Task fields the runner cannot run as AWS would: its Tasks are Lambda request-response calls, which send no
# heartbeats (SendTaskHeartbeat is for activities and the callback and job-run patterns,
# https://docs.aws.amazon.com/step-functions/latest/APIReference/API_SendTaskHeartbeat.html), and it reads no
# timeout from the state input.
UNMODELLED_TASK_FIELDS = ("HeartbeatSeconds", "HeartbeatSecondsPath", "TimeoutSecondsPath")


class StatesError(Exception):
    """An error a state reports, as Step Functions names it: ``error`` (e.g. ``States.Runtime``) and ``cause``."""

    def __init__(self, error: str, cause: str):
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause

    def output(self) -> dict:
        """The error output a catcher's ``ResultPath`` places: ``{"Error", "Cause"}``."""
        return {"Error": self.error, "Cause": self.cause}


# ---------------------------------------------------------------- paths

_STEP = re.compile(r"\.([A-Za-z_$][\w$-]*)|\['([^']*)'\]|\[(\d+)\]")


@lru_cache(maxsize=1024)
def reference_path(path: str) -> tuple:
    """The steps of a reference path (``$``, ``$.a.b``, ``$['a b']``, ``$.list[0]``, or the same from ``$$``, the
    context object): object keys (str) and array indexes (int).

    Raises :class:`~yafdp.plan.step_functions.OrchestrationError` for anything else (wildcards, filters, slices:
    paths that name more than one node, which the runner does not model).

    Examples
    --------
    >>> reference_path("$.order.items[0]['unit price']")
    ('order', 'items', 0, 'unit price')
    """
    body = path[2:] if path.startswith("$$") else path[1:] if path.startswith("$") else None
    if body is None:
        raise OrchestrationError(f"path {path!r} must start with $")
    steps, pos = [], 0
    while pos < len(body):
        match = _STEP.match(body, pos)
        if match is None:
            raise OrchestrationError(f"path {path!r}: the local runner reads reference paths only (. and [ ] steps: "
                                     "no wildcards, filters or slices)")
        key, quoted, index = match.groups()
        steps.append(int(index) if index is not None else key if key is not None else quoted)
        pos = match.end()
    return tuple(steps)


def read_path(data: Any, path: str, context: dict | None = None) -> Any:
    """The node ``path`` names in ``data`` (or, for a ``$$`` path, in the ``context`` object).

    Raises :class:`StatesError` ``States.Runtime`` when it does not exist, as Step Functions fails the state.
    """
    node = context if path.startswith("$$") else data
    for step in reference_path(path):
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                raise StatesError(RUNTIME, f"The JSONPath {path!r} could not be found in the input")
        elif not isinstance(node, dict) or step not in node:
            raise StatesError(RUNTIME, f"The JSONPath {path!r} could not be found in the input")
        node = node[step]
    return node


def select(data: Any, path: str | None) -> Any:
    """``InputPath`` or ``OutputPath`` applied to ``data``: ``None`` (JSON null) gives ``{}``; absent is ``$``."""
    if path is None:
        return {}
    return data if path == "$" else read_path(data, path)


def fill(template: Any, data: Any, context: dict | None = None) -> Any:
    """A ``Parameters`` or ``ResultSelector`` template filled from ``data``: a key ending in ``.$`` takes the value
    its path names (and loses the ``.$``; the value is shared, not copied: states never change their input in
    place); nested objects and arrays are filled the same way.

    Raises :class:`StatesError` ``States.Runtime`` for a path that names nothing.
    """
    return filler(template)(data, context)


def filler(template: Any) -> Callable[[Any, dict | None], Any]:
    """:func:`fill` for one template, worked out once: ``filler(template)(data, context)``."""
    if isinstance(template, dict):
        parts = [(key[:-2], 0, value) if key.endswith(".$") else
                 (key, 1, filler(value)) if isinstance(value, (dict, list)) else (key, 2, value)
                 for key, value in template.items()]

        def fill_object(data, context=None):
            return {key: read_path(data, value, context) if kind == 0 else value(data, context) if kind == 1 else value
                    for key, kind, value in parts}
        return fill_object
    if isinstance(template, list):
        items = [filler(item) for item in template]
        return lambda data, context=None: [item(data, context) for item in items]
    return lambda data, context=None: template


def place(raw_input: Any, result: Any, path: str | None) -> Any:
    """``ResultPath``: the state's result placed in its raw input. ``None`` (null) discards the result and keeps the
    input; ``$`` (the default) makes the result the whole output; ``$.a.b`` sets that node in a copy of the input,
    making the objects on the way that do not exist.

    Raises :class:`StatesError` ``States.ResultPathMatchFailure`` when a node on the way exists and is not an
    object (or the input itself is not one), as Step Functions reports it.

    Examples
    --------
    >>> place({"a": 1}, {"ok": True}, "$.x.y")
    {'a': 1, 'x': {'y': {'ok': True}}}
    >>> place({"a": 1}, 7, None), place({"a": 1}, 7, "$")
    ({'a': 1}, 7)
    """
    if path is None:
        return raw_input
    steps = reference_path(path)
    if not steps:
        return result
    if path.startswith("$$"):
        raise OrchestrationError(f"ResultPath {path!r} cannot name the context object")
    # The input is shared (a Parallel state's branches get the same one): copy the containers on the path only.
    output = _shallow(raw_input)
    node = output
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if isinstance(step, int):
            fits = isinstance(node, list) and step < len(node)
        else:
            fits = isinstance(node, dict)
        if not fits:
            raise StatesError(RESULT_PATH_MATCH_FAILURE, f"Unable to apply ResultPath {path!r} to the state's input")
        if last:
            node[step] = result
        else:
            child = _shallow(node[step]) if isinstance(step, int) or step in node else {}
            node[step] = child
            node = child
    return output


def _shallow(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else list(value) if isinstance(value, list) else value


# ---------------------------------------------------------------- errors, retriers and catchers


def choose(name: str, state: dict, data) -> str:
    """The state a Choice state ``name`` goes to for ``data``: the first rule whose ``Variable`` ``StringEquals`` its
    value (the one rule the runner evaluates: :func:`check_definition` refuses any other), else its ``Default``.

    Raises :class:`StatesError` ``States.NoChoiceMatched`` when no rule matches and there is no ``Default``, and
    ``States.Runtime`` when a ``Variable`` names nothing."""
    for rule in state["Choices"]:
        if read_path(data, rule["Variable"]) == rule["StringEquals"]:
            return rule["Next"]
    if "Default" not in state:
        raise StatesError(NO_CHOICE_MATCHED, f"no choice rule of state {name!r} matched, and it has no Default")
    return state["Default"]


def error_matches(names: list[str], error: str) -> bool:
    """Whether an ``ErrorEquals`` list names ``error``: itself, ``States.ALL`` (any error but ``States.Runtime`` and
    ``States.DataLimitExceeded``), or ``States.TaskFailed`` (any error a task reports, not ``States.Timeout`` nor
    another ``States.`` error: "acts as a wildcard that matches any known error name except for States.Timeout").
    ``States.Runtime`` matches nothing, not even ``["States.Runtime"]``: it "is not retriable, and will always cause
    the execution to fail" (concepts-error-handling.html#states-runtime-error).

    Examples
    --------
    >>> error_matches(["States.TaskFailed"], "ValueError"), error_matches(["States.TaskFailed"], "States.Timeout")
    (True, False)
    >>> error_matches(["States.ALL"], "States.Runtime"), error_matches(["States.Runtime"], "States.Runtime")
    (False, False)
    """
    if error in NEVER_HANDLED:
        return False
    if error in names:
        return True
    if ALL in names:
        return error not in _NOT_CAUGHT_BY_ALL
    return TASK_FAILED in names and not error.startswith("States.")


def retry_delay(retrier: dict, retries_so_far: int, rng: random.Random) -> float | None:
    """Seconds to wait before the next try under ``retrier``, which has retried ``retries_so_far`` times in this
    visit of the state, or None when its ``MaxAttempts`` are used up (then the catchers run).

    ``IntervalSeconds × BackoffRate^retries``, at most ``MaxDelaySeconds``, then with ``JitterStrategy`` ``FULL`` a
    random delay from 0 to that ("Calculates the delay to be a random number between 0 and the computed backoff").

    Examples
    --------
    >>> [retry_delay({"ErrorEquals": ["X"], "IntervalSeconds": 3, "BackoffRate": 1.5}, n, None) for n in range(4)]
    [3.0, 4.5, 6.75, None]
    >>> retry_delay({"ErrorEquals": ["X"], "IntervalSeconds": 10, "MaxDelaySeconds": 15}, 2, None)
    15.0
    """
    if retries_so_far >= retrier.get("MaxAttempts", RETRIER_DEFAULTS["MaxAttempts"]):
        return None
    delay = retrier.get("IntervalSeconds", RETRIER_DEFAULTS["IntervalSeconds"]) * \
        retrier.get("BackoffRate", RETRIER_DEFAULTS["BackoffRate"]) ** retries_so_far
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, retrier["MaxDelaySeconds"])
    if retrier.get("JitterStrategy", "NONE") == "FULL":
        delay = rng.uniform(0, delay)
    return float(delay)


# ---------------------------------------------------------------- checking a definition


def next_retry(retriers, error: str, retries: list[int], rng: random.Random) -> tuple[int, float] | None:
    """The retry a state's ``Retry`` list makes after ``error``: the first retrier whose ``ErrorEquals`` names it,
    as ``(its index, seconds to wait)`` (:func:`retry_delay`; ``retries[index]`` counts its retries so far), or
    None when no retrier names it or the first that does has used its ``MaxAttempts`` (the catchers decide then)."""
    for index, retrier in enumerate(retriers):
        if error_matches(retrier["ErrorEquals"], error):
            delay = retry_delay(retrier, retries[index], rng)
            return None if delay is None else (index, delay)
    return None


def catcher_for(catchers, error: str) -> dict | None:
    """The first catcher of a state's ``Catch`` list whose ``ErrorEquals`` names ``error``, or None."""
    return next((c for c in catchers if error_matches(c["ErrorEquals"], error)), None)


def check_definition(definition: dict) -> None:
    """Refuse, naming the state, a definition Step Functions would refuse in what the runner models, or one that uses
    what the runner does not model.

    Checked: every state's type is one the runner runs (Task, Choice, Parallel, Succeed, Fail, Pass); transitions
    name states of their own scope; a Choice state's rules are ``StringEquals`` rules (``Variable``, a reference
    path; ``StringEquals``, a string; ``Next``); a Task's ``TimeoutSeconds`` is a positive whole number, and it has
    no ``HeartbeatSeconds``, ``HeartbeatSecondsPath`` or ``TimeoutSecondsPath``; a retrier's ``ErrorEquals`` is a non-empty list, ``States.ALL`` alone in it and
    only in the last retrier (and the same for catchers); ``IntervalSeconds`` and ``MaxDelaySeconds`` are positive
    whole numbers, ``MaxAttempts`` a whole number from 0, ``BackoffRate`` at least 1.0, ``JitterStrategy`` ``FULL``
    or ``NONE``; paths are reference paths; no JSONata and no intrinsic functions.

    Raises :class:`~yafdp.plan.step_functions.OrchestrationError`.
    """
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise OrchestrationError("the local runner runs JSONPath state machines, not JSONata ones")
    _check_scope(definition, "the state machine")


def _check_scope(scope: dict, where: str) -> None:
    states = scope.get("States")
    if not isinstance(states, dict) or scope.get("StartAt") not in states:
        raise OrchestrationError(f"{where}: StartAt must name one of its States")
    for name, state in states.items():
        kind = state.get("Type")
        if kind not in STATE_TYPES:
            raise OrchestrationError(f"state {name!r} is a {kind} state; the local runner runs "
                                     f"{', '.join(STATE_TYPES)} states")
        targets = [state.get("Next"), state.get("Default")] + [c.get("Next") for c in state.get("Catch", ())] \
            + [c.get("Next") for c in state.get("Choices", ())]
        for target in targets:
            if target is not None and target not in states:
                raise OrchestrationError(f"state {name!r}: Next {target!r} is not a state of {where}")
        if kind not in ("Choice", "Succeed", "Fail") and not state.get("End") and "Next" not in state:
            raise OrchestrationError(f"state {name!r} has neither Next nor End")
        if kind == "Choice":
            _check_choices(name, state.get("Choices"))
        if kind == "Task":
            _check_task_timeouts(name, state)
        for field in ("InputPath", "OutputPath", "ResultPath"):
            if state.get(field) is not None:
                reference_path(state[field])
        for field in ("Parameters", "ResultSelector", "Result"):
            if field in state:
                _check_template(state[field], name)
        _check_handlers(name, state.get("Retry", ()), "Retry", retrier=True)
        _check_handlers(name, state.get("Catch", ()), "Catch", retrier=False)
        for index, branch in enumerate(state.get("Branches", ())):
            _check_scope(branch, f"branch {index} of {name!r}")


def _check_choices(state: str, rules: Any) -> None:
    """A Choice state's rules, each ``{"Variable", "StringEquals", "Next"}`` (and an optional ``Comment``): the only
    rule the runner evaluates. Anything else (another comparison operator, ``And``/``Or``/``Not``) is refused here,
    before the run, rather than when an execution reaches it."""
    if not isinstance(rules, list) or not rules:
        raise OrchestrationError(f"state {state!r}: Choices must be a non-empty list of rules")
    for index, rule in enumerate(rules):
        where = f"state {state!r}: Choices[{index}]"
        fields = set(rule) - {"Comment"} if isinstance(rule, dict) else set()
        if fields != CHOICE_RULE_FIELDS:
            extra, missing = sorted(fields - CHOICE_RULE_FIELDS), sorted(CHOICE_RULE_FIELDS - fields)
            what = f"uses {', '.join(extra)}" if extra else f"lacks {', '.join(missing)}"
            raise OrchestrationError(f"{where} {what}: the local runner evaluates StringEquals rules only "
                                     "(Variable, StringEquals, Next)")
        if not isinstance(rule["Variable"], str) or not isinstance(rule["StringEquals"], str):
            raise OrchestrationError(f"{where}: Variable must be a path and StringEquals a string")
        reference_path(rule["Variable"])


def _check_task_timeouts(state: str, task: dict) -> None:
    """``TimeoutSeconds`` "must be a positive integer" (state-task.html); the fields the runner cannot model
    (:data:`UNMODELLED_TASK_FIELDS`) are refused."""
    for field in UNMODELLED_TASK_FIELDS:
        if field in task:
            raise OrchestrationError(f"state {state!r}: {field} is not modelled by the local runner (its Lambda "
                                     "Tasks send no heartbeats and it reads no timeout from the input); use "
                                     "TimeoutSeconds")
    if "TimeoutSeconds" in task and not _whole(task["TimeoutSeconds"], 1):
        raise OrchestrationError(f"state {state!r}: TimeoutSeconds must be a positive whole number of seconds, "
                                 f"got {task['TimeoutSeconds']!r}")


def _check_template(template: Any, state: str) -> None:
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str) or not value.startswith("$"):
                    raise OrchestrationError(f"state {state!r}: {key} takes a path; intrinsic functions "
                                             f"({value!r}) are not run by the local runner")
                reference_path(value)
            else:
                _check_template(value, state)
    elif isinstance(template, list):
        for item in template:
            _check_template(item, state)


def _whole(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _check_handlers(state: str, handlers: list, field: str, *, retrier: bool) -> None:
    for index, handler in enumerate(handlers):
        where = f"state {state!r}: {field}[{index}]"
        names = handler.get("ErrorEquals")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise OrchestrationError(f"{where}: ErrorEquals must be a non-empty list of error names")
        if ALL in names and (len(names) > 1 or index != len(handlers) - 1):
            raise OrchestrationError(f"{where}: States.ALL must appear alone in ErrorEquals, and only in the last "
                                     f"{'retrier' if retrier else 'catcher'}")
        if not retrier:
            continue
        bad = [key for key, ok in (
            ("IntervalSeconds", _whole(handler.get("IntervalSeconds", 1), 1)),
            ("MaxAttempts", _whole(handler.get("MaxAttempts", 0), 0)),
            ("MaxDelaySeconds", _whole(handler.get("MaxDelaySeconds", 1), 1)),
            ("BackoffRate", isinstance(handler.get("BackoffRate", 1.0), (int, float))
             and not isinstance(handler.get("BackoffRate", 1.0), bool) and handler.get("BackoffRate", 1.0) >= 1.0),
            ("JitterStrategy", handler.get("JitterStrategy", "NONE") in JITTER_STRATEGIES)) if not ok]
        if bad:
            raise OrchestrationError(f"{where}: {bad[0]} is not valid ({handler[bad[0]]!r})")
