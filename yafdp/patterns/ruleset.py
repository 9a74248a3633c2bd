"""The rules of one event bus, indexed so that routing an event only tries the rules that could match.

Each branch of each rule is filed under one "anchor" field it cannot match without: preferably a
field of exact values (``detail-type``, then ``source``, then any), looked up by value; else a field
of exact, prefix and suffix values, looked up by value, by each prefix and by each suffix of the
event's string; else any field that must be present, looked up by path. Only branches that cannot
be anchored (every field allows absence) are tried for every event.

Routing one event reads only the event keys some rule uses (a reading plan built when the rules
change, :func:`~yafdp.patterns.flatten.reading_plan`), looks each read value up in the anchor
tables, and checks each branch found with a function compiled for that branch
(:func:`~yafdp.patterns.pattern.compile_check`), which skips the anchor field the look-up has
already satisfied. So the work follows the rules that could match, not the number of rules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import count
from typing import Any, NamedTuple

from yafdp.patterns import operators as op
from yafdp.patterns.compile import Branch
from yafdp.patterns.flatten import Plan, flatten_members_planned, flatten_planned, reading_plan
from yafdp.patterns.pattern import Field, Pattern, branch_matches_members, compile_check, compile_pattern

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
        # Each table entry is a dict from branch id to _Branch, iterated when the key is found.
        self._exact: dict[str, dict[Any, dict[int, _Branch]]] = {}
        self._prefix: dict[str, dict[str, dict[int, _Branch]]] = {}
        self._suffix: dict[str, dict[str, dict[int, _Branch]]] = {}
        self._present: dict[str, dict[int, _Branch]] = {}
        self._unanchored: dict[int, _Branch] = {}
        self._prefix_lengths: dict[str, list[int]] = {}
        self._suffix_lengths: dict[str, list[int]] = {}
        self._path_uses: Counter[str] = Counter()
        self._paths: frozenset[str] = frozenset()
        self._plan: Plan = {}

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
            entry = _Branch(name, order, compile_check(open_fields), frozenset(branch), prefilter, fields, [])
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
        leaves, array_paths = flatten_planned(event, self._plan)
        found = [self._unanchored] if self._unanchored else []
        get = leaves.get
        for path, table in self._exact.items():
            values = get(path)
            if values is not None:
                for value in values:
                    branches = table.get(value if type(value) is str else op.value_key(value))
                    if branches:
                        found.append(branches)
        for path, table in self._prefix.items():
            values = get(path)
            if values is not None:
                sizes = self._prefix_lengths[path]
                for value in values:
                    if type(value) is str:
                        for size in sizes:
                            if size > len(value):
                                break
                            branches = table.get(value[:size])
                            if branches:
                                found.append(branches)
        for path, table in self._suffix.items():
            values = get(path)
            if values is not None:
                sizes = self._suffix_lengths[path]
                for value in values:
                    if type(value) is str:
                        for size in sizes:
                            if size > len(value):
                                break
                            branches = table.get(value[len(value) - size :])
                            if branches:
                                found.append(branches)
        for path, branches in self._present.items():
            if path in leaves:
                found.append(branches)

        matched: dict[str, int] = {}
        members = None
        for branches in found:
            for rule, order, check, paths, prefilter, fields, _filed in branches.values():
                if rule in matched:
                    continue
                if array_paths and len(paths & array_paths) > 1:
                    # Two fields inside objects in arrays: they must come from the same elements.
                    # Taking each field's values from any element is a looser test, so when it
                    # fails (and no field may be absent) the element-by-element search can't pass.
                    if prefilter and not check(leaves):
                        continue
                    if members is None:
                        members = flatten_members_planned(event, self._plan)
                    if branch_matches_members(fields, members):
                        matched[rule] = order
                elif check(leaves):
                    matched[rule] = order
        if len(matched) < 2:
            return list(matched)
        return sorted(matched, key=matched.__getitem__)

    # -- index maintenance --------------------------------------------------------------------

    def _file(self, branch_id: int, branch: Branch, entry: _Branch, grade: int, path: str | None
              ) -> list[tuple[str, str, Any]]:
        entries: list[tuple[str, str, Any]] = []
        if grade >= 2:
            for alt in branch[path]:
                if alt.kind == op.EXACT:
                    self._exact.setdefault(path, {}).setdefault(alt.arg, {})[branch_id] = entry
                    entries.append(("exact", path, alt.arg))
                elif alt.kind == op.PREFIX:
                    self._prefix.setdefault(path, {}).setdefault(alt.arg, {})[branch_id] = entry
                    entries.append(("prefix", path, alt.arg))
                else:
                    self._suffix.setdefault(path, {}).setdefault(alt.arg, {})[branch_id] = entry
                    entries.append(("suffix", path, alt.arg))
            self._refresh_lengths(path)
        elif grade == 1:
            self._present.setdefault(path, {})[branch_id] = entry
            entries.append(("present", path, None))
        else:
            self._unanchored[branch_id] = entry
        return entries

    def _forget(self, name: str) -> None:
        rule = self._rules[name]
        for branch_id in rule.branch_ids:
            branch = self._branches.pop(branch_id)
            self._unanchored.pop(branch_id, None)
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

    @staticmethod
    def _drop(table: dict, key: Any, branch_id: int) -> None:
        branches = table.get(key)
        if branches is not None:
            branches.pop(branch_id, None)
            if not branches:
                del table[key]

    def _refresh_lengths(self, path: str) -> None:
        for table, lengths in ((self._prefix, self._prefix_lengths), (self._suffix, self._suffix_lengths)):
            if path in table:
                lengths[path] = sorted({len(text) for text in table[path]})
            else:
                lengths.pop(path, None)
