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
from .patterns import PatternBank, any_of, join_lines, join_texts, literal_alternatives, positions_containing

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


def link_infos(page: Page, elements: list) -> list:
    """``link_info`` of many links at once (their labels are read together)."""
    cache = page._cache.setdefault("linkinfo", {})
    out = []
    for el, label in zip(elements, page.labels_of(elements)):
        info = cache.get(el, _MISSING)
        if info is _MISSING:
            info = cache[el] = _info(page, el, label)
        out.append(info)
    return out


_MISSING = object()


def _info(page: Page, el, label: str) -> tuple[str, str | None] | None:
    href = page.absolute(el.get("href"))
    if href and ATTACHMENT.search(href):
        return None
    if MORE.match(label):
        label = section_heading(page, el) or label
    return label, href


def link_info(page: Page, el) -> tuple[str, str | None] | None:
    """(label, absolute href) of a link or control, cached per page; None for attachments."""
    cache = page._cache.setdefault("linkinfo", {})
    if el in cache:
        return cache[el]
    info = cache[el] = _info(page, el, page.label_of(el))
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
class TextList:
    """One list of texts of a page (labels, targets, captions …) and, per rule list, the positions
    whose text matches it; each bank runs once over the list (one call per distinct text)."""

    def __init__(self, texts: list, lengths: list[int] | None = None):
        self.texts = texts
        self.lengths = lengths
        self._hits: dict = {}
        self._banks: dict = {}
        self._lines: tuple[str, list[int]] | None = None

    def lines(self) -> tuple[str, list[int]]:
        """The texts joined by newlines (``join_lines``), for scans over all of them at once."""
        if self._lines is None:
            self._lines = join_lines(self.texts)
        return self._lines

    def hits(self, bank: PatternBank | None, patterns: tuple[str, ...], max_len: int | None = None,
             bound: int | None = None) -> list[int]:
        """Ascending positions whose text matches the list and whose length (in ``lengths``) is at
        most ``max_len``. The bank covers the texts up to ``bound`` long."""
        key = (patterns, max_len)
        found = self._hits.get(key)
        if found is not None:
            return found
        lengths = self.lengths
        if bank is not None and patterns in bank and (max_len is None or (bound is not None and max_len <= bound)):
            candidates = self._inverted(bank, bound).get(bank.index[patterns], ())
            found = list(candidates) if max_len is None else [i for i in candidates if lengths[i] <= max_len]
        else:
            found = [
                i for i, text in enumerate(self.texts)
                if text and (max_len is None or lengths[i] <= max_len) and any_of(patterns, text)
            ]
        self._hits[key] = found
        return found

    def _inverted(self, bank: PatternBank, bound: int | None) -> dict[int, list[int]]:
        entry = self._banks.get(id(bank))
        if entry is not None and entry[0] is bank:
            return entry[1]
        memo: dict[str, int] = {}
        inverted: dict[int, list[int]] = {}
        mask = bank.mask
        lengths = self.lengths
        texts = self.texts
        for position in bank.candidates(texts, self.lines()):
            text = texts[position]
            if not text or (bound is not None and lengths[position] > bound):
                continue
            bits = memo.get(text)
            if bits is None:
                bits = memo[text] = mask(text)
            while bits:
                low = bits & -bits
                inverted.setdefault(low.bit_length() - 1, []).append(position)
                bits ^= low
        self._banks[id(bank)] = (bank, inverted)
        return inverted


