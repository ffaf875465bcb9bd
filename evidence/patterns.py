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


def positions_containing(
    texts: list[str], regex: str, joined: str | None = None, starts: list[int] | None = None, *, ignore_case: bool = True
) -> list[int]:
    """Positions of the texts in which ``regex`` finds a match, in one search over all texts.

    Only for regexes whose matches cannot reach over the separator into the next text (literal
    strings without it, a single character class that excludes it): every match then lies in one
    text, and the search goes on after the end of that text. ``joined`` and ``starts`` (the
    offset of every text in it) may be passed when several regexes scan the same texts.
    """
    if joined is None or starts is None:
        joined, starts = join_texts(texts)
    finder = _finder(regex, ignore_case)
    found: list[int] = []
    for m in finder.finditer(joined):
        position = bisect_right(starts, m.start()) - 1
        if not found or found[-1] != position:  # a text holding the separator itself is still one text
            found.append(position)
    return found


@lru_cache(maxsize=512)
def _finder(regex: str, ignore_case: bool = True) -> re.Pattern:
    """The regex followed by the rest of its text (``positions_containing``)."""
    return re.compile(f"(?:{regex})[^{SEPARATOR}]*", re.I if ignore_case else 0)


def folded_alternatives(literals: Iterable[str]) -> str | None:
    """For keywords each ASCII or without case, one with a cased letter: the regex of the
    lowered keywords, which finds them case-sensitively in lowered text (``lowered``) exactly
    where they are found case-insensitively in the text, and lets the regex engine skip to where
    a keyword can start (a case-insensitive regex does not); else None."""
    literals = list(literals)
    folded = [_foldable(lit) for lit in literals]
    if not all(folded) or not any(lit.lower() != lit.upper() for lit in literals):
        return None
    return "|".join(re.escape(fold) for fold in folded)


def lowered(text: str) -> str | None:
    """``text.lower()`` where that keeps every position (see ``_lowered``), else None."""
    return _lowered(text)


def join_texts(texts: list[str]) -> tuple[str, list[int]]:
    """The texts joined by ``SEPARATOR`` and the offset of each in the joined string."""
    before = accumulate(map(len, texts), initial=0)  # characters of the texts before each one
    return SEPARATOR.join(texts), list(map(add, before, range(len(texts))))


# ---------------------------------------------------------------------------- scans over joined texts
# Texts joined by newlines for one search over all of them (``Scanner``). A regex searched there
# with MULTILINE finds, in every text without a newline, each match it finds in the text alone
# when it is "joinable": ``^`` and ``$`` then hold at the ends of every text (a newline is next
# to them, as in ``\n`` + text + ``\n``), ``\b`` sees a non-word character there as at the ends of
# a string, and a negative look-around whose content cannot match a newline cannot match across
# one. ``\A``, ``\Z``, back-references, atomic groups and possessive repeats (which could commit
# to a longer match across the newline) are not joinable; such alternatives are tested on every
# text alone. A match that runs on into the next text only adds a candidate, tested alone later.
_LINE = "\n"
_NEWLINE_FREE_CATEGORIES = frozenset({"CATEGORY_DIGIT", "CATEGORY_WORD", "CATEGORY_NOT_SPACE", "CATEGORY_NOT_LINEBREAK"})


def _never_newline(ops, dotall: bool) -> bool:
    """No string the (sub-)pattern matches holds a newline, and it has no look-around."""
    for op, av in ops:
        if op is _constants.LITERAL:
            if av == 10:
                return False
        elif op is _constants.NOT_LITERAL:
            if av != 10:
                return False
        elif op is _constants.ANY:
            if dotall:
                return False
        elif op is _constants.IN:
            for kind, value in av:
                if kind is _constants.LITERAL and value != 10:
                    continue
                if kind is _constants.RANGE and not value[0] <= 10 <= value[1]:
                    continue
                if kind is _constants.CATEGORY and str(value) in _NEWLINE_FREE_CATEGORIES:
                    continue
                return False  # a negated set, a category holding the newline, the newline itself
        elif op is _constants.AT:
            continue
        elif op is _constants.SUBPATTERN:
            _group, add, delete, sub = av
            if not _never_newline(sub, (dotall or bool(add & re.S)) and not delete & re.S):
                return False
        elif op is _constants.BRANCH:
            if not all(_never_newline(branch, dotall) for branch in av[1]):
                return False
        elif op is _constants.MAX_REPEAT or op is _constants.MIN_REPEAT:
            if not _never_newline(av[2], dotall):
                return False
        else:
            return False
    return True


