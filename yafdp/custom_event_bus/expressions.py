"""JSONata as the Custom Event Bus uses it: a transformer's expression and target-parameter values.

A target-parameter value is "either a literal or one whole ``{% ... %}`` expression (embedded expressions are
not evaluated)", evaluated with ``$events`` bound to one event's ``{"Data", "Metadata", "SystemMetadata"}`` for
per-event blocks such as ``SqsParameters``; it must return a string. A ``JSONATA`` transformer's result: a
string is delivered without quotes, an object, array, number or Boolean as JSON, ``null``/undefined is a
transformation failure (UG "Transforming events",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-transform.html). The language itself is
jsonata-python's (a maintained port of the reference implementation); EventBridge's extra functions
(``$hash``, ``$uuid``, ...) are not provided and say so when called.
"""

from __future__ import annotations

from functools import lru_cache

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


def evaluate(text: str, events) -> object:
    """Evaluate an expression with ``$events`` bound to ``events``; raises :class:`TransformationError`."""
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
