"""Compiled forms of the catalogue's pattern lists.

Every rule list (``link_texts``, ``url_patterns``, ``text_patterns``, value ``labels``) is a list
of regexes searched case-insensitively; a list matches a text when any of its regexes does.

A ``PatternBank`` compiles *all* lists of one kind from a catalogue together, so a text is
examined once for every list at the same time:

* ``Prefilter`` — the alternation of every pattern of every list, in three groups (alternatives
  led by a literal character, alternatives anchored with ``^``, the rest): no match means no list
  matches, and the groups that match name the lists that may;
* then each of those lists is searched with the alternation of its own patterns (``match`` when
  every alternative is anchored), which is the same test as searching its patterns one by one.

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
from typing import Callable, Iterable

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
    tried at the start; the rest are searched as usual. ``owners(text)`` tells, per pattern,
    whether one of its alternatives is in a group that matched (a superset of the patterns that
    match): bit ``i`` stands for ``patterns[i]``.
    """

    def __init__(self, patterns: Iterable[str]):
        buckets: dict[str, list[tuple[str, int]]] = {"led": [], "anchored": [], "other": []}
        for number, pattern in enumerate(patterns):
            for piece in split_alternatives(pattern):
                op, av, flags = _first_op(piece)
                if _anchored(piece):
                    bucket = "anchored"
                elif op is not None and op is _constants.LITERAL and chr(av).lower() == chr(av).upper() == chr(av):
                    bucket = "led"
                else:
                    bucket = "other"
                buckets[bucket].append((piece, number))
        self._tests: list[tuple[Callable, int]] = []  # (search or match, bits of the patterns in it)
        for name, method in (("led", "search"), ("anchored", "match"), ("other", "search")):
            entries = buckets[name]
            if not entries:
                continue
            pieces = [piece for piece, _ in entries]
            owners = 0
            by_first: dict[str, int] | None = {} if name == "led" else None
            for piece, number in entries:
                owners |= 1 << number
                if by_first is not None:  # a match of a literal-led piece starts with that character
                    first = chr(_first_op(piece)[1])
                    by_first[first] = by_first.get(first, 0) | 1 << number
            for joined in ("|".join(pieces), "|".join(f"(?:{p})" for p in pieces)):
                try:
                    self._tests.append((getattr(re.compile(joined, re.I), method), owners, by_first))
                    break
                except (re.error, RecursionError, OverflowError):
                    continue
            else:  # e.g. two pieces defining the same group name: one regex each
                self._tests.extend((getattr(re.compile(piece, re.I), method), 1 << number, None) for piece, number in entries)

    def test(self, text: str) -> bool:
        for test, _owners, _by_first in self._tests:
            if test(text) is not None:
                return True
        return False

    def owners(self, text: str) -> int:
        """Bits of the patterns that may match ``text`` (every pattern that matches is among them)."""
        found = 0
        for test, owners, by_first in self._tests:
            if owners & ~found and test(text) is not None:
                if by_first is None:
                    found |= owners
                else:  # only the pieces whose first character occurs in the text
                    for char in set(text):
                        found |= by_first.get(char, 0)
        return found


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


# ---------------------------------------------------------------------------- scans over joined texts
# A regex searched with ``re.M`` over texts joined by newlines finds a match in every text in which
# it finds one alone when it looks at nothing beyond a text's ends that would tell the two apart:
# ``^``/``$`` (at a newline as at an end), ``\b``/``\B`` (a newline is no word character),
# positive look-arounds, and negative ones over characters that can never be a newline. It may find
# more (a match running on into the next text): a scan gives candidates, each then tested alone.
# ``\A``, ``\Z``, back-references, atomic groups and possessive repeats (which could commit to a
# longer match across the newline) are not joinable; such alternatives are tried on every text.
_LINES = "\n"
_SAFE_CATEGORIES = {"CATEGORY_DIGIT", "CATEGORY_WORD", "CATEGORY_NOT_SPACE", "CATEGORY_NOT_LINEBREAK"}