def _joinable_ops(ops, dotall: bool) -> bool:
    for op, av in ops:
        if op is _constants.LITERAL or op is _constants.NOT_LITERAL or op is _constants.ANY or op is _constants.IN:
            continue
        if op is _constants.AT:
            if av is _constants.AT_BEGINNING_STRING or av is _constants.AT_END_STRING:
                return False
        elif op is _constants.ASSERT:
            if not _joinable_ops(av[1], dotall):
                return False
        elif op is _constants.ASSERT_NOT:
            if not _never_newline(av[1], dotall):
                return False
        elif op is _constants.SUBPATTERN:
            _group, add, delete, sub = av
            if delete & re.M or not _joinable_ops(sub, (dotall or bool(add & re.S)) and not delete & re.S):
                return False
        elif op is _constants.BRANCH:
            if not all(_joinable_ops(branch, dotall) for branch in av[1]):
                return False
        elif op is _constants.MAX_REPEAT or op is _constants.MIN_REPEAT:
            if not _joinable_ops(av[2], dotall):
                return False
        else:
            return False
    return True


@lru_cache(maxsize=2048)
def joinable(piece: str) -> bool:
    """Whether a regex searched over newline-joined texts finds every text it matches alone."""
    if _parser is None or _GLOBAL_FLAGS.search(piece) or _NOT_COMBINABLE.search(piece):
        return False
    try:
        parsed = _parser.parse(piece, re.I)
    except (re.error, RecursionError, OverflowError):
        return False
    return _joinable_ops(parsed.data, bool(parsed.state.flags & re.S))


_CATEGORY_CLASS = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s", "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}


def _class_char(code: int) -> str:
    return f"\\U{code:08x}"


def _first_set(ops) -> tuple[list[str] | None, bool]:
    """(the characters a match of the sequence can start with, as character-class items, or
    None when not known; whether the sequence can match the empty string)."""
    items: list[str] = []
    for op, av in ops:
        if op is _constants.LITERAL:
            items.append(_class_char(av))
            return items, False
        if op is _constants.IN:
            for kind, value in av:
                if kind is _constants.LITERAL:
                    items.append(_class_char(value))
                elif kind is _constants.RANGE:
                    items.append(_class_char(value[0]) + "-" + _class_char(value[1]))
                elif kind is _constants.CATEGORY and str(value) in _CATEGORY_CLASS:
                    items.append(_CATEGORY_CLASS[str(value)])
                else:  # a negated set and the like
                    return None, False
            return items, False
        if op is _constants.AT or op is _constants.ASSERT or op is _constants.ASSERT_NOT:
            continue  # zero-width: the next item starts the match
        if op is _constants.SUBPATTERN:
            found, nullable = _first_set(av[3])
        elif op is _constants.BRANCH:
            found, nullable = [], False
            for branch in av[1]:
                more, empty = _first_set(branch)
                if more is None:
                    return None, False
                found.extend(more)
                nullable = nullable or empty
        elif op is _constants.MAX_REPEAT or op is _constants.MIN_REPEAT:
            found, nullable = _first_set(av[2])
            nullable = nullable or av[0] == 0
        else:
            return None, False
        if found is None:
            return None, False
        items.extend(found)
        if not nullable:
            return items, False
    return items, True


@lru_cache(maxsize=2048)
def first_class(piece: str) -> str | None:
    """A character class (``[...]``, for case-insensitive use) holding the first character of
    every match of the regex, or None when that is not known (or a match can be empty)."""
    if _parser is None or _GLOBAL_FLAGS.search(piece):
        return None
    try:
        parsed = _parser.parse(piece, re.I)
    except (re.error, RecursionError, OverflowError):
        return None
    items, nullable = _first_set(parsed.data)
    if items is None or nullable or not items:
        return None
    return "[" + "".join(items) + "]"


# Strings too common in link targets and labels to tell texts apart (``required_strings``
# prefers any other requirement of a regex).
_COMMON = frozenset({
    "/", "://", "http", "https", "www", "www.", "gov", ".gov", "gov.cn", ".gov.cn", ".cn", ".com", ".net", ".org",
    "index", ".htm", ".html", ".shtml",
})


def _foldable(text: str) -> str | None:
    """The string as ``str.lower`` leaves it when every character is ASCII or has no case (so a
    text matching it case-insensitively holds it once lowered), else None."""
    if not all(ch.isascii() or ch.lower() == ch.upper() == ch for ch in text):
        return None
    return text.lower()


