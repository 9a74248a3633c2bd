"""A subscriber's configuration: the ``CreateSubscriber`` request checked against the model's ranges and the
user guide's rules, with AWS's defaults filled in, and ``UpdateSubscriber``'s rules for changing it.

Sources: the service model's ``CreateSubscriberRequest`` and member shapes
(https://docs.aws.amazon.com/eventbridgev2/latest/APIReference/API_CreateSubscriber.html); UG "Updating a
subscriber" for what may change and how a supplied block replaces the stored one whole
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-custom-bus-update.html); UG "Retrying event delivery"
for the retry defaults (5 retries / 300 s); UG "Batching" for batch sizes. SPEC.md section 4 digests them.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from yafdp.custom_event_bus import arns
from yafdp.custom_event_bus.choices import Choices
from yafdp.custom_event_bus.errors import ApiError, invalid
from yafdp.custom_event_bus.expressions import compile_expression, is_expression
from yafdp.custom_event_bus.filters import SubscriberFilter, compile_filters
from yafdp.custom_event_bus.limits import (BATCH_SIZE_RANGE, BATCH_WINDOW_RANGE, DEFAULT_MAX_EVENT_AGE_SECONDS,
                                          DEFAULT_MAX_RETRY_ATTEMPTS, INVOCATION_TIMEOUT_RANGE, INVOCATION_TYPES,
                                          LOG_LEVELS, LOG_PAYLOADS, MAX_DESCRIPTION_LENGTH, MAX_EVENT_AGE_RANGE,
                                          MAX_JSONATA_LENGTH, MAX_RETRY_ATTEMPTS_RANGE, MAX_TAGS, POINT_TYPES,
                                          RESUME_POSITIONS, RETRY_STRATEGIES, STARTING_POSITIONS, SUBSCRIBER_STATES,
                                          SUBSCRIBER_TYPES, TARGET_MAX_BATCH, TRANSFORMER_TYPES)

# The parameter block each kind of target takes (M InvokeConfiguration; CloudFormation accepts the same set).
PARAMETER_BLOCKS = {"sqs": "SqsParameters", "lambda": "LambdaParameters", "sns": "SnsParameters",
                    "kinesis": "KinesisParameters", "states": "StepFunctionsParameters",
                    "execute-api": "HttpParameters", "events": "EventBusV2Parameters",
                    "universal": "UniversalTargetParameters"}
ALL_BLOCKS = frozenset(PARAMETER_BLOCKS.values()) | {"MskParameters"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RetryPolicy:
    """``MaxRetryAttempts`` retries after the first attempt (so up to ``max_retry_attempts + 1`` attempts),
    stopping as soon as the event is older than ``max_event_age_seconds``: whichever comes first (UG retry)."""

    max_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    max_event_age_seconds: int = DEFAULT_MAX_EVENT_AGE_SECONDS

    def to_aws(self) -> dict:
        return {"MaxRetryAttempts": self.max_retry_attempts, "MaxEventAgeInSeconds": self.max_event_age_seconds,
                "RetryStrategy": "ALL"}


@dataclass(frozen=True)
class SubscriberConfig:
    """A checked subscriber configuration. ``request`` keeps the members as AWS names them (what
    ``DescribeSubscriber`` answers, defaults resolved); the other fields are what delivery reads."""

    name: str
    bus_arn: str
    target_arn: str
    target_kind: str
    role_arn: str
    fifo: bool
    filter: SubscriberFilter
    retry: RetryPolicy
    batch_size: int
    batch_window_seconds: int
    transformer: str
    expression: str | None
    on_failure_arn: str | None
    state: str
    starting_position: str
    point_type: str | None
    starting_point: float | None
    end_point: float | None
    parameters: dict
    request: dict = field(repr=False)

    @property
    def invocation_type(self) -> str | None:
        """``LambdaParameters.InvocationType`` for a function target (when not given,
        :attr:`~yafdp.custom_event_bus.choices.Choices.default_lambda_invocation_type`)."""
        return self.parameters.get("InvocationType") if self.target_kind == "lambda" else None


def _int_in(value, member: str, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise invalid(member, f"must be a whole number from {bounds[0]:,} to {bounds[1]:,}, got {value!r}")
    return value


def _one_of(value, member: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise invalid(member, f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def epoch(value, member: str) -> float:
    """A timestamp member as epoch seconds: a ``datetime`` (what botocore gives) or a number."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise invalid(member, f"must be a timestamp, got {value!r}")