class PageIndex:
    """Per-page lists of what the rules test, and per rule list the positions that match.

    Built piece by piece as detectors ask: the visible links first (all that source discovery
    needs), the other controls, the captions and the element texts only when an indicator looks
    at them. Positions of controls are those of ``Page.controls()``: the links, then the rest.
    """

    def __init__(self, page: Page):
        self.page = page
        links = page.links()
        self.n_links = len(links)
        self.link_infos = link_infos(page, links)
        self._links_labels, self._links_urls = self._text_lists(self.link_infos)
        self._others: tuple[list, list, TextList, TextList] | None = None
        self._captions: list | None = None
        self._caption_list: TextList | None = None
        self._value_texts: tuple[list, list[str]] | None = None
        self._element_texts: tuple[list, list[str]] | None = None
        self._joined: dict = {}
        self._hits: dict = {}
        self._value_list: TextList | None = None
        self.accepted: dict = {}  # id(rules) -> (rules, {position: (label, href) | None})

    @staticmethod
    def _text_lists(infos: list) -> tuple[TextList, TextList]:
        labels = [info[0] if info else None for info in infos]
        hrefs = [info[1] if info else None for info in infos]
        lengths = [len(label) if label is not None else 0 for label in labels]
        return TextList(labels, lengths), TextList(hrefs, lengths)

    def _other_controls(self) -> tuple[list, list, TextList, TextList]:
        if self._others is None:
            others = self.page.other_controls()
            infos = [link_info(self.page, el) for el in others]
            self._others = (others, infos, *self._text_lists(infos))
        return self._others

    # Every control, as the lists the rules and tests read (built when first asked for).
    @property
    def controls(self) -> list:
        return self.page.controls()

    @property
    def infos(self) -> list:
        return self.link_infos + self._other_controls()[1]

    @property
    def labels(self) -> list:
        return self._links_labels.texts + self._other_controls()[2].texts

    @property
    def hrefs(self) -> list:
        return self._links_urls.texts + self._other_controls()[3].texts

    def control(self, position: int):
        """(element, (label, href) or None) of the control at ``position``."""
        if position < self.n_links:
            return self.page.links()[position], self.link_infos[position]
        others, infos, _, _ = self._other_controls()
        return others[position - self.n_links], infos[position - self.n_links]

    @property
    def captions(self) -> list:
        if self._captions is None:
            self._captions = short_captions(self.page)
        return self._captions

    @property
    def caption_texts(self) -> list[str]:
        return self._caption_texts().texts

    def _caption_texts(self) -> TextList:
        if self._caption_list is None:
            texts = [text for _, text in self.captions]
            self._caption_list = TextList(texts, [len(text) for text in texts])
        return self._caption_list

    def element_texts(self) -> tuple[list, list[str]]:
        """(visible body elements, own text of each), body order."""
        if self._element_texts is None:
            spans = self.page.text_walk()[1]
            elements = self.page.visible_list()
            self._element_texts = (elements, [spans[el][2] for el in elements])
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

    def label_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None, max_len: int, *, controls: bool = True) -> list[int]:
        """Control positions whose label, at most ``max_len`` long, matches the list (no attachments);
        only the links' unless ``controls``."""
        bank, bound = (plan.labels, plan.label_bound) if plan else (None, None)
        found = self._links_labels.hits(bank, patterns, max_len, bound)
        if controls:
            extra = self._other_controls()[2].hits(bank, patterns, max_len, bound)
            if extra:
                found = found + [self.n_links + i for i in extra]
        return found

    def url_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None, max_label_len: int, *, controls: bool = True) -> list[int]:
        """Control positions whose absolute target matches the list and whose label is at most
        ``max_label_len`` long; only the links' unless ``controls``."""
        bank, bound = (plan.urls, 2 * plan.label_bound) if plan else (None, None)
        found = self._links_urls.hits(bank, patterns, max_label_len, bound)
        if controls:
            extra = self._other_controls()[3].hits(bank, patterns, max_label_len, bound)
            if extra:
                found = found + [self.n_links + i for i in extra]
        return found

    def caption_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None, max_len: int) -> list[int]:
        """Caption positions whose text, at most ``max_len`` long, matches the list."""
        bank, bound = (plan.captions, plan.label_bound) if plan else (None, None)
        return self._caption_texts().hits(bank, patterns, max_len, bound)

    def value_hits(self, patterns: tuple[str, ...], plan: MatchPlan | None) -> list[int]:
        """Positions (in ``value_texts()``) of visible elements whose own text holds a trigger."""
        elements, texts = self.value_texts()
        literals = literal_alternatives(patterns)
        if literals is not None:  # one search over all texts
            found = self.scan("values", texts, "|".join(re.escape(lit) for lit in literals))
        else:
            if self._value_list is None:
                self._value_list = TextList(texts)
            found = self._value_list.hits(plan.triggers if plan else None, patterns)
        return [i for i in found if texts[i].strip()]


def page_index(page: Page) -> PageIndex:
    index = page._cache.get("index")
    if index is None:
        index = page._cache["index"] = PageIndex(page)
    return index
