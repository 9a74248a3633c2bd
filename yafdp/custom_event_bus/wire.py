"""The Custom Event Bus API on AWS's wire: the smithy-rpc-v2-cbor protocol, as botocore speaks it for the
``eventbridgev2`` service, read and written with the ``cbor2`` library.

What a request is (M = the botocore service model ``eventbridgev2/2025-05-15``, whose ``metadata`` says protocol
``smithy-rpc-v2-cbor``, target prefix ``AWSEventsV2``; the protocol: "Smithy RPC v2 CBOR protocol",
https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html): ``POST /service/AWSEventsV2/operation/<Op>``
with the header ``smithy-protocol: rpc-v2-cbor`` and a CBOR map of the operation's input members (an empty body
is an empty map); a timestamp is CBOR tag 1 over epoch seconds, an integer or a float (botocore's
``RpcV2CBORSerializer._serialize_type_timestamp``). An answer is a CBOR map of the output members, timestamps as
tag 1 again (the only tag botocore's ``BaseCBORParser._parse_tag`` reads); an error is a CBOR map ``{"__type":
<exception name>, "message": <text>}`` with the exception's HTTP status, which botocore's
``RpcV2CBORParser._do_error_parse`` maps to the modelled exception class (shared/custom-event-bus/SPEC.md 1.5).

The model's validation is botocore's own :class:`botocore.validate.ParamValidator` run on the decoded input
(required members, types, minimum lengths and values), plus the maximums it leaves to the service (``max`` in
the model's shapes). What a well-formed request may still get wrong (an unknown ARN, a retry policy out of range)
is the engine's to say (:class:`~yafdp.custom_event_bus.service.CustomEventBusService`).

Where AWS does not document its answer, this endpoint answers as the Smithy server framework that AWS maintains
answers (smithy-rs, ``aws-smithy-http-server``, ``protocol/rpc_v2_cbor``): an operation it does not serve is
``UnknownOperationException``, HTTP 404 (``router.rs``); a body that is not CBOR is ``SerializationException``,
HTTP 400 (``runtime_error.rs``); a method other than POST is HTTP 405.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from functools import lru_cache

import cbor2

from yafdp.custom_event_bus.errors import ApiError
from yafdp.custom_event_bus.service import OPERATIONS
from yafdp.model_validation import ModelErrors, ModelValidator

SERVICE = "AWSEventsV2"  # M metadata.targetPrefix: the service's name in the request path
PROTOCOL_HEADER, PROTOCOL = "smithy-protocol", "rpc-v2-cbor"
CONTENT_TYPE = "application/cbor"
# The path of an operation: an optional prefix, the service (its shape name, or its absolute shape id with '.'),
# the operation (Smithy identifiers; smithy-rs router.rs).
_IDENTIFIER = r"(?:_+[A-Za-z0-9]|[A-Za-z])[A-Za-z0-9_]*"
PATH = re.compile(rf"(?:.*)/service/(?:{_IDENTIFIER}\.)*(?P<service>{_IDENTIFIER})/operation/(?P<operation>{_IDENTIFIER})")
MAX_REPORTED_ERRORS = 5  # a validation answer names at most this many problems
_SHOWN = 80  # characters of a refused value an answer quotes


class WireError(Exception):
    """A request refused before the engine saw it: ``code`` (the ``__type`` of the answer), ``status`` (HTTP),
    ``message``."""

    def __init__(self, code: str, status: int, message: str):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


@lru_cache(maxsize=1)
def service_model():
    """The ``eventbridgev2`` service model botocore ships (read from its data files; nothing is fetched)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("eventbridgev2")


