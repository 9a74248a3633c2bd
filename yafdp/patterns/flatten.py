"""Turns an event into dotted field paths and their leaf values, visiting only the paths rules use.

Like EventBridge, a key containing a dot and a nested object meet at the same path
(``{"a.b": 1}`` and ``{"a": {"b": 1}}`` both give ``a.b``), an array contributes each of its
elements, and empty arrays and objects contribute nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import Any

Leaves = dict[str, list[Any]]
# For events with objects inside arrays: each leaf with the array elements it sits in,
# as ((array id, element index), ...).
Members = dict[str, list[tuple[Any, tuple[tuple[int, int], ...]]]]


def path_prefixes(paths: Iterable[str]) -> set[str]:
    """Every path and each of its dot-separated beginnings: the event keys worth descending into.

    Examples
    --------
    >>> sorted(path_prefixes(["detail.state.name"]))
    ['detail', 'detail.state', 'detail.state.name']
    """
    prefixes = set()
    for path in paths:
        parts = path.split(".")
        for end in range(1, len(parts) + 1):
            prefixes.add(".".join(parts[:end]))
    return prefixes


def flatten(event: dict, prefixes: set[str] | frozenset[str]) -> tuple[Leaves, set[str]]:
    """The leaf values under each wanted path, and the paths with leaves inside objects in arrays.

    A pattern with two or more fields among those paths must be matched with
    :func:`flatten_members`, so that different elements of one array do not combine.

    Examples
    --------
    >>> flatten({"detail": {"state": "on", "tags": ["a", "b"]}, "id": "1"},
    ...         {"detail", "detail.state", "detail.tags"})
    ({'detail.state': ['on'], 'detail.tags': ['a', 'b']}, set())
    >>> flatten({"items": [{"sku": "A"}]}, {"items", "items.sku"})
    ({'items.sku': ['A']}, {'items.sku'})
    """
    leaves: Leaves = {}
    array_paths: set[str] = set()

    def add(path: str, value: Any, in_array: bool) -> None:
        found = leaves.get(path)
        if found is None:
            leaves[path] = [value]
        else:
            found.append(value)
        if in_array:
            array_paths.add(path)

    def walk(node: dict, base: str, in_array: bool) -> None:
        for key, value in node.items():
            path = base + (key if type(key) is str else str(key))
            if path not in prefixes:
                continue
            if isinstance(value, dict):
                walk(value, path + ".", in_array)
            elif isinstance(value, list):
                walk_array(value, path, in_array)
            else:
                add(path, value, in_array)

    def walk_array(items: list, path: str, in_array: bool) -> None:
        for item in items:
            if isinstance(item, dict):
                walk(item, path + ".", True)
            elif isinstance(item, list):
                walk_array(item, path, in_array)
            else:
                add(path, item, in_array)

    walk(event, "", False)
    return leaves, array_paths


def flatten_members(event: dict, prefixes: set[str] | frozenset[str]) -> Members:
    """Like :func:`flatten`, but each leaf carries the array elements it belongs to.

    Examples
    --------
    >>> flatten_members({"a": [{"b": 1}, {"b": 2}]}, {"a", "a.b"})
    {'a.b': [(1, ((0, 0),)), (2, ((0, 1),))]}
    """
    members: Members = {}
    array_ids = count()

    def walk(node: Any, path: str, membership: tuple) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = (path + "." if path else "") + (key if type(key) is str else str(key))
                if child in prefixes:
                    walk(value, child, membership)
        elif isinstance(node, list):
            array_id = next(array_ids)
            for index, item in enumerate(node):
                walk(item, path, membership + ((array_id, index),))
        else:
            members.setdefault(path, []).append((node, membership))

    walk(event, "", ())
    return members


Plan = dict[str, tuple[str, "Plan | None"]]


def reading_plan(prefixes: set[str] | frozenset[str]) -> Plan:
    """A tree of the event keys worth reading, for :func:`flatten_planned`.

    The plan of an object at path ``base`` maps each key to ``(path, plan of that key's object)``.
    A key may hold dots (``{"a.b": 1}`` meets path ``a.b``), so every beginning of a wanted path
    that starts at ``base`` is a key of its plan. Built once per set of paths, it spares each event
    the string joins and set look-ups of :func:`flatten`.

    Examples
    --------
    >>> plan = reading_plan(path_prefixes(["detail.state", "a.b"]))
    >>> sorted(plan)
    ['a', 'a.b', 'detail', 'detail.state']
    >>> plan["detail"][1]
    {'state': ('detail.state', None)}
    """
    plans: dict[str, Plan] = {}

    def plan_of(base: str) -> Plan | None:
        if base in plans:
            return plans[base]
        plan: Plan = {}
        for path in prefixes:
            if path.startswith(base) and len(path) > len(base):
                plan[path[len(base):]] = (path, None)
        plans[base] = plan or None  # type: ignore[assignment]
        for key, (path, _child) in list(plan.items()):
            plan[key] = (path, plan_of(path + "."))
        return plans[base]

    return plan_of("") or {}


def flatten_planned(event: dict, plan: Plan) -> tuple[Leaves, set[str]]:
    """What :func:`flatten` gives, read by following a :func:`reading_plan`.

    Examples
    --------
    >>> flatten_planned({"items": [{"sku": "A"}], "x": 1}, reading_plan({"items", "items.sku"}))
    ({'items.sku': ['A']}, {'items.sku'})
    """
    leaves: Leaves = {}
    array_paths: set[str] = set()
    pending = [(event, plan, False)]
    while pending:
        node, node_plan, in_array = pending.pop()
        for key, value in node.items():
            entry = node_plan.get(key)
            if entry is None:
                if type(key) is str:
                    continue
                entry = node_plan.get(str(key))
                if entry is None:
                    continue
            path, child = entry
            if isinstance(value, dict):
                if child is not None:
                    pending.append((value, child, in_array))
            elif isinstance(value, list):
                items = value
                while items:
                    nested = []
                    for item in items:
                        if isinstance(item, dict):
                            if child is not None:
                                pending.append((item, child, True))
                        elif isinstance(item, list):
                            nested.extend(item)
                        else:
                            found = leaves.get(path)
                            if found is None:
                                leaves[path] = [item]
                            else:
                                found.append(item)
                            if in_array:
                                array_paths.add(path)
                    items = nested
            else:
                found = leaves.get(path)
                if found is None:
                    leaves[path] = [value]
                else:
                    found.append(value)
                if in_array:
                    array_paths.add(path)
    return leaves, array_paths


def flatten_members_planned(event: dict, plan: Plan) -> Members:
    """What :func:`flatten_members` gives, read by following a :func:`reading_plan`.

    Examples
    --------
    >>> flatten_members_planned({"a": [{"b": 1}, {"b": 2}]}, reading_plan({"a", "a.b"}))
    {'a.b': [(1, ((0, 0),)), (2, ((0, 1),))]}
    """
    members: Members = {}
    array_ids = count()
    pending: list = [(event, plan, "", ())]
    while pending:
        node, node_plan, path, membership = pending.pop()
        if type(node) is dict or isinstance(node, dict):
            if node_plan is None:
                continue
            for key, value in node.items():
                entry = node_plan.get(key if type(key) is str else str(key))
                if entry is not None:
                    pending.append((value, entry[1], entry[0], membership))
        elif isinstance(node, list):
            array_id = next(array_ids)
            # Pushed in reverse so that elements are read in order, as flatten_members reads them.
            for index in range(len(node) - 1, -1, -1):
                pending.append((node[index], node_plan, path, membership + ((array_id, index),)))
        else:
            found = members.get(path)
            if found is None:
                members[path] = [(node, membership)]
            else:
                found.append((node, membership))
    return members
