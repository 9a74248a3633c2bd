"""``yafdp test-pattern``: does an event match an event pattern? Like ``aws events test-event-pattern``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from yafdp.patterns.errors import PatternError
from yafdp.patterns.jsontext import load_event_text
from yafdp.patterns.pattern import compile_pattern
from yafdp.quoting import printable
from yafdp.reading import TEST_PATTERN_FILE_BYTES, TooLargeError, read_bytes

# The fields TestEventPattern requires of the event ("the following fields are mandatory: id, account, source, time,
# region, resources, detail-type"; EventBridge API reference, TestEventPattern,
# https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_TestEventPattern.html). Only their presence is
# checked, not their form (a UUID id, a 12-digit account): the AWS reference says no more than that they are there.
ENVELOPE_FIELDS = ("id", "account", "source", "time", "region", "resources", "detail-type")

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``yafdp test-pattern`` (the sub-command itself is :mod:`yafdp.cli`'s).

    Examples
    --------
    >>> from yafdp.cli import main
    >>> event = {"id": "1", "account": "111122223333", "source": "a", "time": "2026-01-01T00:00:00Z",
    ...          "region": "eu-west-1", "resources": [], "detail-type": "t", "detail": {}}
    >>> main(["test-pattern", "--pattern", '{"source": ["a"]}', "--event", json.dumps(event)])
    true
    0
    """
    parser.add_argument("--pattern", required=True, help="the event pattern (JSON or @FILE)")
    parser.add_argument("--event", required=True, help="the event (JSON or @FILE)")
    parser.set_defaults(run=run)


def _read(argument: str, option: str) -> str:
    if not argument.startswith("@"):
        return argument
    if not argument[1:].strip():
        raise OSError(f"{option} @ names no file: give @FILE, or the JSON itself")
    return read_bytes(Path(argument[1:]), TEST_PATTERN_FILE_BYTES, f"a {option} file").decode("utf-8")


def run(args: argparse.Namespace) -> int:
    """Print ``true`` or ``false`` and return 0 (match), 1 (no match) or 2 (invalid input)."""
    try:
        pattern_text, event_text = _read(args.pattern, "--pattern"), _read(args.event, "--event")
    except OSError as error:
        problem = f"cannot read {error.filename}: {error.strerror}" if error.filename else str(error)
        print(f"yafdp test-pattern: {printable(problem)}", file=sys.stderr)
        return 2
    except (TooLargeError, UnicodeDecodeError) as error:  # a file too large (e.g. /dev/zero), or not text
        print(f"yafdp test-pattern: {printable(error if isinstance(error, TooLargeError) else 'not UTF-8 text')}",
              file=sys.stderr)
        return 2
    try:
        pattern = compile_pattern(pattern_text)
    except PatternError as error:  # EventBridge's own words, on one line, after the option they are about
        print("yafdp test-pattern: --pattern: " + printable(" ".join(line.strip() for line in str(error).splitlines())),
              file=sys.stderr)
        return 2
    try:
        event = load_event_text(event_text)
    except json.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        print("yafdp test-pattern: --event: Parameter Event is not valid: an event is a JSON object.", file=sys.stderr)
        return 2
    missing = [field for field in ENVELOPE_FIELDS if field not in event]
    if missing:
        print(f"yafdp test-pattern: --event: Parameter Event is not valid: it lacks {', '.join(missing)} (TestEventPattern "
              f"requires {', '.join(ENVELOPE_FIELDS)})", file=sys.stderr)
        return 2
    matched = pattern.matches(event)
    print("true" if matched else "false")
    return 0 if matched else 1
