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

from .page import SPAN_MASK, SPAN_SHIFT, WHITESPACE, Page, normalize_space
from .patterns import PatternBank, any_of, folded_alternatives, join_texts, literal_alternatives, lowered, positions_containing

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
    cache = page._table("linkinfo")
    if el in cache:
        return cache[el]
    label = page.label_of(el)
    href = page.absolute(el.get("href"))
    if href and ATTACHMENT.search(href):
        info = None
    else:
        if label[:1] in _MORE_FIRST and MORE.match(label):
            label = section_heading(page, el) or label
        info = (label, href)
    cache[el] = info
    return info


def link_texts(page: Page, elements) -> tuple[list, list]:
    """(labels, hrefs) of ``link_info(page, el)`` for every element, in one loop (a label of
    None for an attachment): the label of a visible element is read from the text model, its
    target from the page's cache of resolved targets. Builds no tuple per link."""
    labels_cache = page._table("labels")
    model = page._text_model()
    spans, normalized = model.spans, model.text
    absolute = page.absolute
    labels: list = []
    hrefs: list = []
    for el in elements:
        label = labels_cache.get(el)
        if label is None:
            span = spans.get(el)
            label = normalized[span >> SPAN_SHIFT:span & SPAN_MASK].strip() if span is not None else ""
            label = labels_cache[el] = label or page._label_of(el)
        href = el.get("href")
        href = absolute(href) if href else None
        if href and ATTACHMENT.search(href):
            labels.append(None)
            hrefs.append(None)
            continue
        if label[:1] in _MORE_FIRST and MORE.match(label):
            label = section_heading(page, el) or label
        labels.append(label)
        hrefs.append(href)
    return labels, hrefs


# The first characters a ``MORE`` label can have (it matches at the start only).
_MORE_FIRST = frozenset("更查mM>»＞")


# ---------------------------------------------------------------------------- captions
TEXT_TAGS = (
    "span", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th",
    "em", "strong", "b", "label", "button", "font", "i", "figcaption", "caption", "img",
)
_TEXT_TAGS = frozenset(TEXT_TAGS)
CAPTION_MAX = 40


def short_captions(page: Page) -> list[tuple[object, str]]:
    """Visible text elements (and image alt texts) short enough to be captions; computed once per page."""
    cached = page._cache.get("captions")
    if cached is None:
        elements, texts = caption_lists(page)
        cached = page._cache["captions"] = list(zip(elements, texts))
    return cached


def caption_lists(page: Page) -> tuple[list, list[str]]:
    """(elements, texts) of ``short_captions``, as two lists (computed once per page)."""
    cached = page._cache.get("caption lists")
    if cached is None:
        elements: list = []
        texts: list[str] = []
        model = page._text_model()
        spans, normalized = model.spans, model.text
        # A span more than two characters longer than CAPTION_MAX holds a longer visible text
        # (``Page.longer_than``); the text of the others is read from the text model.
        longest = CAPTION_MAX + 2
        for el, tag in zip(model.body_elements, model.tags()):
            if tag not in _TEXT_TAGS:
                continue
            if tag == "img":
                text = normalize_space(el.get("alt") or el.get("title") or "")
            else:
                span = spans[el]
                start, end = span >> SPAN_SHIFT, span & SPAN_MASK
                if end - start > longest:
                    continue
                text = normalized[start:end].strip()
            if text and len(text) <= CAPTION_MAX:
                elements.append(el)
                texts.append(text)
        cached = page._cache["caption lists"] = (elements, texts)
    return cached


