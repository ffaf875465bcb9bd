"""One index per page: every link, control, short caption and text element with what the rules
test on it, examined once for all indicators.

``page_index(page)`` builds (once per ``Page``) the lists the entry and value detectors walk:

* ``controls`` — visible links and controls in ``Page.controls()`` order, with their label (a
  "更多" link stands for its block's heading) and absolute target; attachments have no entry;
* ``captions`` — short visible text elements and image alt texts (``short_captions``);
* ``value_texts`` — every visible element's own text (a link's label appended).

A ``MatchPlan`` compiles the pattern lists of a whole catalogue into ``PatternBank``s. Asked which
controls' labels match a rule list, the index runs each bank once over all labels (one regex call
per distinct label) and keeps, per list, the positions that match; every indicator then only
looks at its own candidates. A list that is not in the plan is searched directly: the same
positions, more regex calls.
"""

from __future__ import annotations

import re
from typing import Iterable

from .page import Page, normalize_space
from .patterns import PatternBank, any_of, join_texts, literal_alternatives, positions_containing

# ---------------------------------------------------------------------------- link labels
ATTACHMENT = re.compile(r"\.(docx?|xlsx?|et|pdf|ofd|wps|zip|rar|7z|txt|csv)(?:[?#]|$)", re.I)
MORE = re.compile(r"^(更多|查看更多|more)\s*[>»＞+]*$|^[>»＞]{2}$", re.I)
HEADING_CLASS = re.compile(r"tit|title|hd|head|bt|lm|name", re.I)


def section_heading(page: Page, el) -> str | None:
    """Heading of the block a "更多" link belongs to (``<h3>政务公开</h3> … <a>更多>></a>``)."""
    node = el.getparent()
    for _ in range(3):
        if node is None:
            return None
        for cand in node.iter():
            if cand is el:
                break
            if not isinstance(cand.tag, str) or not page.is_visible(cand):
                continue
            if cand.tag in ("h1", "h2", "h3", "h4", "h5") or HEADING_CLASS.search(cand.get("class") or ""):
                text = page.visible_text(cand)
                if 0 < len(text) <= 12:
                    return text
        node = node.getparent()
    return None


def link_info(page: Page, el) -> tuple[str, str | None] | None:
    """(label, absolute href) of a link or control, cached per page; None for attachments."""
    cache = page._cache.setdefault("linkinfo", {})
    if el in cache:
        return cache[el]
    label = page.label_of(el)
    href = page.absolute(el.get("href"))
    if href and ATTACHMENT.search(href):
        info = None
    else:
        if MORE.match(label):
            label = section_heading(page, el) or label
        info = (label, href)
    cache[el] = info
    return info


# ---------------------------------------------------------------------------- captions
TEXT_TAGS = (
    "span", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th",
    "em", "strong", "b", "label", "button", "font", "i", "figcaption", "caption", "img",
)
CAPTION_MAX = 40


def short_captions(page: Page) -> list[tuple[object, str]]:
    """Visible text elements (and image alt texts) short enough to be captions; computed once per page."""
    cached = page._cache.get("captions")
    if cached is None:
        cached = []
        long = page.longer_than(CAPTION_MAX)
        for el in page.visible_elements(*TEXT_TAGS):
            if el.tag == "img":
                text = normalize_space(el.get("alt") or el.get("title") or "")
            elif el in long:
                continue
            else:
                text = page.visible_text(el)
            if text and len(text) <= CAPTION_MAX:
                cached.append((el, text))
        page._cache["captions"] = cached
    return cached


# ---------------------------------------------------------------------------- plan
VALUE_DETECTORS = frozenset({"value", "count_value", "review_stats"})
# Detectors that look for entries among links and captions (``iter_link_matches``, ``iter_caption_matches``);
# the rule lists of other detectors are searched directly when asked for.
ENTRY_DETECTORS = frozenset({"entry", "count_value"})


def value_triggers(rules) -> tuple[str, ...]:
    """The keywords that make an element a candidate of a value detector (the value regex itself
    when no label keyword is given)."""
    return tuple(rules.labels) or (rules.value_regex or ".+",)


class MatchPlan:
    """The pattern lists of a set of indicators, compiled into one bank per kind of text."""

    def __init__(self, indicators: Iterable):
        indicators = list(indicators)
        rules = [i.rules for i in indicators]
        entries = [i.rules for i in indicators if i.detector in ENTRY_DETECTORS]
        self.labels = PatternBank(r.link_texts for r in entries)
        self.urls = PatternBank(r.url_patterns for r in entries)
        self.captions = PatternBank(
            [r.text_patterns for r in entries] + [i.rules.labels for i in indicators if i.detector == "status_list"]
        )
        self.triggers = PatternBank(value_triggers(i.rules) for i in indicators if i.detector in VALUE_DETECTORS)
        # Labels and captions longer than every rule's max_text_len are never matched on their text.
        self.label_bound = max((r.max_text_len for r in rules), default=0)


_PLANS: dict[int, tuple[object, MatchPlan]] = {}
_PLANS_MAX = 16


def plan_for(catalogue) -> MatchPlan:
    """The compiled plan of a catalogue (built once per catalogue object)."""
    entry = _PLANS.get(id(catalogue))
    if entry is not None and entry[0] is catalogue:
        return entry[1]
    plan = MatchPlan(catalogue.indicators)
    while len(_PLANS) >= _PLANS_MAX:
        _PLANS.pop(next(iter(_PLANS)))
    _PLANS[id(catalogue)] = (catalogue, plan)
    return plan


