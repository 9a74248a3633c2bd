"""A compiled event pattern, and the matching of one of its branches against a flattened event."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yafdp.patterns.compile import MAX_PATTERN_LENGTH, Branch, expand, load_pattern
from yafdp.patterns.flatten import Leaves, Members, flatten, flatten_members, path_prefixes
from yafdp.patterns.operators import Test, field_test

Field = tuple[str, Test | None, bool]  # (path, test on a value, matches when absent)


def compile_pattern(pattern: dict | str, *, max_length: int = MAX_PATTERN_LENGTH) -> Pattern:
    """Compile an EventBridge event pattern, given as a dict or as JSON text.

    Parameters
    ----------
    pattern
        The event pattern, e.g. ``{"source": ["orders"], "detail": {"total": [{"numeric": [">", 0]}]}}``.
    max_length
        The longest pattern accepted, in characters of JSON (EventBridge's default quota is 2048).

    Returns
    -------
    Pattern
        The compiled pattern; call :meth:`Pattern.matches` with events.

    Raises
    ------
    PatternError
        If EventBridge would reject the pattern; the message is EventBridge's.

    Examples
    --------
    >>> pattern = compile_pattern('{"detail": {"state": [{"anything-but": "initializing"}]}}')
    >>> pattern.matches({"detail": {"state": "running"}})
    True
    >>> pattern.matches({"detail": {}})
    False
    """
    branches = expand(load_pattern(pattern, max_length))
    return Pattern(branches, pattern)


def compile_branch(branch: Branch) -> tuple[Field, ...]:
    """A branch as ``(path, test, absent_ok)`` fields in the order EventBridge evaluates them.

    The order matters only for ``{"exists": false}`` inside arrays of objects, where EventBridge
    checks absence against the array elements chosen by the fields before it (by path, sorted
    as Java sorts strings).
    """
    fields = []
    for path in sorted(branch, key=lambda p: p.encode("utf-16-be", "surrogatepass")):
        test, absent_ok = field_test(branch[path])
        fields.append((path, test, absent_ok))
    return tuple(fields)


def branch_matches(fields: tuple[Field, ...], leaves: Leaves) -> bool:
    """Whether every field of a branch is satisfied by an event without objects inside arrays."""
    for path, test, absent_ok in fields:
        values = leaves.get(path)
        if values is None:
            if absent_ok:
                continue
            return False
        if test is None:
            return False
        for value in values:
            if test(value):
                break
        else:
            return False
    return True


def compile_check(fields: tuple[Field, ...]) -> Callable[[Leaves], bool]:
    """One specialised function that does what :func:`branch_matches` does for these fields.

    The fields' paths become constants and their tests local names of a function written for them,
    so checking a branch costs a few dictionary look-ups and test calls, with no loop over fields.

    Examples
    --------
    >>> check = compile_check(compile_branch(expand({"a": ["x"], "b": [{"exists": False}]})[0]))
    >>> check({"a": ["y", "x"]}), check({"a": ["x"], "b": [1]}), check({})
    (True, False, False)
    """
    parameters, body = ["leaves"], ["    get = leaves.get"]
    namespace: dict[str, Any] = {}
    for number, (path, test, absent_ok) in enumerate(fields):
        if test is None:
            body.append(f"    if {path!r} in leaves: return False")
            continue
        parameters.append(f"t{number}=t{number}")
        namespace[f"t{number}"] = test
        body.append(f"    values = get({path!r})")
        if absent_ok:
            body.append("    if values is not None:")
            indent = "        "
        else:
            body.append("    if values is None: return False")
            indent = "    "
        body += [
            f"{indent}for value in values:",
            f"{indent}    if t{number}(value): break",
            f"{indent}else: return False",
        ]
    source = f"def check({', '.join(parameters)}):\n" + "\n".join(body) + "\n    return True\n"
    exec(source, namespace)  # noqa: S102 - the source is built above from paths (as repr) and names
    return namespace["check"]


def needs_members(fields: tuple[Field, ...], array_paths: set[str]) -> bool:
    """Whether two fields of a branch read leaves inside objects in arrays, so elements must agree."""
    inside = 0
    for path, _test, _absent_ok in fields:
        if path in array_paths:
            inside += 1
            if inside == 2:
                return True
    return False


def _join(held: dict[int, int], membership: tuple[tuple[int, int], ...]) -> dict[int, int] | None:
    joined = held
    for array_id, index in membership:
        chosen = joined.get(array_id)
        if chosen is None:
            if joined is held:
                joined = dict(held)
            joined[array_id] = index
        elif chosen != index:
            return None
    return joined


def branch_matches_members(fields: tuple[Field, ...], members: Members) -> bool:
    """Whether a branch matches while taking its fields from consistent array elements.

    Two fields may not be satisfied by leaves in different elements of the same array. This is a
    search over the fields in order, remembering which element of each array has been chosen.
    """
    failed: set[tuple[int, tuple]] = set()

    def search(position: int, held: dict[int, int]) -> bool:
        if position == len(fields):
            return True
        memo_key = (position, tuple(sorted(held.items())))
        if memo_key in failed:
            return False
        path, test, absent_ok = fields[position]
        entries = members.get(path, ())
        if test is not None:
            for value, membership in entries:
                if test(value):
                    joined = _join(held, membership)
                    if joined is not None and search(position + 1, joined):
                        return True
        if absent_ok and all(_join(held, membership) is None for _, membership in entries):
            if search(position + 1, held):
                return True
        failed.add(memo_key)
        return False

    return search(0, {})


class Pattern:
    """A compiled EventBridge event pattern; see :func:`compile_pattern`.

    Attributes
    ----------
    source
        The pattern as it was given (dict or JSON text).
    branches
        The pattern expanded over its ``$or`` choices: one dict per branch, from dotted field path
        to that field's alternatives.

    Examples
    --------
    >>> pattern = compile_pattern({"source": ["orders"], "detail": {"total": [{"numeric": [">", 0]}]}})
    >>> pattern.matches({"source": "orders", "detail": {"total": 12.5}})
    True
    >>> pattern.matches({"source": "orders", "detail": {"total": "12.5"}})
    False
    """

    __slots__ = ("source", "branches", "fields", "prefixes")

    def __init__(self, branches: list[Branch], source: Any = None):
        self.source = source
        self.branches = branches
        self.fields = [compile_branch(branch) for branch in branches]
        self.prefixes = frozenset(path_prefixes(path for branch in branches for path in branch))

    def matches(self, event: dict) -> bool:
        """Whether ``event`` (a decoded JSON object) matches this pattern.

        Examples
        --------
        >>> pattern = compile_pattern({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}})
        >>> pattern.matches({"detail": {"ip": "10.0.0.7"}})
        True
        """
        if not isinstance(event, dict):
            raise TypeError(f"an event is a JSON object (a dict), not {type(event).__name__}")
        leaves, array_paths = flatten(event, self.prefixes)
        members = None
        for fields in self.fields:
            if array_paths and needs_members(fields, array_paths):
                if members is None:
                    members = flatten_members(event, self.prefixes)
                if branch_matches_members(fields, members):
                    return True
            elif branch_matches(fields, leaves):
                return True
        return False

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"
