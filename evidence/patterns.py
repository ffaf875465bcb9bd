"""Compiled forms of the catalogue's pattern lists.

Every rule list (``link_texts``, ``url_patterns``, ``text_patterns``, value ``labels``) is a list
of regexes searched case-insensitively; a list matches a text when any of its regexes does.

A ``PatternBank`` compiles *all* lists of one kind from a catalogue into two regexes, so a text is
examined once for every list at the same time:

* ``prefilter`` — the alternation of every pattern of every list: no match means no list matches;
* ``which`` — one optional look-ahead per list, each capturing a named group when its list
  matches anywhere in the text (``\\A(?:(?=.*?(?P<g0>list0))|)(?:(?=.*?(?P<g1>list1))|)…``), so a
  single ``match`` call says which lists match. A look-ahead scanning ``.*?`` then the list is the
  same test as ``search`` with that list: anchors, look-behinds and word boundaries see the same
  string (a list whose every alternative starts with ``^`` is only tried at the start).

Lists that cannot be combined (numbered back-references, which would point elsewhere in a combined
regex, or a combination that does not compile, e.g. two lists defining the same group name) are
tested one by one; the result is the same, only slower.

Lists of plain keywords (``literal_alternatives``) are searched once over all texts of a page
joined by a separator no text contains (``positions_containing``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate
from operator import add
from typing import Iterable

try:  # the regex parser of the standard library, to look at a pattern's structure
    from re import _constants, _parser
except ImportError:  # pragma: no cover - then every pattern is treated as opaque (same results, slower)
    _constants = _parser = None

_GLOBAL_FLAGS = re.compile(r"\(\?[aiLmsux]+\)")
_NOT_COMBINABLE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")


@lru_cache(maxsize=512)
def rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


@lru_cache(maxsize=512)
def union(patterns: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


def any_of(patterns: tuple[str, ...], text: str) -> bool:
    """Any of the regexes, each compiled on its own, matches ``text`` (the fallback of a bank)."""
    return any(rx(p).search(text) is not None for p in patterns)


def any_match(patterns: Iterable[str], text: str | None) -> bool:
    """Does any of the regexes match the text? (one combined regex per rule list)"""
    if not text or not patterns:
        return False
    return union(tuple(patterns)).search(text) is not None


def split_alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of a regex (``a|b(c|d)`` -> ``a``, ``b(c|d)``), or ``[pattern]``.

    Escapes, character classes, groups and comments are skipped; a split that leaves a piece
    which does not compile on its own is not a split (the pattern is returned whole).
    """
    if _GLOBAL_FLAGS.search(pattern):
        return [pattern]  # (?x) and the like apply to every alternative
    pieces, start, depth, i, n = [], 0, 0, 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if pattern.startswith("(?#", i):
            end = pattern.find(")", i)
            i = n if end < 0 else end + 1
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            pieces.append(pattern[start:i])
            start = i + 1
        i += 1
    pieces.append(pattern[start:])
    if len(pieces) == 1:
        return pieces
    try:
        for piece in pieces:
            re.compile(piece, re.I)
    except re.error:
        return [pattern]
    return pieces


def _first_op(piece: str):
    if _parser is None:
        return None, None, 0
    try:
        parsed = _parser.parse(piece, re.I)
    except (re.error, RecursionError, OverflowError):
        return None, None, 0
    if not parsed.data:
        return None, None, parsed.state.flags
    op, av = parsed.data[0]
    return op, av, parsed.state.flags


def _anchored(piece: str) -> bool:
    """Every match of the regex starts at the start of the text (``^`` / ``\\A`` first, no MULTILINE)."""
    op, av, flags = _first_op(piece)
    return op is not None and op is _constants.AT and av in (_constants.AT_BEGINNING, _constants.AT_BEGINNING_STRING) and not flags & re.M


class Prefilter:
    """``test(text)``: does any of the patterns match somewhere in ``text``?

    The same answer as one alternation of all patterns, faster: the patterns' top-level
    alternatives that start with a literal character are joined so the regex engine can skip to
    the positions where one of those characters occurs; alternatives anchored with ``^`` are only
    tried at the start; the rest are searched as usual.
    """

    def __init__(self, patterns: Iterable[str]):
        led: list[str] = []
        anchored: list[str] = []
        other: list[str] = []
        for pattern in patterns:
            for piece in split_alternatives(pattern):
                op, av, flags = _first_op(piece)
                if _anchored(piece):
                    anchored.append(piece)
                elif op is not None and op is _constants.LITERAL and chr(av).lower() == chr(av).upper() == chr(av):
                    led.append(piece)
                else:
                    other.append(piece)
        self._tests = []
        for pieces, method in ((led, "search"), (anchored, "match"), (other, "search")):
            if not pieces:
                continue
            for joined in ("|".join(pieces), "|".join(f"(?:{p})" for p in pieces)):
                try:
                    self._tests.append(getattr(re.compile(joined, re.I), method))
                    break
                except (re.error, RecursionError, OverflowError):
                    continue
            else:  # e.g. two pieces defining the same group name: one regex each
                self._tests.extend(getattr(re.compile(p, re.I), method) for p in pieces)

    def test(self, text: str) -> bool:
        for test in self._tests:
            if test(text) is not None:
                return True
        return False