def check_name(name, member: str = "Name") -> str:
    if not isinstance(name, str) or not arns.NAME.fullmatch(name):
        raise invalid(member, "must be 1 to 256 letters, digits, '.', '-' or '_', starting with a letter or digit; "
                      f"got {name!r}")
    return name


def check_tags(tags, member: str = "Tags") -> dict:
    if tags is None:
        return {}
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise invalid(member, "must map tag keys to string values")
    if len(tags) > MAX_TAGS:
        raise invalid(member, f"at most {MAX_TAGS} tags, got {len(tags)}")
    reserved = [k for k in tags if k.lower().startswith("aws:")]
    if reserved:
        raise invalid(member, f"tag keys starting with 'aws:' are reserved: {reserved[0]!r}")
    return dict(tags)


def check_create(request: dict, *, account: str, choices: Choices, now: float, window_start: float) -> SubscriberConfig:
    """Check a ``CreateSubscriber`` request (the bus already found and ``ACTIVE``) and resolve AWS's defaults.

    Raises ``InvalidInputException`` naming the first member that is wrong. What create does *not* check, as on
    AWS: whether the target exists and whether the role may reach it ("those surface at delivery", UG subscribers).
    """
    name = check_name(request.get("Name"))
    description = request.get("Description")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH
                                    or _CONTROL.search(description)):
        raise invalid("Description", f"at most {MAX_DESCRIPTION_LENGTH} characters, no control characters")
    invoke = request.get("InvokeConfiguration")
    if not isinstance(invoke, dict):
        raise invalid("InvokeConfiguration", "is required: TargetArn and RoleArn")
    target = invoke.get("TargetArn")
    kind = arns.target_kind(target) if isinstance(target, str) else None
    if kind is None:
        raise invalid("InvokeConfiguration.TargetArn", f"must be an ARN, got {target!r}")
    target_account = arns.arn_account(target)
    if target_account and target_account != account:
        raise invalid("InvokeConfiguration.TargetArn", f"the target must be in the subscriber's account {account}, "
                      f"not {target_account}")
    fifo = _one_of(request.get("Type", choices.default_type), "Type", SUBSCRIBER_TYPES) == "FIFO"
    parameters = _check_parameters(invoke, kind, choices, "InvokeConfiguration")
    role = _check_role(invoke.get("RoleArn"), account, "InvokeConfiguration.RoleArn")
    position = _one_of(request.get("StartingPosition", choices.default_starting_position), "StartingPosition",
                       STARTING_POSITIONS)
    point_type = starting_point = end_point = None
    pit = request.get("PointInTimeConfiguration")
    if position == "POINT_IN_TIME":
        if not isinstance(pit, dict):
            raise invalid("PointInTimeConfiguration", "is required with StartingPosition POINT_IN_TIME")
        point_type = _one_of(pit.get("PointType"), "PointInTimeConfiguration.PointType", POINT_TYPES)
        if point_type == "TIMESTAMP":
            if pit.get("StartingPoint") is None:
                raise invalid("PointInTimeConfiguration.StartingPoint", "is required with PointType TIMESTAMP")
            starting_point = epoch(pit["StartingPoint"], "PointInTimeConfiguration.StartingPoint")
            if starting_point > now:
                raise invalid("PointInTimeConfiguration.StartingPoint", "is in the future")
            if starting_point < window_start:
                raise invalid("PointInTimeConfiguration.StartingPoint", "is before the bus's RetentionWindowStartTime "
                              "(the earliest retained event); on a new bus that is its creation time (UG replay)")
        if pit.get("EndPoint") is not None:
            end_point = epoch(pit["EndPoint"], "PointInTimeConfiguration.EndPoint")
            if starting_point is not None and end_point <= starting_point:
                raise invalid("PointInTimeConfiguration.EndPoint", "must be after StartingPoint")
    elif pit is not None:
        raise invalid("PointInTimeConfiguration", "goes with StartingPosition POINT_IN_TIME only")
    if "ResumePosition" in request:
        raise invalid("ResumePosition", "is accepted by UpdateSubscriber only, on the call that moves a stopped "
                      "subscriber to RUNNING")
    state = _one_of(request.get("State", choices.default_state), "State", SUBSCRIBER_STATES)
    resolved = {"Name": name, "EventBusArn": request.get("EventBusArn"), "Type": "FIFO" if fifo else "UNORDERED",
                "StartingPosition": position, "State": state,
                "InvokeConfiguration": {"TargetArn": target, "RoleArn": role,
                                        **({PARAMETER_BLOCKS[kind]: parameters} if parameters else {})}}
    if description is not None:
        resolved["Description"] = description
    if pit is not None:
        resolved["PointInTimeConfiguration"] = copy.deepcopy(pit)
    config = SubscriberConfig(
        name=name, bus_arn=request.get("EventBusArn"), target_arn=target, target_kind=kind, role_arn=role, fifo=fifo,
        filter=compile_filters(None), retry=RetryPolicy(), batch_size=0, batch_window_seconds=0, transformer="RAW",
        expression=None, on_failure_arn=None, state=state, starting_position=position, point_type=point_type,
        starting_point=starting_point, end_point=end_point, parameters=parameters, request=resolved)
    return apply_mutable(config, request, account, choices)


