"""The ``wildcard`` operator: its syntax, a fast matcher, and EventBridge's "rule is too complex" check."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from yafdp.patterns.errors import PatternError

STAR = 256  # a token standing for ``*`` among byte tokens 0..255

# EventBridge rejects a rule once this many wildcard-pattern positions can be live at once for one
# field. The number is calibrated on EventBridge's recorded answers (see ``complexity``).
COMPLEXITY_LIMIT = 10
TOO_COMPLEX = (
    "Rule is too complex - try using fewer wildcard characters or fewer repeating character "
    "sequences after a wildcard character"
)
_SUBSET_BUDGET = 20_000


def wildcard_tokens(text: str) -> list[int]:
    """Parse a wildcard value into byte tokens (``STAR`` for ``*``), quotes included as EventBridge does.

    Raises :class:`PatternError` for ``**`` and for a backslash escaping anything but ``*`` or ``\\``;
    positions in the messages count bytes of the quoted value, as EventBridge's do.

    Examples
    --------
    >>> wildcard_tokens("a*") == [ord('"'), ord("a"), STAR, ord('"')]
    True
    >>> wildcard_tokens("a**")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    yafdp.patterns.errors.PatternError: Event pattern is not valid. Reason: Consecutive wildcard ...
    """
    raw = ('"' + text + '"').encode("utf-8")
    tokens: list[int] = []
    index = 0
    while index < len(raw):
        byte = raw[index]
        if byte == 0x2A:  # *
            if index + 1 < len(raw) and raw[index + 1] == 0x2A:
                raise PatternError(f"Consecutive wildcard characters at pos {index}")
            tokens.append(STAR)
        elif byte == 0x5C:  # backslash
            if index + 1 < len(raw) and raw[index + 1] in (0x2A, 0x5C):
                tokens.append(raw[index + 1])
                index += 1
            else:
                raise PatternError(f"Invalid escape character at pos {index}")
        else:
            tokens.append(byte)
        index += 1
    return tokens


def wildcard_matcher(text: str) -> Callable[[str], bool]:
    """A function telling whether a string matches the wildcard value ``text`` (assumed valid), in time linear
    in the string's length.

    ``text`` splits at its unescaped ``*`` into literal pieces: the first must start the string, the last
    must end it, and the ones between must occur in order, without overlapping, in what is left between the
    two. Taking each middle piece at its leftmost place there is never wrong (it leaves the most room to the
    rest), so no choice is ever revisited: the string is scanned once, left to right, with ``str.find`` (a
    regular expression backtracks: ``*a*a*a*b`` took 12 s on 800 characters that way). EventBridge's engine,
    Event Ruler, compiles patterns into a finite automaton, which does not backtrack either
    (https://github.com/aws/event-ruler, "deleteRule()").

    Examples
    --------
    >>> matches = wildcard_matcher("*/lib/*.jar")
    >>> matches("/usr/lib/x.jar"), matches("/usr/bin/x.jar")
    (True, False)
    >>> wildcard_matcher("*a*a*a*b")("a" * 1_000_000)
    False
    """
    pieces: list[str] = [""]
    chars = iter(text)
    for char in chars:
        if char == "\\":
            pieces[-1] += next(chars)
        elif char == "*":
            pieces.append("")
        else:
            pieces[-1] += char
    if len(pieces) == 1:
        literal = pieces[0]
        return literal.__eq__
    head, *middle, tail = pieces
    least = len(head) + len(tail) + sum(map(len, middle))
    if not middle:  # one star: the common cases, without a loop
        if not tail:
            return lambda value: value.startswith(head)
        if not head:
            return lambda value: value.endswith(tail)
        return lambda value: len(value) >= least and value.startswith(head) and value.endswith(tail)

    def matches(value: str) -> bool:
        if len(value) < least or not value.startswith(head) or not value.endswith(tail):
            return False
        start, end = len(head), len(value) - len(tail)
        for piece in middle:
            found = value.find(piece, start, end)
            if found < 0:
                return False
            start = found + len(piece)
        return True
    return matches


def complexity(values: Iterable[str]) -> int:
    """How many wildcard-pattern positions an input can keep live at once, for one field's wildcards.

    This models EventBridge's (event-ruler's) machine-complexity measure: the wildcard values of one
    field share their literal prefix up to and including the first ``*``; after that each value
    has its own positions; an input's cost is the number of values behind every position it keeps
    live (the position before a ``*`` and the ``*`` itself both count). The result is capped at
    ``COMPLEXITY_LIMIT``. The limit reproduces EventBridge's recorded answers:
    ``"*:*:*:*:*:event-bus/*"`` scores 10 (rejected), ``"/Users/*/dir/dir/dir/dir/dir/doc.txt"``
    scores 7 and three ``"*:stack/<name>/*"`` values score 9 (accepted), four score 10 or more
    (rejected).

    Examples
    --------
    >>> complexity(["arn:aws:events:us-east-1:*:event-bus/*"])
    3
    >>> complexity(["*:*:*:*:*:event-bus/*"]) >= COMPLEXITY_LIMIT
    True
    """
    weights: list[set[int]] = [set()]
    literal: list[dict[int, list[int]]] = [{}]
    looping: list[bool] = [False]
    epsilon: list[list[int]] = [[]]
    trie: dict[tuple[int, int], int] = {}
    shared_star: dict[int, int] = {}
    alphabet: set[int] = set()

    def new_state() -> int:
        weights.append(set())
        literal.append({})
        looping.append(False)
        epsilon.append([])
        return len(weights) - 1

    for pattern_id, value in enumerate(sorted(set(values))):
        current, determinate = 0, True
        for token in wildcard_tokens(value):
            if token == STAR:
                star = shared_star.get(current) if determinate else None
                if star is None:
                    star = new_state()
                    looping[star] = True
                    epsilon[current].append(star)
                    if determinate:
                        shared_star[current] = star
                determinate = False
                current = star
            else:
                alphabet.add(token)
                following = trie.get((current, token)) if determinate else None
                if following is None:
                    following = new_state()
                    literal[current].setdefault(token, []).append(following)
                    if determinate:
                        trie[current, token] = following
                current = following
            weights[current].add(pattern_id)

    if len(weights) == 1:
        return 0

    def closure(states: set[int]) -> frozenset[int]:
        pending, seen = list(states), set(states)
        while pending:
            for target in epsilon[pending.pop()]:
                if target not in seen:
                    seen.add(target)
                    pending.append(target)
        return frozenset(seen)

    start = closure({0})
    symbols = sorted(alphabet) + [STAR]  # STAR stands for every byte no value spells out
    seen_sets = {start}
    pending = [start]
    worst = 0
    while pending:
        active = pending.pop()
        for symbol in symbols:
            following: set[int] = set()
            for state in active:
                if looping[state]:
                    following.add(state)
                following.update(literal[state].get(symbol, ()))
            if not following:
                continue
            reached = closure(following)
            cost = sum(len(weights[state]) for state in reached)
            if cost >= COMPLEXITY_LIMIT:
                return COMPLEXITY_LIMIT
            worst = max(worst, cost)
            if reached not in seen_sets:
                if len(seen_sets) >= _SUBSET_BUDGET:
                    return COMPLEXITY_LIMIT
                seen_sets.add(reached)
                pending.append(reached)
    return worst


def check_complexity(values: Iterable[str]) -> None:
    """Raise EventBridge's "Rule is too complex" :class:`PatternError` if ``values`` are too complex."""
    if complexity(values) >= COMPLEXITY_LIMIT:
        raise PatternError(TOO_COMPLEX)