def _required(ops) -> list[str] | None:
    """Strings (lower case) one of which every match of the sequence holds, or None."""
    options: list[list[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            folded = _foldable("".join(run))
            if folded:
                options.append([folded])
            run.clear()

    for op, av in ops:
        if op is _constants.LITERAL:
            run.append(chr(av))
            continue
        flush()
        found = None
        if op is _constants.SUBPATTERN:
            found = _required(av[3])
        elif op is _constants.BRANCH:
            alternatives = [_required(branch) for branch in av[1]]
            if all(alternatives):
                found = [text for alternative in alternatives for text in alternative]
        elif (op is _constants.MAX_REPEAT or op is _constants.MIN_REPEAT) and av[0] >= 1:
            found = _required(av[2])
        if found:
            options.append(found)
    flush()
    best, best_score = None, 0
    for option in options:  # the most telling: the longest shortest string, the later on ties
        score = min(0 if text in _COMMON else len(text) for text in option)
        if score >= best_score and score > 0:
            best, best_score = option, score
    return best


@lru_cache(maxsize=2048)
def required_strings(piece: str) -> tuple[str, ...] | None:
    """Lower-case strings one of which every match of the regex holds (searched case-
    insensitively), at least two characters long, or None when none are known."""
    if _parser is None or _GLOBAL_FLAGS.search(piece):
        return None
    try:
        parsed = _parser.parse(piece, re.I)
    except (re.error, RecursionError, OverflowError):
        return None
    found = _required(parsed.data)
    if not found or min(map(len, found)) < 2:
        return None
    return tuple(dict.fromkeys(found))


def _lowered(text: str) -> str | None:
    """``text.lower()`` when, at every position, a character a lower-case ASCII letter matches
    case-insensitively is that letter once lowered (not so for U+0130, U+0131 and U+017F)."""
    if "\u0131" in text or "\u017f" in text:
        return None
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else None


def join_lines(texts: list) -> tuple[str, list[int]] | None:
    """The texts (``None`` as empty) joined by newlines and the offset of each in the result, or
    None when a text holds a newline itself."""
    texts = [text or "" for text in texts]
    joined = _LINE.join(texts)
    if joined.count(_LINE) != max(0, len(texts) - 1):
        return None
    before = accumulate(map(len, texts), initial=0)
    return joined, list(map(add, before, range(len(texts))))


class Scanner:
    """Positions of the texts in which some of the patterns may match: every text in which one
    does is among them. Found in at most three searches over the texts joined by newlines (the
    joinable alternatives led by an uncased literal, so the regex engine skips to where they can
    start; those anchored with ``^``, searched as a newline followed by them; the rest), plus
    one test per text for the alternatives that cannot be joined."""

    def __init__(self, patterns: Iterable[str]):
        led: list[str] = []
        anchored: list[str] = []
        other: list[str] = []
        alone: list[str] = []
        for pattern in patterns:
            for piece in split_alternatives(pattern):
                if not joinable(piece):
                    alone.append(piece)
                elif _anchored(piece):
                    anchored.append(piece)
                else:
                    op, av, _flags = _first_op(piece)
                    uncased = op is _constants.LITERAL and chr(av).lower() == chr(av).upper() == chr(av)
                    (led if uncased else other).append(piece)
        # (search, whether the subject gets a leading newline, strings one of which every match
        # holds, lowered, or None)
        self._searches: list[tuple[object, bool, object]] = []
        for pieces, shifted in ((led, False), (anchored, True), (other, False)):
            if not pieces:
                continue
            alternation = "(?:" + "|".join(f"(?:{p})" for p in pieces) + ")"
            classes = [first_class(p) for p in pieces]
            first = "".join(c[1:-1] for c in classes) if pieces is not led and all(classes) else None
            try:
                compiled = re.compile(_LINE + alternation if shifted else alternation, re.I | re.M)
                if first is not None:
                    # Only where a match can start: after the newline, a look-ahead at the first
                    # character; elsewhere the first character is matched by the class (which the
                    # regex engine skips to) and the alternation is tried from it, looking behind.
                    faster = f"{_LINE}(?=[{first}]){alternation}" if shifted else f"[{first}](?<=(?={alternation})(?s:.))"
                    compiled = re.compile(faster, re.I | re.M)
            except (re.error, RecursionError, OverflowError):
                try:
                    compiled = re.compile(_LINE + alternation if shifted else alternation, re.I | re.M)
                except (re.error, RecursionError, OverflowError):
                    alone.extend(pieces)
                    continue
            required = None
            if pieces is not led and (first is None or len(set(classes)) == 1):
                # Where the first character does not tell the alternatives apart (every link
                # target starts with "http"), the texts are first narrowed to those holding
                # a string every match holds.
                strings = [required_strings(p) for p in pieces]
                if all(strings):
                    found = list(dict.fromkeys(t for ts in strings for t in ts))
                    # a text holding a string holds every string inside it: the shortest will do
                    required = tuple(t for t in found if not any(u != t and u in t for u in found))
            self._searches.append((compiled.search, shifted, required))
        self._alone = Prefilter(alone) if alone else None

    def positions(self, texts: list, lines: tuple[str, list[int]] | None = None) -> list[int]:
        """Ascending positions of the candidate texts (``lines``: ``join_lines(texts)`` if known)."""
        if not texts:
            return []
        if lines is None:
            lines = join_lines(texts)
        if lines is None:  # a text with a newline of its own: every text is a candidate
            return [i for i, text in enumerate(texts) if text]
        joined, starts = lines
        found: set[int] = set()
        lowered: str | None | bool = False
        for search, shifted, required in self._searches:
            if required is not None:
                if lowered is False:
                    lowered = _lowered(joined)
                if lowered is not None:
                    # First the texts holding one of the required strings, then the search over those.
                    chosen = _lines_holding(required, lowered, starts)
                    if chosen:
                        subset = join_lines([texts[i] for i in chosen])
                        found.update(chosen[i] for i in _search_lines(search, subset[0], subset[1], shifted))
                    continue
            found.update(_search_lines(search, joined, starts, shifted))
        if self._alone is not None:
            test = self._alone.test
            found.update(i for i, text in enumerate(texts) if text and i not in found and test(text))
        return sorted(found)


def _lines_holding(strings: tuple[str, ...], joined: str, starts: list[int]) -> list[int]:
    """Ascending positions of the lines (texts joined by newlines, beginning at ``starts``)
    that hold one of the strings (found with ``str.find``, far faster than a regex here)."""
    found: set[int] = set()
    last = len(starts) - 1
    for string in strings:
        at = joined.find(string)
        while at >= 0:
            position = bisect_right(starts, at) - 1
            found.add(position)
            if position >= last:
                break
            at = joined.find(string, starts[position + 1])
    return sorted(found)


def _search_lines(search, joined: str, starts: list[int], shifted: bool) -> list[int]:
    """Ascending positions of the lines (texts joined by newlines, beginning at ``starts``) in
    which ``search`` finds a match that begins there."""
    # Shifted, the subject has a newline in front: the newline before text i is then at
    # starts[i], so a match that begins with it falls on text i.
    subject = _LINE + joined if shifted else joined
    found: list[int] = []
    last = len(starts) - 1
    pos = 0
    while True:
        m = search(subject, pos)
        if m is None:
            break
        position = bisect_right(starts, m.start()) - 1
        found.append(position)
        if position >= last:
            break
        pos = starts[position + 1]  # a match in the next text may begin where this one ended
    return found


@lru_cache(maxsize=256)
def scanner_for(patterns: tuple[str, ...]) -> Scanner:
    """The ``Scanner`` of a pattern list (built once per list)."""
    return Scanner(patterns)


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
        self._prefilter = self._which = self._scanner = None
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
        # (number of the group of list i in ``_which``, bit i)
        self._group_bits = [(self._which.groupindex[name], 1 << i) for i, name in enumerate(self._groups)] if self._which else []
        self._scanner = Scanner([p for key in self.lists for p in key]) if self._which is not None else None

    def candidates(self, texts: list, lines: tuple[str, list[int]] | None = None) -> list[int]:
        """Ascending positions of the texts that may match some list: every text that does is
        among them (``mask`` tells which lists match). ``lines`` is ``join_lines(texts)`` if known."""
        if not self.lists:
            return []
        if self._scanner is None:
            return [i for i, text in enumerate(texts) if text]
        return self._scanner.positions(texts, lines)

    def __contains__(self, patterns: tuple[str, ...]) -> bool:
        return patterns in self.index

    def mask(self, text: str | None, *, candidate: bool = False) -> int:
        """Bit ``i`` set when list ``i`` matches ``text`` (0 for an empty text, like ``any_match``).

        ``candidate``: the text is one of ``candidates()``, most of which match: the prefilter,
        which only tells early that no list matches, is skipped (same result)."""
        if not text or not self.lists:
            return 0
        if self._which is None:
            return sum(1 << i for i, key in enumerate(self.lists) if any_of(key, text))
        if not candidate and not self._prefilter.test(text):
            return 0
        regs = self._which.match(text).regs  # (start, end) of every group, (-1, -1) if unset
        bits = 0
        for index, bit in self._group_bits:
            if regs[index][0] >= 0:
                bits |= bit
        return bits
