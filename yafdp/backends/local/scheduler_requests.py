"""What the EventBridge Scheduler API accepts as a request, checked against botocore's own service model for
``scheduler`` (the model the AWS SDKs are generated from), so that the local EventBridge Scheduler accepts exactly the
request shape AWS's does: member names, types, required members, and the documented lengths, ranges, enums and
patterns (:class:`~yafdp.model_validation.ModelValidator`: botocore's ``ParamValidator`` and what it leaves
to the service; "CreateSchedule", https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html;
"FlexibleTimeWindow", https://docs.aws.amazon.com/scheduler/latest/APIReference/API_FlexibleTimeWindow.html:
``MaximumWindowInMinutes`` "Type: Integer. Valid Range: Minimum value of 1. Maximum value of 1440.").
"""

from __future__ import annotations

from functools import lru_cache

from yafdp.model_validation import ModelValidator


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
    return "; ".join(errors.lines()) if errors.has_errors() else None


@lru_cache(maxsize=None)
def input_shape(operation: str):
    """The input shape of an EventBridge Scheduler operation, from botocore's service model (loaded at first use)."""
    from botocore.session import get_session

    return get_session().get_service_model("scheduler").operation_model(operation).input_shape


_VALIDATOR = ModelValidator()
