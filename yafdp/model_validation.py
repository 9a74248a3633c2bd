"""A request checked against its operation's shape in a botocore service model, as the AWS service checks it: botocore's
own :class:`~botocore.validate.ParamValidator` (what its clients check before they send: member names, types, required
members, the minimum of a length or a range), and what botocore leaves to the service although the model documents
it: the maximum of a length or a range, and (:attr:`ModelValidator.enums_and_patterns`) an enum's values and a
pattern. A ``bool`` where the model says a number is refused: Python's ``bool`` is an ``int``, which botocore lets
through, and ``True`` is no Integer on any of AWS's wires.

A pattern is matched whole: botocore's models write them unanchored (``[0-9a-zA-Z-_.]+`` for an EventBridge Scheduler
Name), the AWS SDK for JavaScript's models of the same APIs anchored (``^[0-9a-zA-Z-_.]+$``,
https://raw.githubusercontent.com/aws/aws-sdk-js/master/apis/scheduler-2021-06-30.normal.json), and a name with a
space in it is no name.

Used by the local EventBridge Scheduler (:mod:`yafdp.backends.local.scheduler_requests`) and the Custom Event Bus
endpoint (:mod:`yafdp.custom_event_bus.wire`).
"""

from __future__ import annotations

import re

from botocore.validate import ParamValidator, ValidationErrors


class ModelErrors(ValidationErrors):
    """botocore's errors (``has_errors()``; ``generate_report()``, one a line; :meth:`lines`), with the ones
    :class:`ModelValidator` adds, in botocore's words."""

    def lines(self) -> list[str]:
        """Each error, in the order found."""
        return [self._format_error(error) for error in self._errors]

    def _format_error(self, error) -> str:
        kind, name, more = error
        name = self._get_name(name)
        if kind == "over the maximum value":
            return f"Invalid value for parameter {name}, value: {more['param']}, valid max value: {more['max_allowed']}"
        if kind == "over the maximum length":
            return (f"Invalid length for parameter {name}, value: {more['param']}, valid max length: "
                    f"{more['max_allowed']}")
        if kind == "not in enum":
            return (f"Invalid value for parameter {name}, value: {more['param']!r}, valid values: "
                    f"{', '.join(more['enum'])}")
        if kind == "not the pattern":
            return (f"Invalid value for parameter {name}, value: {more['param']!r}, must match the pattern "
                    f"{more['pattern']} (whole)")
        return super()._format_error(error)


class ModelValidator(ParamValidator):
    """botocore's :class:`~botocore.validate.ParamValidator` that also checks a shape's ``max`` (of a string's, a
    list's or a map's length, of a number) and, with :attr:`enums_and_patterns`, its ``enum`` and ``pattern``, and
    refuses a ``bool`` for a number. ``validate(params, shape)`` returns :class:`ModelErrors`."""

    enums_and_patterns = True
    errors = ModelErrors  # the class of what validate returns

    def __init__(self):
        self._limits: dict[object, tuple] = {}  # shape -> (min, max, enum, compiled pattern, pattern), read once

    def _limit(self, shape) -> tuple:
        limits = self._limits.get(shape)
        if limits is None:
            metadata = shape.metadata
            pattern = metadata.get("pattern") if self.enums_and_patterns else None
            least = metadata.get("min", 1 if shape.serialization.get("hostLabel") else None)  # botocore's range_check
            limits = self._limits[shape] = (least, metadata.get("max"),
                                            metadata.get("enum") if self.enums_and_patterns else None,
                                            re.compile(pattern) if pattern else None, pattern)
        return limits

    def validate(self, params, shape) -> ModelErrors:
        errors = self.errors()
        self._validate(params, shape, errors, name="")
        return errors

    def _validate_string(self, param, shape, errors, name):
        # botocore's own checks of a string (a str, of the minimum length), done here with the model's limits read once
        # (the commonest leaf of a request), then the rest
        if not isinstance(param, str):
            errors.report(name, "invalid type", param=param, valid_types=[str(str)])
            return
        least, most, enum, pattern, text = self._limit(shape)
        if least is not None and len(param) < least:
            errors.report(name, "invalid length", param=len(param), min_allowed=least)
        elif most is not None and len(param) > most:
            errors.report(name, "over the maximum length", param=len(param), max_allowed=most)
        elif enum and param not in enum:
            errors.report(name, "not in enum", param=param, enum=enum)
        elif pattern is not None and pattern.fullmatch(param) is None:
            errors.report(name, "not the pattern", param=param, pattern=text)

    def _validate_number(self, botocores, param, shape, errors, name):
        if isinstance(param, bool):
            errors.report(name, "invalid type", param=param, valid_types=[str(int)])
            return
        botocores(self, param, shape, errors, name)
        most = self._limit(shape)[1]
        if most is not None and isinstance(param, (int, float)) and param > most:
            errors.report(name, "over the maximum value", param=param, max_allowed=most)

    def _validate_integer(self, param, shape, errors, name):
        self._validate_number(ParamValidator._validate_integer, param, shape, errors, name)

    def _validate_long(self, param, shape, errors, name):
        self._validate_number(ParamValidator._validate_long, param, shape, errors, name)

    def _validate_double(self, param, shape, errors, name):
        self._validate_number(ParamValidator._validate_double, param, shape, errors, name)

    _validate_float = _validate_double

    def _validate_list(self, param, shape, errors, name):
        super()._validate_list(param, shape, errors, name)
        if isinstance(param, (list, tuple)):
            self._length(param, shape, errors, name)

    def _validate_map(self, param, shape, errors, name):
        super()._validate_map(param, shape, errors, name)
        if isinstance(param, dict):
            self._length(param, shape, errors, name)

    def _length(self, param, shape, errors, name):
        most = self._limit(shape)[1]
        if most is not None and len(param) > most:
            errors.report(name, "over the maximum length", param=len(param), max_allowed=most)
