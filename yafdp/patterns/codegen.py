"""Python source written for one group of branches, so that checking them costs no call per branch or per test.

A :class:`~yafdp.patterns.ruleset.RuleSet` files each branch under an anchor (see its module); the branches
found under one anchor value form a group, and :func:`compile_group` turns the group into one function that
checks them all, with the common tests (a set of exact strings, a numeric range, a prefix, a suffix,
``exists``) written out in place and the others called. What each check means is still
:func:`~yafdp.patterns.operators.field_test`'s: the code here only inlines the cases whose meaning it can
state in a line, and is held to agree with the generic check by tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import count
from typing import Any

from yafdp.patterns import operators as op
from yafdp.patterns.flatten import Leaves, flatten_members_planned
from yafdp.patterns.pattern import branch_matches_members


_numbers = count()  # names each group's source, so that profiles and tracebacks tell groups apart


def _value_test(alts: list[op.Alt], test: Any, name: str, namespace: dict[str, Any]) -> str | None:
    """An expression over ``value`` true when ``test(value)`` is, or None to write a numeric range instead."""
    kinds = {alt.kind for alt in alts} - {op.ABSENT}
    if kinds == {op.EXACT} and all(type(alt.arg) is str for alt in alts if alt.kind == op.EXACT):
        namespace[name] = frozenset(alt.arg for alt in alts if alt.kind == op.EXACT)
        return f"value in {name}"  # only strings are in the set, so a value of another type is not
    if len(alts) == 1 and alts[0].kind in (op.PREFIX, op.SUFFIX):
        namespace[name] = alts[0].arg
        method = "startswith" if alts[0].kind == op.PREFIX else "endswith"
        return f"type(value) is str and value.{method}({name})"
    if len(alts) == 1 and alts[0].kind == op.ANYTHING_BUT and not alts[0].arg[1]:
        namespace[name] = alts[0].arg[0]
        return f"value not in {name}"  # only strings are in the set, so a value of another type passes
    if len(alts) == 1 and alts[0].kind == op.NUMERIC:
        return None
    namespace[name] = test
    return f"{name}(value)"


def _cost(field: tuple[str, list[op.Alt], Any, bool]) -> tuple:
    """Where a field's check goes in its branch: the cheap ones first (a presence test, a set or a prefix,
    a numeric range, then a call), and the envelope's ``source`` and ``detail-type`` last, as the anchor
    look-up has usually settled them already. A branch is a conjunction: the order changes no answer."""
    path, alts, test, _absent_ok = field
    if test is None or test is op.always:
        rank = 0
    else:
        written = _value_test(alts, test, "_", {})
        rank = 2 if written is None else 3 if written.startswith("_(") else 1
    return (path in ("source", "detail-type"), rank)


def _field_lines(path: str, alts: list[op.Alt], test: Any, absent_ok: bool, name: str,
                 namespace: dict[str, Any], read: str) -> list[str]:
    """Lines (inside ``while True:``) that ``break`` out when the field fails the branch; ``read`` is the
    expression that gives the field's values (or None)."""
    if test is None:  # only {"exists": false}
        return [f"if {path!r} in leaves: break"]
    if test is op.always:
        return [] if absent_ok else [f"if {path!r} not in leaves: break"]  # leaves are never empty lists
    expression = _value_test(alts, test, name, namespace)
    if expression is None:
        low, low_open, high, high_open = alts[0].arg
        namespace[f"{name}lo"], namespace[f"{name}hi"] = low, high
        bounds = []
        if not (low == -float("inf") and not low_open):
            bounds.append(f"number {'>' if low_open else '>='} {name}lo")
        if not (high == float("inf") and not high_open):
            bounds.append(f"number {'<' if high_open else '<='} {name}hi")
        loop = ["for value in values:",
                "    kind = type(value)",
                "    if kind is float: number = value",
                "    elif kind is int:",
                # Python compares an int with a float exactly, so an int a double holds is compared as is.
                "        if -_EXACT_INTS <= value <= _EXACT_INTS: number = value",
                "        else:",
                "            number = _value_key(value)",  # a double, unless beyond a double's precision
                "            if type(number) is not float: continue",
                "    else: continue",
                f"    if {' and '.join(bounds)}: break",
                "else: break"]
    else:
        loop = ["for value in values:",
                f"    if {expression}: break",
                "else: break"]
    if absent_ok:
        return [f"values = {read}", "if values is not None:", *("    " + line for line in loop)]
    return [f"values = {read}", "if values is None: break", *loop]


