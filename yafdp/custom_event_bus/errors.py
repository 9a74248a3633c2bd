"""The Custom Event Bus API's errors, as its service model declares them (EventBridgeV2, API version 2025-05-15).

Every error the emulated API raises is one :class:`ApiError` carrying the model's exception name and HTTP
status, so the local run, the tests and the served endpoint (which answers ``{"__type": code, "message": ...}``)
all see the same thing. Source: the botocore service model ``eventbridgev2/2025-05-15/service-2.json`` and the
API Reference (https://docs.aws.amazon.com/eventbridgev2/latest/APIReference/CommonErrors.html pages per
operation), digested in ``shared/custom-event-bus/SPEC.md`` section 1.7.
"""

from __future__ import annotations

from yafdp.errors import RefusedError

# exception name -> (HTTP status, retryable per the model)
EXCEPTIONS: dict[str, tuple[int, bool]] = {
    "AccessDeniedException": (403, False),
    "ConcurrentModificationException": (409, True),
    "ConflictException": (409, False),
    "IdempotentParameterMismatchException": (409, False),
    "InternalException": (500, True),
    "InvalidInputException": (400, False),
    "InvalidStateException": (409, False),
    "LimitExceededException": (400, False),
    "ResourceAlreadyExistsException": (409, False),
    "ResourceInUseException": (409, False),
    "ResourceNotFoundException": (404, False),
    "ThrottlingException": (429, True),
    # Not a modelled exception: what the service answers for an operation it does not have (the endpoint's
    # answer to an unknown operation), with the status AWS's RPC services use for it.
    "UnknownOperationException": (404, False),
    # The request could not be read (malformed CBOR, a body that is not a map): AWS answers "SerializationException".
    "SerializationException": (400, False),
}


class ApiError(RefusedError):
    """A Custom Event Bus API call was refused: ``code`` is the model's exception name (e.g.
    ``"ResourceNotFoundException"``), ``status`` its HTTP status, ``message`` says what and where
    (the member path, e.g. ``RetryPolicy.MaxRetryAttempts``)."""

    def __init__(self, code: str, message: str):
        if code not in EXCEPTIONS:
            raise ValueError(f"unknown Custom Event Bus exception {code!r}")
        super().__init__(message)
        self.code, self.message = code, message
        self.status, self.retryable = EXCEPTIONS[code]

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def invalid(member: str, problem: str) -> ApiError:
    """``InvalidInputException`` naming the request member (e.g. ``Entries[3].Source``) and what is wrong."""
    return ApiError("InvalidInputException", f"{member}: {problem}")


def not_found(kind: str, arn: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"{kind} {arn} does not exist")
