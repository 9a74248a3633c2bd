"""The error tree: every error yafdp raises on purpose descends from :class:`YafdpError`.

Three branches, so that a caller catches exactly what it means:

- :class:`RefusedError` — the caller's request was refused (a bad order, a bad PutEvents entry, a bad event
  pattern, a bad option). The CLI prints it and exits 2; the Lambda entry point answers it to the caller.
- :class:`ConfigurationError` — what the project was set up with is wrong (the catalog, the marketplace, a
  latency profile, the quotas, a plan, a state machine). Nothing runs until it is fixed.
- :class:`BackendError` — a backend could not do what it was asked (a run that did not settle in time, a
  publication EventBridge refused, a transaction too big for DynamoDB, a run folder that cannot be used).

``RefusedError`` is also a :class:`ValueError`, as Python's convention for bad arguments has it; the other
branches are not, so ``except ValueError`` never swallows a configuration or backend error.

Examples
--------
>>> issubclass(RefusedError, ValueError), issubclass(ConfigurationError, ValueError)
(True, False)
"""

from __future__ import annotations


class YafdpError(Exception):
    """The root of every error yafdp raises on purpose."""


class RefusedError(YafdpError, ValueError):
    """The caller's request was refused; nothing of it was done. The message says what and where;
    ``field`` names the part of the request that was wrong, when there is one (e.g. ``items[0].quantity``)."""

    field: str | None = None


class RequestRefusedError(RefusedError):
    """A service's API entry point refused a request (e.g. an order), before anything was stored or published;
    ``field`` names the part of the request that is wrong and ``problem`` what is wrong with it. Every backend
    answers it to the caller as it is, and a run records it in ``refusals``."""

    def __init__(self, field: str, problem: str, message: str | None = None):
        self.field, self.problem = field, problem
        super().__init__(message or f"request refused: {field}: {problem}")


def unknown_field(request: dict, known, where: str = "") -> tuple[str, str] | None:
    """The first field of ``request`` (a JSON object) that is not one of ``known``, as ``(field, problem)`` for a
    :class:`RequestRefusedError` (``where``: the path of ``request`` in the whole request, e.g. ``items[0]``), or
    None when every field is known.

    An entry point refuses such a field rather than drop it: the request's fields are those its event's schema
    carries (a closed schema, ``"additionalProperties": false``), so an unknown one is a misspelt field or one
    this API does not take, and dropping it would place an order other than the one asked for without a word.
    It is what an API with a closed request model does: API Gateway validates a request body against its
    method's JSON-schema model and "immediately fails the request, returns a 400 error response to the caller"
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html).

    >>> unknown_field({"order_id": "ord-1", "extra": 1}, ("order_id",))
    ('extra', 'is not a field of this request (its fields: order_id)')
    """
    name = next((key for key in request if key not in known), None)
    if name is None:
        return None
    from yafdp.quoting import excerpt

    field = f"{where}.{excerpt(name, quoted=False)}" if where else excerpt(name, quoted=False)
    return field, f"is not a field of this request (its fields: {', '.join(known)})"


class ConfigurationError(YafdpError):
    """The project's configuration (catalog, marketplace, profile, quotas, plan) is wrong; says which file and key."""


class BackendError(YafdpError):
    """A backend could not do what it was asked; the message says what happened and what to do."""


class RunFolderError(BackendError):
    """A run folder cannot be used: it holds no run, or not one that can be resumed."""
