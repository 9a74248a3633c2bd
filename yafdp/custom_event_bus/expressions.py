"""JSONata as the Custom Event Bus uses it: a transformer's expression and target-parameter values.

A target-parameter value is "either a literal or one whole ``{% ... %}`` expression (embedded expressions are
not evaluated)", evaluated with ``$events`` bound to one event's ``{"Data", "Metadata", "SystemMetadata"}`` for
per-event blocks such as ``SqsParameters``; it must return a string. A ``JSONATA`` transformer's result: a
string is delivered without quotes, an object, array, number or Boolean as JSON, ``null``/undefined is a
transformation failure (UG "Transforming events",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-transform.html). The language itself is
jsonata-python's (a maintained port of the reference implementation); EventBridge's extra functions
(``$hash``, ``$uuid``, ...) are not provided and say so when called.

The expressions a plan writes for every delivery (``$events.SystemMetadata.EventGroupId``, a path joined to a
literal with ``&``) are answered without jsonata-python's interpreter, which takes about 0.2 ms each: an
expression made only of string literals, paths of plain field names from ``$events`` and ``&`` is read from
jsonata-python's own parse into a Python function (:func:`_direct`), which answers when every field it walks is
an object and every path ends at a string, exactly what the interpreter answers then; anything else (an array on
the way, a missing field, another kind of value) is left to the interpreter.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import jsonata

from yafdp.custom_event_bus.errors import invalid


class TransformationError(Exception):
    """An expression threw, or produced nothing: the delivery fails with ``INPUT_TRANSFORMATION_FAILURE``."""


def is_expression(value: str) -> bool:
    """Whether a parameter value is one whole ``{% ... %}`` expression (else it is a literal)."""
    text = value.strip()
    return text.startswith("{%") and text.endswith("%}")


@lru_cache(maxsize=512)
def compile_expression(text: str, member: str = "Expression") -> jsonata.Jsonata:
    """Parse a ``{% ... %}`` expression (or a bare JSONata expression); raises ``InvalidInputException`` naming
    ``member`` when it does not parse ("every JSONata expression must parse", UG subscribers)."""
    body = text.strip()
    if body.startswith("{%") and body.endswith("%}"):
        body = body[2:-2]
    try:
        return jsonata.Jsonata(body)
    except Exception as exc:  # jsonata-python raises its JException for syntax errors
        raise invalid(member, f"the JSONata expression does not parse: {exc}") from None


# What a node of jsonata-python's parse may carry besides its kind and value and still be a plain literal, field
# name, path or ``&``: no predicate, stage, focus, index, group or sort on it.
_PLAIN_ATTRIBUTES = frozenset({"_outer_instance", "id", "value", "type", "position", "bp", "lbp", "level", "steps",
                               "lhs", "rhs"})
_UNANSWERED = object()  # what a direct function returns when the interpreter must answer


def _plain(node) -> bool:
    return all(not value or name in _PLAIN_ATTRIBUTES for name, value in vars(node).items())


def _direct(node) -> Callable[[object], object] | None:
    """``node`` (jsonata-python's parse) as a function of ``$events`` that returns the expression's string, or
    :data:`_UNANSWERED` where a field on the way is missing or not an object, or a path ends at something other than
    a string; None when ``node`` is not a string literal, a path of field names from ``$events``, or ``&`` of them.

    >>> parts = {"SystemMetadata": {"EventGroupId": "ord-1", "aws:EventId": "e-1"}}
    >>> _direct(jsonata.Jsonata('$events.SystemMetadata."aws:EventId" & "#" & $events.SystemMetadata.EventGroupId').ast)(parts)
    'e-1#ord-1'
    >>> _direct(jsonata.Jsonata("$events.SystemMetadata.missing").ast)(parts) is _UNANSWERED
    True
    >>> _direct(jsonata.Jsonata("$events.SystemMetadata[0]").ast) is None
    True
    """
    if not _plain(node):
        return None
    if node.type == "string" and isinstance(node.value, str):
        literal = node.value
        return lambda events: literal
    if node.type == "path" and node.steps and node.steps[0].type == "variable" and node.steps[0].value == "events" \
            and all(_plain(step) for step in node.steps) and all(step.type == "name" for step in node.steps[1:]):
        names = tuple(step.value for step in node.steps[1:])

        def path(events):
            for name in names:
                if not isinstance(events, dict):
                    return _UNANSWERED
                events = events.get(name, _UNANSWERED)
            return events if isinstance(events, str) else _UNANSWERED
        return path
    if node.type == "binary" and node.value == "&":
        left, right = _direct(node.lhs), _direct(node.rhs)
        if left is None or right is None:
            return None

        def joined(events):
            first, second = left(events), right(events)
            return _UNANSWERED if first is _UNANSWERED or second is _UNANSWERED else first + second
        return joined
    return None


@lru_cache(maxsize=512)
def _direct_function(text: str) -> Callable[[object], object] | None:
    return _direct(compile_expression(text).ast)


def evaluate(text: str, events) -> object:
    """Evaluate an expression with ``$events`` bound to ``events``; raises :class:`TransformationError`."""
    direct = _direct_function(text)
    if direct is not None:
        answer = direct(events)
        if answer is not _UNANSWERED:
            return answer
    expression = compile_expression(text)
    frame = expression.create_frame()
    frame.bind("events", events)
    try:
        return expression.evaluate(None, frame)
    except Exception as exc:
        raise TransformationError(f"the expression failed: {exc}") from None


def parameter_value(value: str, events) -> str:
    """A target parameter's value for ``events`` (one event's parts): the literal, or the expression's string
    result. Raises :class:`TransformationError` when the expression fails or does not return a string."""
    if not is_expression(value):
        return value
    result = evaluate(value, events)
    if not isinstance(result, str):
        raise TransformationError(f"the expression {value.strip()} returned {type(result).__name__}, not a string")
    return result


def transformed(text: str, events) -> object:
    """A ``JSONATA`` transformer's output for one event (what the target receives, before serialisation)."""
    result = evaluate(text, events)
    if result is None:
        raise TransformationError(f"the expression {text.strip()} produced nothing (null or undefined)")
    return result