# ---------------------------------------------------------------------------- index
class PageIndex:
    """Per-page lists of what the rules test, and per rule list the positions that match."""

    def __init__(self, page: Page):
        self.page = page
        self.controls = page.controls()
        self.n_links = len(page.links())
        self.infos = [link_info(page, el) for el in self.controls]
        self.labels = [info[0] if info else None for info in self.infos]
        self.hrefs = [info[1] if info else None for info in self.infos]
        self.captions = short_captions(page)
        self.caption_texts = [text for _, text in self.captions]
        self._value_texts: tuple[list, list[str]] | None = None
        self._element_texts: tuple[list, list[str]] | None = None
        self._joined: dict = {}
        self._hits: dict = {}
        self._banks: dict = {}
        self._lengths: list[int] | None = None
        self._caption_lengths: list[int] | None = None
        self.accepted: dict = {}  # id(rules) -> (rules, {position: (label, href) | None})

    def element_texts(self) -> tuple[list, list[str]]:
        """(visible body elements, own text of each), body order."""
        if self._element_texts is None:
            own = self.page.own_text
            elements = list(self.page.visible_elements())
            self._element_texts = (elements, [own(el) for el in elements])
        return self._element_texts

    def value_texts(self) -> tuple[list, list[str]]:
        """(visible elements, own text of each — a link's label appended), body order."""
        if self._value_texts is None:
            label_of = self.page.label_of
            elements, owns = self.element_texts()
            texts = [own + " " + label_of(el) if el.tag == "a" else own for el, own in zip(elements, owns)]
            self._value_texts = (elements, texts)
        return self._value_texts

    def scan(self, name: str, texts: list[str], regex: str) -> list[int]:
        """``positions_containing`` over one of the index's text lists, joined once per list."""
        key = ("scan", name, regex)
        found = self._hits.get(key)
        if found is None:
            joined = self._joined.get(name)
            if joined is None:
                joined = self._joined[name] = join_texts(texts)
            found = self._hits[key] = positions_containing(texts, regex, *joined)
        return found

    def _positions(
        self, name: str, bank: PatternBank | None, patterns: tuple[str, ...], texts: list,
        lengths: list[int] | None = None, max_len: int | None = None, bound: int | None = None,
    ) -> list[int]:
        """Ascending positions in ``texts`` whose text matches the list and whose length (in
        ``lengths``) is at most ``max_len``. The bank covers the texts up to ``bound`` long."""
        key = (name, patterns, max_len)
        found = self._hits.get(key)
        if found is not None:
            return found
        short = (lambda i: True) if max_len is None else (lambda i: lengths[i] <= max_len)
        if bank is not None and patterns in bank and (max_len is None or (bound is not None and max_len <= bound)):
            inverted = self._inverted(name, bank, texts, lengths, bound)
            found = [i for i in inverted.get(bank.index[patterns], ()) if short(i)]
        else:
            found = [i for i, text in enumerate(texts) if text and short(i) and any_of(patterns, text)]
        self._hits[key] = found
        return found

    def _inverted(self, name: str, bank: PatternBank, texts: list, lengths, bound) -> dict[int, list[int]]:
        entry = self._banks.get((name, id(bank)))
        if entry is not None and entry[0] is bank:
            return entry[1]
        memo: dict[str, int] = {}
        inverted: dict[int, list[int]] = {}
        for position, text in enumerate(texts):
            if not text or (bound is not None and lengths[position] > bound):
                continue
            bits = memo.get(text)
            if bits is None:
                bits = memo[text] = bank.mask(text)
            while bits:
                low = bits & -bits
                inverted.setdefault(low.bit_length() - 1, []).append(position)
                bits ^= low
        self._banks[(name, id(bank))] = (bank, inverted)
        return inverted

    def _label_lengths(self) -> list[int]:
        if self._lengths is None:
            self._lengths = [len(label) if label is not None else 0 for label in self.labels]
        return self._lengths

    def label_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None, max_len: int) -> list[int]:
        """Control positions whose label, at most ``max_len`` long, matches the list (no attachments)."""
        bank, bound = (plan.labels, plan.label_bound) if plan else (None, None)
        return self._positions("labels", bank, patterns, self.labels, self._label_lengths(), max_len, bound)

    def url_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None, max_label_len: int) -> list[int]:
        """Control positions whose absolute target matches the list and whose label is at most
        ``max_label_len`` long."""
        bank, bound = (plan.urls, 2 * plan.label_bound) if plan else (None, None)
        return self._positions("urls", bank, patterns, self.hrefs, self._label_lengths(), max_label_len, bound)

    def caption_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None, max_len: int) -> list[int]:
        """Caption positions whose text, at most ``max_len`` long, matches the list."""
        if self._caption_lengths is None:
            self._caption_lengths = [len(text) for text in self.caption_texts]
        bank, bound = (plan.captions, plan.label_bound) if plan else (None, None)
        return self._positions("captions", bank, patterns, self.caption_texts, self._caption_lengths, max_len, bound)

    def value_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None) -> list[int]:
        """Positions (in ``value_texts()``) of visible elements whose own text holds a trigger."""
        elements, texts = self.value_texts()
        literals = literal_alternatives(patterns)
        if literals is not None:  # one search over all texts
            found = self.scan("values", texts, "|".join(re.escape(lit) for lit in literals))
        else:
            found = self._positions("values", plan.triggers if plan else None, patterns, texts)
        return [i for i in found if texts[i].strip()]


def page_index(page: Page) -> PageIndex:
    index = page._cache.get("index")
    if index is None:
        index = page._cache["index"] = PageIndex(page)
    return index
