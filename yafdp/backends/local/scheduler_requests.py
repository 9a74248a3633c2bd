"""What the EventBridge Scheduler API accepts as a request, checked against botocore's own service model for
``scheduler`` (the model the AWS SDKs are generated from), so that the local EventBridge Scheduler accepts exactly the
request shape AWS's does: member names, types, required members, and the documented lengths, ranges, enums and
patterns ("CreateSchedule", https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html;
"FlexibleTimeWindow", https://docs.aws.amazon.com/scheduler/latest/APIReference/API_FlexibleTimeWindow.html:
``MaximumWindowInMinutes`` "Type: Integer. Valid Range: Minimum value of 1. Maximum value of 1440.").

botocore's :class:`~botocore.validate.ParamValidator` checks names, types, required members and the minimum of a
length or range; it leaves the rest to the service. :class:`ModelValidator` is that validator, also checking what the
model documents and the service checks: the maximum of a length or range, an enum's values and a pattern, and it
refuses a ``bool`` where the model says a number (in Python ``bool`` is an ``int``, which botocore lets through:
``True`` is no Integer on the wire). A pattern is matched whole: botocore's model writes ``[0-9a-zA-Z-_.]+`` for a
Name, the AWS SDK for JavaScript's model of the same API ``^[0-9a-zA-Z-_.]+$``
(https://raw.githubusercontent.com/aws/aws-sdk-js/master/apis/scheduler-2021-06-30.normal.json), and a name with a
space in it is no name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from botocore.validate import ParamValidator, ValidationErrors


def request_refusal(operation: str, request: dict) -> str | None:
    """Why the EventBridge Scheduler API refuses ``request`` to ``operation`` (e.g. ``"CreateSchedule"``): one line
    naming each member it refuses and why, in botocore's words (its ``ParamValidationError``, for names, types,
    required members and minimums; the service's ``ValidationException`` for the rest), or None when the request has
    the operation's shape.

    Examples
    --------
    >>> request_refusal("CreateSchedule", {"Name": "d-1", "ScheduleExpression": "at(2030-01-01T00:00:00)",
    ...     "Target": {"Arn": "arn:aws:lambda:eu-west-1:123456789012:function:f",
    ...                "RoleArn": "arn:aws:iam::123456789012:role/r"},
    ...     "FlexibleTimeWindow": {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": True}})
    "Invalid type for parameter FlexibleTimeWindow.MaximumWindowInMinutes, value: True, type: <class 'bool'>, valid types: <class 'int'>"
    """
    errors = _VALIDATOR.validate(request, input_shape(operation))
    return errors.generate_report() if errors.has_errors() else None


@lru_cache(maxsize=None)
def input_shape(operation: str):
    """The input shape of an EventBridge Scheduler operation, from botocore's service model (loaded at first use)."""
    from botocore.session import get_session

    return get_session().get_service_model("scheduler").operation_model(operation).input_shape


class _Errors(ValidationErrors):
    """botocore's errors, with the ones :class:`ModelValidator` adds, in one line."""

    def generate_report(self) -> str:
        return "; ".join(self._format_error(error) for error in self._errors)

    def _format_error(self, error) -> str:
        kind, name, more = error
        name = self._get_name(name)
        if kind == "above maximum":
            return f"Invalid value for parameter {name}, value: {more['param']}, valid max value: {more['max']}"
        if kind == "too long":
            return f"Invalid length for parameter {name}, value: {more['param']}, valid max length: {more['max']}"
        if kind == "not in enum":
            return (f"Invalid value for parameter {name}, value: {more['param']!r}, valid values: "
                    f"{', '.join(more['enum'])}")
        if kind == "pattern":
            return f"Invalid value for parameter {name}, value: {more['param']!r}, must match the pattern {more['pattern']} (whole)"
        return super()._format_error(error)


class ModelValidator(ParamValidator):
    """botocore's :class:`~botocore.validate.ParamValidator` that also checks a shape's documented ``max``,
    ``enum`` and ``pattern``, and refuses a ``bool`` for a number. ``validate(params, shape)`` returns the errors
    (``has_errors()``, ``generate_report()``: one line)."""

    def __init__(self):
        self._limits: dict[object, tuple] = {}  # shape -> (min, max, enum, compiled pattern, pattern), read once

    def _limit(self, shape) -> tuple:
        limits = self._limits.get(shape)
        if limits is None:
            metadata = shape.metadata
            pattern = metadata.get("pattern")
            least = metadata.get("min", 1 if shape.serialization.get("hostLabel") else None)  # botocore's range_check
            limits = self._limits[shape] = (least, metadata.get("max"), metadata.get("enum"),
                                            re.compile(pattern) if pattern else None, pattern)
        return limits

    def validate(self, params, shape) -> _Errors:
        errors = _Errors()
        self._validate(params, shape, errors, name="")
        return errors

    def _validate_string(self, param, shape, errors, name):
        # botocore's own checks of a string (a str, of the minimum length), done here with the model's limits read once
        # (this is the walk's commonest leaf), then the rest
        if not isinstance(param, str):
            errors.report(name, "invalid type", param=param, valid_types=[str(str)])
            return
        least, most, enum, pattern, text = self._limit(shape)
        if least is not None and len(param) < least:
            errors.report(name, "invalid length", param=len(param), min_allowed=least)
        elif most is not None and len(param) > most:
            errors.report(name, "too long", param=len(param), max=most)
        elif enum and param not in enum:
            errors.report(name, "not in enum", param=param, enum=enum)
        elif pattern is not None and pattern.fullmatch(param) is None:
            errors.report(name, "pattern", param=param, pattern=text)

    def _validate_number(self, base, param, shape, errors, name):
        if isinstance(param, bool):
            errors.report(name, "invalid type", param=param, valid_types=[str(int)])
            return
        before = len(errors._errors)
        base(self, param, shape, errors, name)
        most = self._limit(shape)[1]
        if len(errors._errors) == before and most is not None and param > most:
            errors.report(name, "above maximum", param=param, max=most)

    def _validate_integer(self, param, shape, errors, name):
        self._validate_number(ParamValidator._validate_integer, param, shape, errors, name)

    def _validate_long(self, param, shape, errors, name):
        self._validate_number(ParamValidator._validate_long, param, shape, errors, name)

    def _validate_double(self, param, shape, errors, name):
        self._validate_number(ParamValidator._validate_double, param, shape, errors, name)

    _validate_float = _validate_double

    def _validate_list(self, param, shape, errors, name):
        before = len(errors._errors)
        super()._validate_list(param, shape, errors, name)
        if len(errors._errors) == before:
            self._length(param, shape, errors, name)

    def _validate_map(self, param, shape, errors, name):
        before = len(errors._errors)
        super()._validate_map(param, shape, errors, name)
        if len(errors._errors) == before:
            self._length(param, shape, errors, name)

    def _length(self, param, shape, errors, name):
        most = self._limit(shape)[1]
        if most is not None and len(param) > most:
            errors.report(name, "too long", param=len(param), max=most)


_VALIDATOR = ModelValidator()