def _never_newline(ops, dotall: bool) -> bool:
    """No string the (sub-)pattern matches contains a newline, and it asserts nothing."""
    for op, av in ops:
        name = str(op)
        if name == "LITERAL":
            if av == 10:
                return False
        elif name == "NOT_LITERAL":
            if av != 10:
                return False
        elif name == "ANY":
            if dotall:
                return False
        elif name == "IN":
            for item, value in av:
                kind = str(item)
                if kind == "LITERAL" and value != 10:
                    continue
                if kind == "RANGE" and not value[0] <= 10 <= value[1]:
                    continue
                if kind == "CATEGORY" and str(value) in _SAFE_CATEGORIES:
                    continue
                return False  # NEGATE, other categories, newline itself
        elif name == "SUBPATTERN":
            _group, add, delete, sub = av
            if not _never_newline(sub, (dotall or bool(add & re.S)) and not delete & re.S):
                return False
        elif name == "BRANCH":
            if not all(_never_newline(branch, dotall) for branch in av[1]):
                return False
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            if not _never_newline(av[2], dotall):
                return False
        else:
            return False
    return True


def _joinable_ops(ops, dotall: bool) -> bool:
    for op, av in ops:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
            continue
        if name == "AT":
            if str(av) in ("AT_BEGINNING_STRING", "AT_END_STRING"):
                return False
        elif name == "ASSERT":
            if not _joinable_ops(av[1], dotall):
                return False
        elif name == "ASSERT_NOT":
            if not _never_newline(av[1], dotall):
                return False
        elif name == "SUBPATTERN":
            _group, add, delete, sub = av
            if not _joinable_ops(sub, (dotall or bool(add & re.S)) and not delete & re.S):
                return False
        elif name == "BRANCH":
            if not all(_joinable_ops(branch, dotall) for branch in av[1]):
                return False
        elif name in ("MAX_REPEAT", "MIN_REPEAT"):
            if not _joinable_ops(av[2], dotall):
                return False
        else:
            return False
    return True


@lru_cache(maxsize=2048)
def joinable(piece: str) -> bool:
    """Whether a regex scanned over joined texts finds every text it matches alone (see above)."""
    if _parser is None or _GLOBAL_FLAGS.search(piece):
        return False
    try:
        parsed = _parser.parse(piece, re.I)
    except (re.error, RecursionError, OverflowError):
        return False
    return _joinable_ops(parsed.data, bool(parsed.state.flags & re.S))


def join_lines(texts: list) -> tuple[str, list[int]]:
    """The texts (``None`` as empty) joined by newlines, and the offset of each in the result."""
    texts = [text or "" for text in texts]
    before = accumulate(map(len, texts), initial=0)
    return _LINES.join(texts), list(map(add, before, range(len(texts))))


class Scanner:
    """Positions of the texts in which some pattern may match: a superset of those in which one
    does, found over the texts joined by newlines (the joinable alternatives, in three searches
    the regex engine can run fast: literal-led ones, ``^``-anchored ones only at line starts, the
    rest) plus one test per text for the alternatives that cannot be joined."""

    def __init__(self, patterns: Iterable[str]):
        groups: dict[str, list[str]] = {"led": [], "anchored": [], "other": [], "alone": []}
        for pattern in patterns:
            for piece in split_alternatives(pattern):
                if not joinable(piece):
                    groups["alone"].append(piece)
                elif _anchored(piece):
                    groups["anchored"].append(piece)
                else:
                    op, av, _flags = _first_op(piece)
                    literal = op is not None and op is _constants.LITERAL and chr(av).lower() == chr(av).upper() == chr(av)
                    groups["led" if literal else "other"].append(piece)
        self._searches: list[tuple[Callable, int]] = []  # (search, offset of the joined text searched)
        for name, prefix, shift in (("led", "", 0), ("anchored", _LINES, 1), ("other", "", 0)):
            pieces = groups[name]
            if not pieces:
                continue
            try:  # anchored ones: a newline, then the piece (whose ^ holds right after it)
                compiled = re.compile(prefix + "(?:" + "|".join(f"(?:{p})" for p in pieces) + ")", re.I | re.M)
            except (re.error, RecursionError, OverflowError):
                groups["alone"].extend(pieces)
                continue
            self._searches.append((compiled.search, shift))
        self._alone = Prefilter(groups["alone"]) if groups["alone"] else None

    def positions(self, texts: list, lines: tuple[str, list[int]] | None = None) -> list[int]:
        """Ascending positions of the candidate texts; ``lines`` is ``join_lines(texts)`` when known."""
        found: set[int] = set()
        if self._searches and texts:
            joined, starts = lines if lines is not None else join_lines(texts)
            last = len(texts) - 1
            for search, shift in self._searches:
                # With ``shift`` 1 the text searched has a newline in front: its offsets are one
                # more, so a match at a text's leading newline falls on that text.
                subject = _LINES + joined if shift else joined
                pos = 0
                while True:
                    m = search(subject, pos)
                    if m is None:
                        break
                    position = bisect_right(starts, m.start()) - 1
                    found.add(position)
                    if position >= last:
                        break
                    pos = starts[position + 1]  # a match in the next text may begin where this one ended
        if self._alone is not None:
            test = self._alone.test
            found.update(i for i, text in enumerate(texts) if text and i not in found and test(text))
        return sorted(found)


