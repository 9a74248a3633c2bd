"""The rules of one event bus, indexed so that routing an event only tries the rules that could match.

Each branch of each rule is filed under one "anchor" field it cannot match without: preferably a
field of exact values (``detail-type``, then ``source``, then any), looked up by value; else a field
of exact, prefix and suffix values, looked up by value, by each prefix and by each suffix of the
event's string; else any field that must be present, looked up by path. Only branches that cannot
be anchored (every field allows absence) are tried for every event.

Routing one event reads only the event keys some rule uses (a reading plan built when the rules
change, :func:`~yafdp.patterns.flatten.reading_plan`, read by a function written for it,
:func:`~yafdp.patterns.flatten.compile_reader`), looks each read value up in the anchor tables, and
runs the group of branches filed under each value found: one function written for the group
(:func:`~yafdp.patterns.codegen.compile_group`), which skips the anchor field the look-up has already
satisfied. The routing function itself is written for the anchor tables when the rules change. So the
work follows the rules that could match, not the number of rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import count
from typing import Any, NamedTuple

from yafdp.patterns import operators as op
from yafdp.patterns.codegen import compile_group
from yafdp.patterns.compile import Branch
from yafdp.patterns.flatten import Plan, compile_reader, reading_plan
from yafdp.patterns.pattern import Field, Pattern, compile_check, compile_pattern

_PREFERRED_ANCHORS = {"detail-type": 2, "source": 1}
_LOOKUP_KINDS = frozenset({op.EXACT, op.PREFIX, op.SUFFIX})


class _Rule(NamedTuple):
    order: int
    pattern: Pattern
    branch_ids: list[int]


class _Branch(NamedTuple):
    rule: str
    order: int
    check: Any  # compiled test of the fields the anchor look-up leaves open
    paths: frozenset[str]  # the branch's field paths, to see when array elements must agree
    prefilter: bool  # no field allows absence, so ``check`` failing rules out a consistent match
    fields: tuple[Field, ...]
    filed_under: list[tuple[str, str, Any]]  # (index, path, key) entries to undo on removal
    open_fields: tuple[tuple[str, list[op.Alt], Any, bool], ...]  # (path, alternatives, test, absent_ok)


class _Group:
    """The branches filed under one anchor value, and the function written to check them (on first use)."""

    __slots__ = ("branches", "run")

    def __init__(self) -> None:
        self.branches: dict[int, _Branch] = {}
        self.run = self._compile_and_run

    def changed(self) -> None:
        self.run = self._compile_and_run

    def _compile_and_run(self, *args: Any) -> None:
        self.run = compile_group(list(self.branches.values()))
        self.run(*args)


def _anchor(branch: Branch) -> tuple[int, str | None]:
    """The best field to file a branch under: (3 exact, 2 exact/prefix/suffix, 1 present, 0 none)."""
    best: tuple = (0, 0, 0, "")
    for path, alts in branch.items():
        kinds = {alt.kind for alt in alts}
        if op.ABSENT in kinds:
            continue  # a field that may be missing cannot narrow anything down
        if kinds == {op.EXACT}:
            grade = 3
        elif kinds <= _LOOKUP_KINDS:
            grade = 2
        else:
            grade = 1
        candidate = (grade, _PREFERRED_ANCHORS.get(path, 0), -len(alts), path)
        if candidate[:3] > best[:3]:
            best = candidate
    return best[0], (best[3] if best[0] else None)


class RuleSet:
    """Named event patterns, matched together: the routing table of one event bus.

    Rules are indexed (see the module documentation), so the cost of :meth:`matching` grows with
    the number of rules that could match an event, not with the number of rules.

    Examples
    --------
    >>> rules = RuleSet()
    >>> rules.add("paid", {"source": ["payments"], "detail-type": ["PaymentSucceeded"]})
    >>> rules.add("big-orders", {"source": ["orders"], "detail": {"total": [{"numeric": [">", 100]}]}})
    >>> rules.matching({"source": "orders", "detail-type": "OrderPlaced", "detail": {"total": 250}})
    ['big-orders']
    >>> rules.remove("big-orders")
    >>> rules.matching({"source": "orders", "detail-type": "OrderPlaced", "detail": {"total": 250}})
    []
    """

    def __init__(self) -> None:
        self._rules: dict[str, _Rule] = {}
        self._branches: dict[int, _Branch] = {}
        self._next_order = count()
        self._next_branch = count()
        # Each table entry is the group of branches filed under that key, run when the key is found.
        self._exact: dict[str, dict[Any, _Group]] = {}
        self._prefix: dict[str, dict[str, _Group]] = {}
        self._suffix: dict[str, dict[str, _Group]] = {}
        self._present: dict[str, _Group] = {}
        self._unanchored = _Group()
        self._prefix_lengths: dict[str, list[int]] = {}
        self._suffix_lengths: dict[str, list[int]] = {}
        self._path_uses: Counter[str] = Counter()
        self._paths: frozenset[str] = frozenset()
        self._plan: Plan = {}
        self._router: Any = None  # the routing function, written on first use after a change

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, name: object) -> bool:
        return name in self._rules

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._rules, key=lambda name: self._rules[name].order))

    def add(self, name: str, pattern: dict | str | Pattern) -> None:
        """Add a rule, or replace the rule of that name (which keeps its place in the order).

        Raises
        ------
        PatternError
            If the pattern is invalid; the rule set is then left unchanged.

        Examples
        --------
        >>> rules = RuleSet()
        >>> rules.add("r", '{"source": ["a"]}')
        >>> rules.add("r", {"source": ["b"]})
        >>> rules.matching({"source": "a"}), rules.matching({"source": "b"})
        ([], ['r'])
        """
        compiled = pattern if isinstance(pattern, Pattern) else compile_pattern(pattern)
        previous = self._rules.get(name)
        if previous is not None:
            self._forget(name)
        order = previous.order if previous is not None else next(self._next_order)
        branch_ids = []
        for branch, fields in zip(compiled.branches, compiled.fields):
            branch_id = next(self._next_branch)
            grade, anchor = _anchor(branch)
            # An exact, prefix or suffix anchor is satisfied by the look-up that finds the branch.
            open_fields = tuple(f for f in fields if grade < 2 or f[0] != anchor)
            prefilter = not any(absent_ok for _path, _test, absent_ok in fields)
            entry = _Branch(name, order, compile_check(open_fields), frozenset(branch), prefilter, fields, [],
                            tuple((path, branch[path], test, absent_ok) for path, test, absent_ok in open_fields))
            entry.filed_under.extend(self._file(branch_id, branch, entry, grade, anchor))
            self._branches[branch_id] = entry
            branch_ids.append(branch_id)
        self._rules[name] = _Rule(order, compiled, branch_ids)
        self._path_uses.update(compiled.prefixes)
        self._paths_changed()

    def remove(self, name: str) -> None:
        """Remove the rule called ``name``; raises ``KeyError`` if there is none.

        Examples
        --------
        >>> rules = RuleSet()
        >>> rules.add("r", {"source": ["a"]})
        >>> rules.remove("r")
        >>> len(rules)
        0
        """
        if name not in self._rules:
            raise KeyError(name)
        self._forget(name)
        del self._rules[name]

    def matching(self, event: dict) -> list[str]:
        """The names of the rules whose patterns match ``event``, in the order the rules were added.

        Examples
        --------
        >>> rules = RuleSet()
        >>> rules.add("any-order", {"source": [{"prefix": "orders"}]})
        >>> rules.add("eu", {"region": [{"prefix": "eu-"}]})
        >>> rules.matching({"source": "orders.eu", "region": "eu-west-1"})
        ['any-order', 'eu']
        """
        if not isinstance(event, dict):
            raise TypeError(f"an event is a JSON object (a dict), not {type(event).__name__}")
        router = self._router
        if router is None:
            router = self._router = self._write_router()
        return router(event)

    def _write_router(self):
        """The routing function for the anchor tables as they are now (see the module documentation)."""
        namespace: dict[str, Any] = {"_read": compile_reader(self._plan), "_plan": self._plan,
                                     "_value_key": op.value_key, "_unanchored": self._unanchored}
        body = ["def route(event):",
                "    leaves, array_paths = _read(event)",
                "    get = leaves.get",
                "    matched = {}",
                "    context = [None, _plan]"]
        if self._unanchored.branches:
            body.append("    _unanchored.run(leaves, array_paths, matched, event, context)")
        for number, (path, table) in enumerate(self._exact.items()):
            namespace[f"x{number}"] = table
            body += [f"    values = get({path!r})",
                     "    if values is not None:",
                     "        for value in values:",
                     f"            group = x{number}.get(value if type(value) is str else _value_key(value))",
                     "            if group is not None: group.run(leaves, array_paths, matched, event, context)"]
        for kind, tables, lengths in (("p", self._prefix, self._prefix_lengths), ("s", self._suffix, self._suffix_lengths)):
            for number, (path, table) in enumerate(tables.items()):
                namespace[f"{kind}{number}"], namespace[f"{kind}{number}n"] = table, lengths[path]
                piece = "value[:size]" if kind == "p" else "value[length - size:]"
                body += [f"    values = get({path!r})",
                         "    if values is not None:",
                         "        for value in values:",
                         "            if type(value) is str:",
                         "                length = len(value)",
                         f"                for size in {kind}{number}n:",
                         "                    if size > length: break",
                         f"                    group = {kind}{number}.get({piece})",
                         "                    if group is not None: group.run(leaves, array_paths, matched, event, context)"]
        for number, (path, group) in enumerate(self._present.items()):
            namespace[f"e{number}"] = group
            body.append(f"    if {path!r} in leaves: e{number}.run(leaves, array_paths, matched, event, context)")
        body += ["    if len(matched) < 2: return list(matched)",
                 "    return sorted(matched, key=matched.__getitem__)"]
        exec("\n".join(body) + "\n", namespace)  # noqa: S102 - built above from paths (as repr) and names
        return namespace["route"]

    # -- index maintenance --------------------------------------------------------------------

    def _file(self, branch_id: int, branch: Branch, entry: _Branch, grade: int, path: str | None
              ) -> list[tuple[str, str, Any]]:
        entries: list[tuple[str, str, Any]] = []
        if grade >= 2:
            for alt in branch[path]:
                if alt.kind == op.EXACT:
                    self._join(self._exact.setdefault(path, {}).setdefault(alt.arg, _Group()), branch_id, entry)
                    entries.append(("exact", path, alt.arg))
                elif alt.kind == op.PREFIX:
                    self._join(self._prefix.setdefault(path, {}).setdefault(alt.arg, _Group()), branch_id, entry)
                    entries.append(("prefix", path, alt.arg))
                else:
                    self._join(self._suffix.setdefault(path, {}).setdefault(alt.arg, _Group()), branch_id, entry)
                    entries.append(("suffix", path, alt.arg))
            self._refresh_lengths(path)
        elif grade == 1:
            self._join(self._present.setdefault(path, _Group()), branch_id, entry)
            entries.append(("present", path, None))
        else:
            self._join(self._unanchored, branch_id, entry)
        return entries

    @staticmethod
    def _join(group: _Group, branch_id: int, entry: _Branch) -> None:
        group.branches[branch_id] = entry
        group.changed()

    def _forget(self, name: str) -> None:
        rule = self._rules[name]
        for branch_id in rule.branch_ids:
            branch = self._branches.pop(branch_id)
            if self._unanchored.branches.pop(branch_id, None) is not None:
                self._unanchored.changed()
            for index, path, key in branch.filed_under:
                if index == "present":
                    self._drop(self._present, path, branch_id)
                    continue
                tables = {"exact": self._exact, "prefix": self._prefix, "suffix": self._suffix}[index]
                self._drop(tables[path], key, branch_id)
                if not tables[path]:
                    del tables[path]
                self._refresh_lengths(path)
        self._path_uses.subtract(rule.pattern.prefixes)
        self._path_uses = +self._path_uses  # drop the paths no rule uses any more
        self._paths_changed()

    def _paths_changed(self) -> None:
        self._paths = frozenset(self._path_uses)
        self._plan = reading_plan(self._paths)
        self._router = None

    @staticmethod
    def _drop(table: dict, key: Any, branch_id: int) -> None:
        group = table.get(key)
        if group is not None:
            group.branches.pop(branch_id, None)
            group.changed()
            if not group.branches:
                del table[key]

    def _refresh_lengths(self, path: str) -> None:
        for table, lengths in ((self._prefix, self._prefix_lengths), (self._suffix, self._suffix_lengths)):
            if path in table:
                lengths[path] = sorted({len(text) for text in table[path]})
            else:
                lengths.pop(path, None)