def _members_match(entry: Any, leaves: Leaves, event: dict, context: list) -> bool:
    # Two of the branch's fields are inside objects in arrays: they must come from the same elements.
    # Taking each field's values from any element is a looser test, so when it fails (and no field may
    # be absent) the element-by-element search cannot pass.
    if entry.prefilter and not entry.check(leaves):
        return False
    return _members_search(entry, event, context)


def _members_search(entry: Any, event: dict, context: list) -> bool:
    members = context[0]
    if members is None:
        members = context[0] = flatten_members_planned(event, context[1])
    return branch_matches_members(entry.fields, members)


def compile_group(entries: Sequence[Any]) -> Callable[[Leaves, set, dict, dict, list], None]:
    """One function ``run(leaves, array_paths, matched, event, context)`` that checks every branch of the group.

    Each entry is a RuleSet branch: ``rule``, ``order``, ``open_fields`` (``(path, alts, test, absent_ok)`` of
    the fields its anchor look-up leaves open), ``paths``, and ``check``/``prefilter``/``fields`` for the
    element-by-element search. A branch that passes sets ``matched[rule] = order``; a rule already matched
    is not checked again. ``context`` is ``[members or None, reading plan]``.
    """
    namespace: dict[str, Any] = {"_value_key": op.value_key, "_members_match": _members_match,
                                 "_members_search": _members_search, "_EXACT_INTS": op.EXACT_INTS}
    body = ["def run(leaves, array_paths, matched, event, context):", "    get = leaves.get"]
    # A path that several branches read is read once, up front.
    uses = Counter(path for entry in entries for path, _alts, test, _absent_ok in entry.open_fields
                   if test is not None and test is not op.always)
    shared = {path: f"v{index}" for index, path in enumerate(p for p, n in uses.items() if n > 1)}
    body += [f"    {name} = get({path!r})" for path, name in shared.items()]
    for number, entry in enumerate(entries):
        namespace[f"r{number}"], namespace[f"o{number}"], namespace[f"e{number}"] = entry.rule, entry.order, entry
        body.append(f"    if r{number} not in matched:")
        indent = "        "
        consistent = ""  # the element-by-element search, when two fields may sit in objects in arrays
        if len(entry.paths) > 1:
            namespace[f"p{number}"] = entry.paths
            consistent = f"array_paths and len(p{number} & array_paths) > 1"
            if not entry.prefilter:  # a field may be absent: the looser test says nothing, search at once
                body += [f"        if {consistent}:",
                         f"            if _members_match(e{number}, leaves, event, context): matched[r{number}] = o{number}",
                         "        else:"]
                indent, consistent = "            ", ""
        body.append(f"{indent}while True:")
        for field, (path, alts, test, absent_ok) in enumerate(sorted(entry.open_fields, key=_cost)):
            read = shared.get(path) or f"get({path!r})"
            lines = _field_lines(path, alts, test, absent_ok, f"t{number}_{field}", namespace, read)
            body += [f"{indent}    {line}" for line in lines]
        if consistent:  # the looser test passed (it is the prefilter): now the search
            body.append(f"{indent}    if {consistent} and not _members_search(e{number}, event, context): break")
        body += [f"{indent}    matched[r{number}] = o{number}", f"{indent}    break"]
    if not entries:
        body.append("    pass")
    code = compile("\n".join(body) + "\n", f"<branch group {next(_numbers)}>", "exec")
    exec(code, namespace)  # noqa: S102 - built above from paths (as repr) and names
    return namespace["run"]
