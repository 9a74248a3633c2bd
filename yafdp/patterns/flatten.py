"""Turns an event into dotted field paths and their leaf values, visiting only the paths rules use.

Like EventBridge, a key containing a dot and a nested object meet at the same path
(``{"a.b": 1}`` and ``{"a": {"b": 1}}`` both give ``a.b``), an array contributes each of its
elements, and empty arrays and objects contribute nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
        _add_leaf(leaves, array_paths, path, value, in_array)

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
                # The list's objects are read later, from ``pending``, as array elements.
                later = None if child is None else lambda item, _leaves, _paths, child=child: pending.append((item, child, True))
                _read_list(value, path, later, leaves, array_paths, in_array)
            else:
                _add_leaf(leaves, array_paths, path, value, in_array)
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


class _Slow(Exception):
    """Raised by a compiled reader meeting a key it does not read by name (dotted, or not a string)."""


def _read_list(items: list, path: str, child: Any, leaves: Leaves, array_paths: set[str], in_array: bool) -> None:
    # A list's scalars (nested lists flattened) are leaves of its path; its objects are read by ``child``,
    # the compiled reader of the path's object as an array element.
    while items:
        nested = []
        for item in items:
            if isinstance(item, dict):
                if child is not None:
                    child(item, leaves, array_paths)
            elif isinstance(item, list):
                nested.extend(item)
            else:
                _add_leaf(leaves, array_paths, path, item, in_array)
        items = nested


def _add_leaf(leaves: Leaves, array_paths: set[str], path: str, value: Any, in_array: bool) -> None:
    found = leaves.get(path)
    if found is None:
        leaves[path] = [value]
    else:
        found.append(value)
    if in_array:
        array_paths.add(path)


def compile_reader(plan: Plan) -> Callable[[dict], tuple[Leaves, set[str]]]:
    """One function that does what :func:`flatten_planned` does with ``plan``, written for that plan.

    Each object of the plan gets a function that reads its wanted keys by name (``node.get("total")``)
    instead of looping over the event's keys, once for objects outside arrays and once for objects inside
    them. An event whose objects hold a dotted key the plan names, or a key that is not a string, is read
    by :func:`flatten_planned` instead: only there can two keys meet at one path.

    Examples
    --------
    >>> read = compile_reader(reading_plan({"items", "items.sku", "id"}))
    >>> leaves, array_paths = read({"items": [{"sku": "A"}, {"sku": "B"}], "id": 1, "x": 2})
    >>> sorted(leaves.items()), array_paths
    ([('id', [1]), ('items.sku', ['A', 'B'])], {'items.sku'})
    >>> read({"items.sku": "C", "items": [{"sku": "A"}]})[0] == flatten_planned({"items.sku": "C", "items": [{"sku": "A"}]}, reading_plan({"items", "items.sku"}))[0]
    True
    """
    if not plan:
        return lambda event: ({}, set())
    numbers: dict[int, int] = {}
    nodes: list[Plan] = []

    def number(node: Plan) -> int:
        if id(node) not in numbers:
            numbers[id(node)] = len(nodes)
            nodes.append(node)
            for _path, child in node.values():
                if child is not None:
                    number(child)
        return numbers[id(node)]

    number(plan)
    namespace: dict[str, Any] = {"_Slow": _Slow, "_read_list": _read_list, "_M": object()}
    source: list[str] = []
    for index, node in enumerate(nodes):
        dotted = frozenset(key for key in node if "." in key)
        namespace[f"D{index}"] = dotted
        for in_array in (False, True):
            name = f"{'m' if in_array else 's'}{index}"
            source += [f"def {name}(node, leaves, array_paths):",
                       "    try:",
                       "        keys = '\\x00'.join(node)",
                       "    except TypeError:",
                       "        raise _Slow from None"]
            if dotted:
                source.append(f"    if '.' in keys and not D{index}.isdisjoint(node): raise _Slow")
            source.append("    get = node.get")
            for key, (path, child) in node.items():
                if "." in key:
                    continue
                child_of_object = f"{'m' if in_array else 's'}{numbers[id(child)]}" if child is not None else None
                child_in_array = f"m{numbers[id(child)]}" if child is not None else "None"
                if in_array:
                    add = [f"        found = leaves.get({path!r})",
                           f"        if found is None: leaves[{path!r}] = [value]",
                           "        else: found.append(value)",
                           f"        array_paths.add({path!r})"]
                else:
                    add = [f"        leaves[{path!r}] = [value]"]
                on_object = f"{child_of_object}(value, leaves, array_paths)" if child_of_object else "pass"
                on_list = f"_read_list(value, {path!r}, {child_in_array}, leaves, array_paths, {in_array})"
                source += [f"    value = get({key!r}, _M)",
                           "    if value is not _M:",
                           "      kind = type(value)",
                           "      if kind is str or kind is float or kind is int or kind is bool or value is None:",
                           *add,
                           "      elif kind is dict or isinstance(value, dict):",
                           f"        {on_object}",
                           "      elif kind is list or isinstance(value, list):",
                           f"        {on_list}",
                           "      else:",
                           *add]
            source.append("")
    source += ["def read(event):",
               "    leaves = {}",
               "    array_paths = set()",
               "    try:",
               "        s0(event, leaves, array_paths)",
               "    except _Slow:",
               "        return _flatten_planned(event, _plan)",
               "    return leaves, array_paths"]
    namespace["_flatten_planned"] = flatten_planned
    namespace["_plan"] = plan
    exec("\n".join(source) + "\n", namespace)  # noqa: S102 - built above from keys and paths (as repr)
    return namespace["read"]