def operation_of(path: str) -> str:
    """The operation a request path names; :class:`WireError` ``UnknownOperationException`` (404) for a path that
    names no operation of this service or one this endpoint does not serve.

    Examples
    --------
    >>> operation_of("/service/AWSEventsV2/operation/PutEvents")
    'PutEvents'
    >>> operation_of("/service/AWSEventsV2/operation/PutRawEvents")
    Traceback (most recent call last):
    ...
    yafdp.custom_event_bus.wire.WireError: this endpoint serves ... not PutRawEvents
    """
    match = PATH.fullmatch(path.split("?", 1)[0])
    if match is None or match["service"] != SERVICE:
        raise WireError("UnknownOperationException", 404, f"no operation at {path[:200]!r}: the Custom Event Bus "
                        f"answers POST /service/{SERVICE}/operation/<Operation>")
    operation = match["operation"]
    if operation not in OPERATIONS:
        raise WireError("UnknownOperationException", 404, f"this endpoint serves {', '.join(OPERATIONS)}; not "
                        f"{operation}")
    return operation


def read_request(operation: str, body: bytes) -> dict:
    """The input members of ``operation`` from a request body, checked against the model.

    Raises :class:`WireError` ``SerializationException`` (400) for a body that is not one CBOR map, and
    :class:`~yafdp.custom_event_bus.errors.ApiError` ``InvalidInputException`` (400) naming the members that break
    the model (missing, of the wrong type, out of the model's range, unknown)."""
    params = decode(body)
    model = service_model().operation_model(operation)
    errors = _VALIDATOR.validate(params, model.input_shape)
    if errors.has_errors():
        lines = errors.generate_report().splitlines()
        more = f" (and {len(lines) - MAX_REPORTED_ERRORS} more)" if len(lines) > MAX_REPORTED_ERRORS else ""
        raise ApiError("InvalidInputException", "; ".join(lines[:MAX_REPORTED_ERRORS]) + more)
    return params


def decode(body: bytes) -> dict:
    """A request body as a dict: one CBOR map (an empty body is an empty map), ``null``/``undefined`` members
    left out as absent (Smithy: a null structure member is an absent one)."""
    if not body:
        return {}
    stream = io.BytesIO(body)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise WireError("SerializationException", 400, f"the request body is not valid CBOR: {exc}") from None
    if stream.read(1):
        raise WireError("SerializationException", 400, f"the request body holds more than one CBOR data item "
                        f"(bytes left after the first, at offset {stream.tell() - 1})")
    if not isinstance(value, dict):
        raise WireError("SerializationException", 400, f"the request body must be a CBOR map of the operation's "
                        f"input members, not {type(value).__name__}")
    return _without_nulls(value)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None and v is not cbor2.undefined}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def encode(answer: dict) -> bytes:
    """An operation's answer as the response body: a CBOR map, timestamps as tag 1 (epoch seconds)."""
    return cbor2.dumps(answer, datetime_as_timestamp=True, timezone=timezone.utc)


def error_body(code: str, message: str) -> bytes:
    """An error answer's body, as botocore reads it: ``{"__type": code, "message": message}``."""
    return cbor2.dumps({"__type": code, "message": message})


class _Errors(ModelErrors):
    """The model's errors, with long values cut short."""

    def _format_error(self, error):
        reason, name, additional = error
        if "param" in additional:
            additional = {**additional, "param": _short(additional["param"])}
        return super()._format_error((reason, name, additional))


def _short(value):
    text = repr(value)
    return value if len(text) <= _SHOWN else f"{text[:_SHOWN]}… ({len(text):,} characters)"


class _Validator(ModelValidator):
    """botocore's parameter validation (what its clients check before they send), and the ``max`` of strings,
    lists, maps and numbers, which botocore leaves to the service (:class:`~yafdp.model_validation.
    ModelValidator`; the enums and patterns are the engine's to say); a timestamp as this wire carries it."""

    enums_and_patterns = False
    errors = _Errors

    def _validate_timestamp(self, param, shape, errors, name):
        if isinstance(param, datetime) or (isinstance(param, (int, float)) and not isinstance(param, bool)):
            return  # tag 1 decodes to a datetime; an untagged epoch number is what a timestamp is on this wire
        errors.report(name, "invalid type", param=param, valid_types=[str(datetime), "epoch seconds"])


_VALIDATOR = _Validator()  # the model's limits, read once a shape