def spaceless(literals: Iterable[str]) -> bool:
    """No keyword holds a whitespace character (see ``PageIndex.scan``)."""
    return not any(WHITESPACE.search(lit) for lit in literals)


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
        self.labels, self.hrefs = link_texts(page, self.controls)
        self.caption_elements, self.caption_texts = caption_lists(page)
        self._value_texts: tuple[list, list[str]] | None = None
        self._elements: list | None = None
        self._lowered: dict = {}  # id(joined text) -> (joined text, lowered or None)
        self._scan_texts: list[str] | None = None
        self._element_texts: tuple[list, list[str]] | None = None
        self._joined: dict = {}
        self._hits: dict = {}
        self._banks: dict = {}
        self._lengths: list[int] | None = None
        self._caption_lengths: list[int] | None = None
        self.accepted: dict = {}  # id(rules) -> (rules, {position: (label, href) | None})

    def info(self, position: int) -> tuple[str, str | None] | None:
        """``link_info`` of the control at a position."""
        label = self.labels[position]
        return None if label is None else (label, self.hrefs[position])

    @property
    def infos(self) -> list:
        """``link_info`` of every control."""
        return [self.info(i) for i in range(len(self.labels))]

    @property
    def captions(self) -> list[tuple[object, str]]:
        """``short_captions(page)``."""
        return short_captions(self.page)

    def element_texts(self) -> tuple[list, list[str]]:
        """(visible body elements, own text of each), body order."""
        if self._element_texts is None:
            elements = self.elements()
            own = self.page.own_text
            self._element_texts = (elements, [own(el) for el in elements])
        return self._element_texts

    def elements(self) -> list:
        """The visible body elements, body order (the elements of ``element_texts()``)."""
        if self._elements is None:
            self._elements = list(self.page.visible_elements())
        return self._elements

    def scan_texts(self) -> list[str]:
        """Every visible element's own text with the whitespace of its pieces collapsed, stripped
        (``_TextModel.owns``): searched in place of the own texts for keywords without spaces
        and for dates (``own_scan``)."""
        if self._scan_texts is None:
            owns = self.page._text_model().owns
            self._scan_texts = [owns[el] for el in self.elements()]
        return self._scan_texts

    def positions_of(self, tag: str) -> list[int]:
        """Positions (in ``element_texts()``) of the visible elements of a tag."""
        key = ("tag", tag)
        found = self._hits.get(key)
        if found is None:
            if tag in self.page._text_model().by_tag():
                found = [i for i, name in enumerate(self.page._text_model().tags()) if name == tag]
            else:
                found = []
            self._hits[key] = found
        return found

    def value_texts(self) -> tuple[list, list[str]]:
        """(visible elements, own text of each — a link's label appended), body order."""
        if self._value_texts is None:
            label_of = self.page.label_of
            elements, owns = self.element_texts()
            texts = list(owns)
            for i in self.positions_of("a"):
                texts[i] = texts[i] + " " + label_of(elements[i])
            self._value_texts = (elements, texts)
        return self._value_texts

    def scan(self, name: str, texts: list[str], regex: str, *, spaceless: bool = False) -> list[int]:
        """``positions_containing`` over one of the index's text lists, joined once per list.

        ``spaceless``: no match of the regex holds a whitespace character (as ``normalize_space``
        counts them), e.g. keywords without spaces or a digit. The search then runs over the texts
        stripped of leading and trailing whitespace, which hold the same matches (and are much
        shorter: most own texts are indentation).
        """
        key = ("scan", name, regex, spaceless)
        found = self._hits.get(key)
        if found is None:
            joined = self._joined.get((name, spaceless))
            if joined is None:
                joined = self._joined[(name, spaceless)] = join_texts(self.stripped(name, texts) if spaceless else texts)
            found = self._hits[key] = positions_containing(texts, regex, *joined)
        return found

    def own_scan(self, regex: str, replaced: dict[int, str], *, added: bool = False, folded: str | None = None) -> list[int]:
        """``scan(name, texts, regex, spaceless=True)`` for texts that are the own texts of the
        visible elements (``element_texts()``) but at the positions of ``replaced`` (e.g. a
        link's label for its own text). The own texts are searched as ``scan_texts()``, with
        their whitespace collapsed: keywords without whitespace are found in exactly the same
        texts, the date patterns in at least the same ones (a zero-width space between the parts
        of a date becomes a space; the date detector reads the own text itself). Those texts
        are joined once per page and searched once per regex; only the replaced texts are
        searched on their own. ``added``: the texts of ``replaced`` are added to the own texts
        at their positions rather than put in their place (a position matches when either does).
        ``folded``: ``folded_alternatives`` of the keywords of the regex, searched in the lowered
        texts (where lowering keeps every position)."""
        key = ("own", regex)
        base = self._hits.get(key)
        if base is None:
            joined = self._joined.get("own")
            if joined is None:
                joined = self._joined["own"] = join_texts(self.scan_texts())
            base = self._hits[key] = self._positions_in(joined, regex, folded)
        if not replaced:
            return base
        entry = self._joined.get(("replaced", id(replaced)))
        if entry is None or entry[0] is not replaced:
            positions = sorted(replaced)
            entry = self._joined[("replaced", id(replaced))] = (
                replaced, positions, join_texts([replaced[i].strip() for i in positions])
            )
        _replaced, positions, joined = entry
        extra = self._positions_in(joined, regex, folded)
        found = set(base) if added else {i for i in base if i not in replaced}
        found.update(positions[j] for j in extra)
        return sorted(found)

    def _positions_in(self, joined: tuple[str, list[int]], regex: str, folded: str | None) -> list[int]:
        """``positions_containing`` over joined texts; with ``folded``, over them lowered."""
        if folded is not None:
            text, starts = joined
            low = self._lowered.get(id(text))
            if low is None or low[0] is not text:
                low = self._lowered[id(text)] = (text, lowered(text))
            if low[1] is not None:
                return positions_containing(None, folded, low[1], starts, ignore_case=False)
        return positions_containing(None, regex, *joined)

    def stripped(self, name: str, texts: list[str]) -> list[str]:
        """The texts of one of the index's text lists, stripped (built once per list)."""
        key = ("stripped", name)
        found = self._hits.get(key)
        if found is None:
            found = self._hits[key] = [text.strip() for text in texts]
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
        if bound is not None:  # texts the bank does not cover take no part in the search
            texts = [text if text and lengths[i] <= bound else None for i, text in enumerate(texts)]
        for position in bank.candidates(texts):
            text = texts[position]
            if not text:
                continue
            bits = memo.get(text)
            if bits is None:
                bits = memo[text] = bank.mask(text, candidate=True)
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
        literals = literal_alternatives(patterns)
        if literals is not None and spaceless(literals):
            # One search over all own texts; a keyword without spaces is in "own label" when it
            # is in the own text or in the label, so the links' labels are searched besides.
            key = ("values", literals)
            found = self._hits.get(key)
            if found is None:
                labels = self._hits.get("link labels")
                if labels is None:
                    elements = self.elements()
                    label_of = self.page.label_of
                    labels = self._hits["link labels"] = {i: label_of(elements[i]) for i in self.positions_of("a")}
                found = self._hits[key] = self.own_scan(
                    "|".join(re.escape(lit) for lit in literals), labels, added=True, folded=folded_alternatives(literals)
                )
            return found
        elements, texts = self.value_texts()
        if literals is not None:  # one search over all texts
            found = self.scan("values", texts, "|".join(re.escape(lit) for lit in literals), spaceless=spaceless(literals))
        else:
            found = self._positions("values", plan.triggers if plan else None, patterns, texts)
        return [i for i in found if texts[i].strip()]


def page_index(page: Page) -> PageIndex:
    index = page._cache.get("index")
    if index is None:
        index = page._cache["index"] = PageIndex(page)
    return index
