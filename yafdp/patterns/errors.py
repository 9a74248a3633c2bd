"""The one error an invalid event pattern raises, worded as EventBridge words it."""

from __future__ import annotations

from yafdp.errors import RefusedError

PREFIX = "Event pattern is not valid. Reason: "


class PatternError(RefusedError):
    """An event pattern that EventBridge would reject with ``InvalidEventPatternException``.

    ``str(error)`` is EventBridge's message, ``"Event pattern is not valid. Reason: ..."``;
    ``error.reason`` is the part after ``Reason:``.

    Examples
    --------
    >>> from yafdp.patterns import compile_pattern
    >>> try:
    ...     compile_pattern({"source": "aws.ec2"})
    ... except PatternError as error:
    ...     print(error.reason)
    "source" must be an object or an array
    """

    def __init__(self, reason: str):
        super().__init__(PREFIX + reason)
        self.reason = reason
