"""How a value from outside (a file, an option, a request, a run's database) is quoted in what yafdp prints or
records: safely, so it cannot drive the terminal, and briefly, so it cannot flood it or leak a secret.

- :func:`printable` is a text with everything a terminal would act on or hide escaped (control characters,
  newlines, escape sequences, Unicode's invisible direction marks): one line, shown as it is.
- :func:`excerpt` quotes a value a refusal is about: at most :data:`EXCERPT_CHARACTERS` of it, card-number-like
  digit runs masked but for their last four, a secret not at all.
"""

from __future__ import annotations

import re

EXCERPT_CHARACTERS = 64  # the longest id the catalog's schemas allow ("ord-" and 60 more) is quoted whole
# A run of 12 to 19 digits, single spaces or dashes between them: a payment card number (PAN) as typed. PCI DSS
# allows at most its first six and last four digits to be displayed (requirement 3.4.1); refusals show the last four.
CARD_NUMBER = re.compile(r"\d(?:[ -]?\d){11,18}")


def printable(text: object) -> str:
    """``str(text)`` with every character a terminal would act on or not show escaped as Python writes it in a
    string literal (``\\x1b``, ``\\n``, ``\\u202e``): control characters (C0, DEL, C1), line and paragraph
    separators, format characters (the direction overrides that reorder what is shown) and spaces other than
    the plain one. Everything else is left as it is, so a path or an id reads as it was given.

    Examples
    --------
    >>> printable("ord-1\\x1b]0;pwned\\x07\\n")
    'ord-1\\\\x1b]0;pwned\\\\x07\\\\n'
    >>> printable("runs/café")
    'runs/café'
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def excerpt(value: object, *, secret: bool = False, quoted: bool = True, masked: bool = True,
            limit: int = EXCERPT_CHARACTERS) -> str:
    """A short, masked, printable quotation of ``value`` for a refusal (what the terminal, ``summary.json`` and
    ``run.db`` keep of it): a string in quotes (``quoted``) with its card-number-like digit runs masked but for
    their last four (unless not ``masked``: an id the project made, such as an event's UUID) and, beyond ``limit``
    characters, cut with its length said; another value as Python writes it, cut the same way. A ``secret`` (a
    payment token) is never shown, only its length.

    Examples
    --------
    >>> excerpt("4242 4242 4242 4242")
    "'**** **** **** 4242'"
    >>> excerpt("cus-" + "x" * 2_000_000)
    "'cus-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' (2,000,004 characters)"
    >>> excerpt("tok_live_abc", secret=True)
    '(12 characters, not shown: a secret)'
    >>> excerpt([1, 2, 3])
    '[1, 2, 3]'
    """
    if secret:
        return f"({len(value):,} characters, not shown: a secret)" if isinstance(value, str) else \
            f"(a {type(value).__name__}, not shown: a secret)"
    text = value if isinstance(value, str) else repr(value)
    cut = len(text) > limit
    shown = text[:limit + 40] if cut else text
    shown = (CARD_NUMBER.sub(_masked, shown) if masked else shown)[:limit] + ("…" if cut else "")
    shown = printable(shown)
    if isinstance(value, str) and quoted:
        shown = f"'{shown}'"
    return f"{shown} ({len(text):,} characters)" if cut else shown


def _masked(match: re.Match) -> str:
    digits = match.group()
    keep = len(digits)
    for _ in range(4):  # the position where the last four digits start
        keep = max(i for i in range(keep) if digits[i].isdigit())
    return re.sub(r"\d", "*", digits[:keep]) + digits[keep:]
