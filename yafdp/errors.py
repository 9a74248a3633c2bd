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


class ConfigurationError(YafdpError):
    """The project's configuration (catalog, marketplace, profile, quotas, plan) is wrong; says which file and key."""


class BackendError(YafdpError):
    """A backend could not do what it was asked; the message says what happened and what to do."""


class RunFolderError(BackendError):
    """A run folder cannot be used: it holds no run, or not one that can be resumed."""