@lru_cache(maxsize=512)
def _literal_alternatives(patterns: tuple[str, ...]) -> tuple[str, ...] | None:
    found = _literals(patterns)
    return tuple(found) if found is not None else None


def literal_alternatives(patterns: Iterable[str]) -> tuple[str, ...] | None:
    """The plain strings a list consists of (``互动|信箱`` -> ``互动``, ``信箱``), or None when any
    alternative is more than a literal (cached per list)."""
    return _literal_alternatives(tuple(patterns))


def _literals(patterns: Iterable[str]) -> list[str] | None:
    if _parser is None:
        return None
    out: list[str] = []
    for pattern in patterns:
        for piece in split_alternatives(pattern):
            try:
                parsed = _parser.parse(piece, re.I)
            except (re.error, RecursionError, OverflowError):
                return None
            if parsed.state.flags & ~(re.I | re.U) or not parsed.data:
                return None
            if any(op is not _constants.LITERAL for op, _ in parsed.data):
                return None
            out.append("".join(chr(av) for _, av in parsed.data))
    return out if out and all(SEPARATOR not in s for s in out) else None


# Joins texts for one search over all of them: it occurs in no text of a parsed page (XML has no NUL).
SEPARATOR = "\x00"


def positions_containing(texts: list[str], regex: str, joined: str | None = None, starts: list[int] | None = None) -> list[int]:
    """Positions of the texts in which ``regex`` finds a match, in one search over all texts.

    Only for regexes whose matches cannot reach over the separator into the next text (literal
    strings without it, a single character class that excludes it): every match then lies in one
    text, and the search goes on after the end of that text. ``joined`` and ``starts`` (the
    offset of every text in it) may be passed when several regexes scan the same texts.
    """
    if joined is None or starts is None:
        joined, starts = join_texts(texts)
    finder = re.compile(f"(?:{regex})[^{SEPARATOR}]*", re.I)
    found: list[int] = []
    for m in finder.finditer(joined):
        position = bisect_right(starts, m.start()) - 1
        if not found or found[-1] != position:  # a text holding the separator itself is still one text
            found.append(position)
    return found


def join_texts(texts: list[str]) -> tuple[str, list[int]]:
    """The texts joined by ``SEPARATOR`` and the offset of each in the joined string."""
    before = accumulate(map(len, texts), initial=0)  # characters of the texts before each one
    return SEPARATOR.join(texts), list(map(add, before, range(len(texts))))


class PatternBank:
    """Several pattern lists compiled together; ``mask(text)`` has bit ``i`` set when list ``i`` matches."""

    def __init__(self, lists: Iterable[Iterable[str]]):
        unique: list[tuple[str, ...]] = []
        for patterns in lists:
            key = tuple(patterns)
            if key and key not in unique:
                unique.append(key)
        self.lists = tuple(unique)
        self.index = {key: i for i, key in enumerate(self.lists)}
        self._prefilter = self._which = None
        self._groups: list[str] = []
        if not self.lists:
            return
        if any(_NOT_COMBINABLE.search(p) for key in self.lists for p in key):
            return
        # A list whose every alternative is anchored at the start is only tried there.
        anchored = [all(_anchored(piece) for p in key for piece in split_alternatives(p)) for key in self.lists]
        try:
            self._prefilter = Prefilter([p for key in self.lists for p in key])
            self._which = re.compile(
                r"\A" + "".join(
                    f"(?:(?={'' if anchored[i] else '(?s:.*?)'}(?P<g{i}>{'|'.join(f'(?:{p})' for p in key)}))|)"
                    for i, key in enumerate(self.lists)
                ),
                re.I,
            )
        except (re.error, RecursionError, OverflowError):
            self._prefilter = self._which = None
        self._groups = [f"g{i}" for i in range(len(self.lists))]

    def __contains__(self, patterns: tuple[str, ...]) -> bool:
        return patterns in self.index

    def mask(self, text: str | None) -> int:
        """Bit ``i`` set when list ``i`` matches ``text`` (0 for an empty text, like ``any_match``)."""
        if not text or not self.lists:
            return 0
        if self._which is None:
            return sum(1 << i for i, key in enumerate(self.lists) if any_of(key, text))
        if not self._prefilter.test(text):
            return 0
        m = self._which.match(text)
        bits = 0
        for i, name in enumerate(self._groups):
            if m.group(name) is not None:
                bits |= 1 << i
        return bits