def apply_mutable(config: SubscriberConfig, request: dict, account: str, choices: Choices, *,
                  update: bool = False) -> SubscriberConfig:
    """The members an ``UpdateSubscriber`` may change, applied to ``config``: an omitted member keeps its value,
    a supplied block replaces the stored one whole (``RetryPolicy`` with one member resets the other to its
    default; ``OnFailureConfiguration: {}`` removes the DLQ; ``Transformer.Type: RAW`` removes a transformer;
    ``FilterConfiguration: {}`` removes every filter) (UG update). On create every member is "supplied"."""
    resolved = copy.deepcopy(config.request)
    changes: dict = {}
    if update:
        for member in ("Name", "EventBusArn", "Type", "StartingPosition", "PointInTimeConfiguration"):
            if member in request:
                raise invalid(member, "cannot be changed after the subscriber is created (UG update): create a new "
                              "subscriber instead")
        invoke = request.get("InvokeConfiguration")
        if invoke is not None:
            if not isinstance(invoke, dict):
                raise invalid("InvokeConfiguration", "must be a structure")
            if "TargetArn" in invoke:
                raise invalid("InvokeConfiguration.TargetArn", "cannot be changed after the subscriber is created")
            parameters = _check_parameters(invoke, config.target_kind, choices, "InvokeConfiguration")
            role = _check_role(invoke.get("RoleArn", config.role_arn), account, "InvokeConfiguration.RoleArn")
            resolved["InvokeConfiguration"] = {"TargetArn": config.target_arn, "RoleArn": role,
                                               **({PARAMETER_BLOCKS[config.target_kind]: parameters} if parameters else {})}
            changes.update(role_arn=role, parameters=parameters)
        if "Description" in request:
            resolved["Description"] = request["Description"]
        if "State" in request:
            changes["state"] = resolved["State"] = _one_of(request["State"], "State", SUBSCRIBER_STATES)
    if "FilterConfiguration" in request or not update:
        filters = request.get("FilterConfiguration")
        if update and filters is not None and not filters.get("Filters") and set(filters) != set():
            raise invalid("FilterConfiguration", "an empty Filters list or a Language alone is not accepted: pass {} "
                          "to remove every filter (UG update)")
        compiled = compile_filters(filters or None)
        changes["filter"] = compiled
        resolved.pop("FilterConfiguration", None)
        if compiled.document is not None:
            resolved["FilterConfiguration"] = compiled.document
    if "RetryPolicy" in request or not update:
        retry = request.get("RetryPolicy") or {}
        if not isinstance(retry, dict):
            raise invalid("RetryPolicy", "must be a structure")
        _one_of(retry.get("RetryStrategy", "ALL"), "RetryPolicy.RetryStrategy", RETRY_STRATEGIES)
        policy = RetryPolicy(
            _int_in(retry.get("MaxRetryAttempts", DEFAULT_MAX_RETRY_ATTEMPTS), "RetryPolicy.MaxRetryAttempts",
                    MAX_RETRY_ATTEMPTS_RANGE),
            _int_in(retry.get("MaxEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_SECONDS), "RetryPolicy.MaxEventAgeInSeconds",
                    MAX_EVENT_AGE_RANGE))
        changes["retry"] = policy
        resolved["RetryPolicy"] = policy.to_aws()
    if "BatchConfiguration" in request or not update:
        batch = request.get("BatchConfiguration") or {}
        if not isinstance(batch, dict):
            raise invalid("BatchConfiguration", "must be a structure")
        most = TARGET_MAX_BATCH.get(config.target_kind, 1)
        size = _int_in(batch.get("MaxBatchSize", min(10, most)), "BatchConfiguration.MaxBatchSize", BATCH_SIZE_RANGE)
        if size > most:
            raise invalid("BatchConfiguration.MaxBatchSize", f"a {config.target_kind} target takes batches of at most "
                          f"{most} events, got {size}")
        window = _int_in(batch.get("MaxBatchWindowInSeconds", 0), "BatchConfiguration.MaxBatchWindowInSeconds",
                         BATCH_WINDOW_RANGE)
        changes.update(batch_size=size, batch_window_seconds=window)
        resolved["BatchConfiguration"] = {"MaxBatchSize": size, "MaxBatchWindowInSeconds": window}
    if "Transformer" in request or not update:
        transformer = request.get("Transformer") or {"Type": "RAW"}
        if not isinstance(transformer, dict):
            raise invalid("Transformer", "must be a structure with Type")
        kind = _one_of(transformer.get("Type", "RAW"), "Transformer.Type", TRANSFORMER_TYPES)
        expression = None
        if kind == "JSONATA":
            expression = (transformer.get("JsonataConfiguration") or {}).get("Expression")
            if not isinstance(expression, str) or not 1 <= len(expression) <= MAX_JSONATA_LENGTH \
                    or not is_expression(expression):  # "wrapped in {% %}" (API reference, JsonataConfiguration)
                raise invalid("Transformer.JsonataConfiguration.Expression", f"is required with Type JSONATA, 1 to "
                              f"{MAX_JSONATA_LENGTH:,} characters wrapped in {{% %}}")
            compile_expression(expression, "Transformer.JsonataConfiguration.Expression")
        changes.update(transformer=kind, expression=expression)
        resolved["Transformer"] = {"Type": kind, **({"JsonataConfiguration": {"Expression": expression}} if expression else {})}
    if "OnFailureConfiguration" in request or not update:
        on_failure = request.get("OnFailureConfiguration") or {}
        arn = on_failure.get("Arn") if isinstance(on_failure, dict) else None
        if arn is not None:
            if not isinstance(arn, str) or not arns.SQS_ARN.fullmatch(arn):
                raise invalid("OnFailureConfiguration.Arn", f"must be an Amazon SQS queue ARN (the only on-failure "
                              f"destination, UG retry), got {arn!r}")
            if arns.arn_account(arn) != account:
                raise invalid("OnFailureConfiguration.Arn", "the queue must be in the subscriber's account")
        changes["on_failure_arn"] = arn
        resolved.pop("OnFailureConfiguration", None)
        if arn is not None:
            resolved["OnFailureConfiguration"] = {"Arn": arn}
    if "LogConfiguration" in request or not update:
        log = request.get("LogConfiguration") or {}
        resolved["LogConfiguration"] = {
            "Level": _one_of(log.get("Level", "OFF"), "LogConfiguration.Level", LOG_LEVELS),
            "IncludePayload": _one_of(log.get("IncludePayload", "ON_ERROR_ONLY"), "LogConfiguration.IncludePayload",
                                      LOG_PAYLOADS)}
    return replace(config, request=resolved, **changes)


def _check_role(role, account: str, member: str) -> str:
    if not isinstance(role, str) or not arns.ROLE_ARN.fullmatch(role):
        raise invalid(member, f"must be an IAM role ARN, got {role!r}")
    if arns.ROLE_ARN.fullmatch(role).group(1) != account:
        raise invalid(member, "the role must be in the subscriber's own account (UG subscribers)")
    return role


def _check_parameters(invoke: dict, kind: str, choices: Choices, member: str) -> dict:
    """The target's parameter block: at most one, the one that matches the target; expressions must parse."""
    blocks = [b for b in invoke if b in ALL_BLOCKS]
    if len(blocks) > 1:
        raise invalid(member, f"at most one parameter block, got {', '.join(blocks)}")
    expected = PARAMETER_BLOCKS.get(kind)
    if blocks and blocks[0] != expected:
        raise invalid(f"{member}.{blocks[0]}", f"does not match the target's service ({kind}): use {expected}")
    if kind == "universal" and not blocks:
        raise invalid(f"{member}.UniversalTargetParameters", "is required for a universal target")
    parameters = dict(invoke.get(expected) or {}) if expected else {}
    if not isinstance(parameters, dict):
        raise invalid(f"{member}.{expected}", "must be a structure")
    for key, value in parameters.items():
        if isinstance(value, str) and is_expression(value):
            compile_expression(value, f"{member}.{expected}.{key}")
        elif isinstance(value, dict):  # MessageAttributes: names and string values may be expressions too
            for name, attribute in value.items():
                for text, where in ((name, f"{key} (key: {name})"), ((attribute or {}).get("StringValue")
                                                                     if isinstance(attribute, dict) else None,
                                                                     f"{key}.{name}.StringValue")):
                    if isinstance(text, str) and is_expression(text):
                        compile_expression(text, f"{member}.{expected}.{where}")
    if kind == "lambda":
        parameters.setdefault("InvocationType", choices.default_lambda_invocation_type)
        _one_of(parameters["InvocationType"], f"{member}.LambdaParameters.InvocationType", INVOCATION_TYPES)
        # String-typed in the model so that it may be an expression (API Reference, LambdaParameters).
        timeout = parameters.setdefault("InvocationTimeoutSeconds", "30")
        if not (isinstance(timeout, str) and is_expression(timeout)):
            literal = int(timeout) if isinstance(timeout, str) and timeout.isdigit() else timeout
            _int_in(literal, f"{member}.LambdaParameters.InvocationTimeoutSeconds", INVOCATION_TIMEOUT_RANGE)
    return parameters


def check_resume(request: dict, config: SubscriberConfig, replaying: bool) -> str | None:
    """``ResumePosition`` of an ``UpdateSubscriber``: honoured only on the call that moves a ``STOPPED``
    subscriber to ``RUNNING`` (``LAST_PROCESSED`` by default; ``LATEST`` skips the backlog and is refused for a
    subscriber that is replaying), ignored on any other update (UG update)."""
    if config.state != "STOPPED" or request.get("State") != "RUNNING":
        return None
    position = _one_of(request.get("ResumePosition", "LAST_PROCESSED"), "ResumePosition", RESUME_POSITIONS)
    if position == "LATEST" and replaying:
        raise ApiError("InvalidInputException", "ResumePosition: LATEST is refused for a subscriber that is replaying "
                       "(reading the bus's retained history); resume it with LAST_PROCESSED")
    return position