class PatternBank:
    """Several pattern lists compiled together; ``mask(text)`` has bit ``i`` set when list ``i`` matches.

    A text goes through the bank's ``Prefilter`` first (most texts match no list at all); the
    groups of the prefilter that match name the lists that may match, and only those are searched,
    each with the alternation of its own patterns.
    """

    def __init__(self, lists: Iterable[Iterable[str]]):
        unique: list[tuple[str, ...]] = []
        for patterns in lists:
            key = tuple(patterns)
            if key and key not in unique:
                unique.append(key)
        self.lists = tuple(unique)
        self.index = {key: i for i, key in enumerate(self.lists)}
        self._prefilter: Prefilter | None = None
        self._list_of: list[int] = []  # pattern number -> bit of its list
        self._searches: list[tuple[int, Callable]] = []
        if not self.lists:
            return
        if any(_NOT_COMBINABLE.search(p) for key in self.lists for p in key):
            return  # numbered back-references would point elsewhere in a combined regex
        try:
            self._prefilter = Prefilter([p for key in self.lists for p in key])
        except (re.error, RecursionError, OverflowError):
            self._prefilter = None
            return
        self._list_of = [1 << i for i, key in enumerate(self.lists) for _ in key]
        for i, key in enumerate(self.lists):
            self._searches.append((1 << i, _list_search(key)))
        self._scanner = Scanner([p for key in self.lists for p in key])

    def candidates(self, texts: list, lines: tuple[str, list[int]] | None = None) -> list[int]:
        """Ascending positions of the texts that may match some list (every text that does is
        among them; ``mask`` tells). ``lines`` is ``join_lines(texts)`` when known."""
        if not self.lists:
            return []
        if self._prefilter is None:
            return [i for i, text in enumerate(texts) if text]
        return self._scanner.positions(texts, lines)

    def __contains__(self, patterns: tuple[str, ...]) -> bool:
        return patterns in self.index

    def mask(self, text: str | None) -> int:
        """Bit ``i`` set when list ``i`` matches ``text`` (0 for an empty text, like ``any_match``)."""
        if not text or not self.lists:
            return 0
        if self._prefilter is None:
            return sum(1 << i for i, key in enumerate(self.lists) if any_of(key, text))
        owners = self._prefilter.owners(text)
        if not owners:
            return 0
        candidates = 0
        list_of = self._list_of
        while owners:
            low = owners & -owners
            candidates |= list_of[low.bit_length() - 1]
            owners ^= low
        bits = 0
        for bit, search in self._searches:
            if candidates & bit and search(text) is not None:
                bits |= bit
        return bits


def _list_search(patterns: tuple[str, ...]) -> Callable:
    """A function that returns a match (or True) when any of the patterns matches, else None.

    One alternation of the list; ``match`` when every alternative is anchored at the start;
    each pattern on its own when the alternation does not compile (a group name used twice)."""
    anchored = all(_anchored(piece) for p in patterns for piece in split_alternatives(p))
    try:
        compiled = re.compile("|".join(f"(?:{p})" for p in patterns), re.I)
    except (re.error, RecursionError, OverflowError):
        return lambda text: True if any_of(patterns, text) else None
    return compiled.match if anchored else compiled.search
