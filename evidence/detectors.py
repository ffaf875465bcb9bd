"""Detectors: pure functions ``(page, indicator, context) -> Finding``.

Most indicators use one of the generic detectors, driven entirely by catalogue rules:

* ``entry``     — a visible link/control/caption whose label or target matches the rules,
                  excluding headlines (dated list items, long or newsy labels);
* ``value``     — a value read by ``value_regex`` from visible text near a label keyword
                  (works across tags: ``网站标识码：<span>9200</span><span>000001</span>``);
* ``search_box``, ``latest_date``, ``department_links``, ``status_list``, ``format_list``,
  ``count_value``, ``review_stats`` — the special ones, still configured by rules.

Every detector reads the page through ``Page`` (visible text, links, controls, locators), whose
per-page caches are shared by all indicators: the page is parsed and walked once, not once per
indicator.

``crawler`` marks indicators the crawler produces itself (reachability, broken links).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterable

from .finding import ABSENT, PRESENT, Finding, clip
from .page import Page, host_of, normalize_space

Detector = Callable[["Page", object, "Context"], Finding | None]
DETECTORS: dict[str, Detector] = {}


def register(name: str) -> Callable[[Detector], Detector]:
    def wrap(func: Detector) -> Detector:
        DETECTORS[name] = func
        return func

    return wrap


@dataclass
class Context:
    """Per-call settings shared by detectors (``now`` bounds plausible dates)."""

    now: dt.date
    version: str


@lru_cache(maxsize=512)
def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


@lru_cache(maxsize=512)
def _union(patterns: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.I)


def _any(patterns: Iterable[str], text: str | None) -> bool:
    """Does any of the regexes match the text? (one combined regex per rule list)"""
    if not text or not patterns:
        return False
    return _union(tuple(patterns)).search(text) is not None


# ---------------------------------------------------------------------------- shared building blocks
FULL_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})(?!\d)\s*日?")
SHORT_DATE = re.compile(r"(?<![\d\-/.])(\d{1,2})[-/](\d{1,2})(?![\d\-/.])")
# Year (and month) of an item from its URL: /201803/t20180315_1.html, /art/2018/3/16/, /2018-03/16/
URL_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:[-/]?(\d{1,2}))?(?=[-/_]|\d{2}[/_])")
_HEADLINE = re.compile(
    r"[《》]|关于|通知|公告|推进|推出|推动|加快|助力|打造|提升|新增|开展|召开|举行|举办|印发|出台|深化|"
    r"扎实|全面|启动|上线|实现|我[省市区县]|解读|报道|成效|经验|答记者问|座谈|调研|部署|动员|培训|荣获|获评|喜报"
)
_ARTICLE_URL = re.compile(r"/t\d{8}_\d+|/art/\d{4}/|content_\d+|/\d{6}/t\d|/\d{4}-?\d{2}/\d{2}/|/\d{4}/\d{4}/", re.I)
_ITEM_TAGS = ("li", "tr", "dd", "dt", "p")


def has_date(text: str) -> bool:
    return bool(FULL_DATE.search(text) or SHORT_DATE.search(text))


def element_has_date(page: Page, el) -> bool:
    """A visible date in the element, read per text node (adjacent tags are not glued together)."""
    for node in el.iter():
        if not isinstance(node.tag, str) or not page.is_visible(node):
            continue
        if has_date(page.own_text(node)):
            return True
    return False


ITEM_MAX_CHARS = 150


def item_container(page: Page, el, levels: int = 3):
    """Nearest enclosing list item / table row / paragraph (a news list entry), if any.

    A layout row (a table row holding nested tables or lists, or a long block) is not an item.
    """
    node = el.getparent()
    for _ in range(levels):
        if node is None:
            return None
        if node.tag in _ITEM_TAGS:
            nested = next((n for n in node.iterdescendants("table", "ul", "ol", "dl")), None)
            if nested is not None or len(page.visible_text(node)) > ITEM_MAX_CHARS:
                return None
            return node
        node = node.getparent()
    return None


def is_headline(page: Page, el, label: str, href: str | None) -> bool:
    """A link that reports on something (news item) rather than offering it."""
    container = item_container(page, el)
    if container is not None and element_has_date(page, container):
        return True
    if _HEADLINE.search(label):
        return True
    if href and _ARTICLE_URL.search(href) and len(label) > 8:
        return True
    return False


def in_context(el, patterns: list[str]) -> bool:
    """An ancestor's id/class matches one of the patterns (e.g. a share widget)."""
    if not patterns:
        return False
    node = el
    while node is not None:
        marker = f"{node.get('id') or ''} {node.get('class') or ''}"
        if marker.strip() and _any(patterns, marker):
            return True
        node = node.getparent()
    return False


def present(page: Page, indicator, ctx: Context, el, *, value=None, href=None, snippet=None, details=None) -> Finding:
    text = snippet if snippet is not None else (page.visible_text(el) or page.label_of(el))
    return Finding(
        indicator=indicator.id,
        verdict=PRESENT,
        value=value,
        url=page.url,
        href=href,
        locator=page.locator(el),
        snippet=clip(text),
        details=details or {},
        detector_version=ctx.version,
    )


def absent(page: Page, indicator, ctx: Context, checked: str, details=None) -> Finding:
    """An absent finding; on a near-empty page (redirect stub, script shell) ``details`` says so,
    so the crawler can follow the redirect or report "unknown" instead."""
    details = dict(details or {})
    if page.is_stub:
        details["stub"] = True
        if page.redirect_url:
            details["redirect"] = page.redirect_url
    return Finding(
        indicator=indicator.id,
        verdict=ABSENT,
        url=page.url,
        checked=checked if checked.startswith("checked") else f"checked {checked}",
        details=details,
        detector_version=ctx.version,
    )


def _describe(rules) -> str:
    parts = []
    if rules.link_texts:
        parts.append(f"{len(rules.link_texts)} link-text rule(s)")
    if rules.url_patterns:
        parts.append(f"{len(rules.url_patterns)} URL rule(s)")
    if rules.text_patterns:
        parts.append(f"{len(rules.text_patterns)} caption rule(s)")
    return ", ".join(parts) or "no rules"


TEXT_TAGS = (
    "span", "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th",
    "em", "strong", "b", "label", "button", "font", "i", "figcaption", "caption", "img",
)


def _innermost(page: Page, el, text: str):
    """Descend to the deepest element that still carries the same visible text."""
    while True:
        for child in el:
            if isinstance(child.tag, str) and page.is_visible(child) and page.visible_text(child) == text:
                el = child
                break
        else:
            return el


_ATTACHMENT = re.compile(r"\.(docx?|xlsx?|et|pdf|ofd|wps|zip|rar|7z|txt|csv)(?:[?#]|$)", re.I)
_MORE = re.compile(r"^(更多|查看更多|more)\s*[>»＞+]*$|^[>»＞]{2}$", re.I)
_HEADING_CLASS = re.compile(r"tit|title|hd|head|bt|lm|name", re.I)


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
            if cand.tag in ("h1", "h2", "h3", "h4", "h5") or _HEADING_CLASS.search(cand.get("class") or ""):
                text = page.visible_text(cand)
                if 0 < len(text) <= 12:
                    return text
        node = node.getparent()
    return None


def _link_info(page: Page, el) -> tuple[str, str | None] | None:
    """(label, absolute href) of a link or control, cached per page; None for attachments."""
    cache = page._cache.setdefault("linkinfo", {})
    if el in cache:
        return cache[el]
    label = page.label_of(el)
    href = page.absolute(el.get("href"))
    if href and _ATTACHMENT.search(href):
        info = None
    else:
        if _MORE.match(label):
            label = section_heading(page, el) or label
        info = (label, href)
    cache[el] = info
    return info


def match_link(page: Page, rules, el) -> tuple[str, str | None] | None:
    """Return (label, href) when a link matches the rules and is not a headline.

    Attachments (``.xls``, ``.pdf`` …) are documents, never entries; a "更多" link stands for
    its block's heading.
    """
    info = _link_info(page, el)
    if info is None:
        return None
    label, href = info
    if _any(rules.exclude_texts, label) or (href and _any(rules.exclude_urls, href)):
        return None
    text_ok = bool(label) and len(label) <= rules.max_text_len and _any(rules.link_texts, label)
    if text_ok and _sentence_after_keyword(label, rules.link_texts):
        text_ok = False
    url_ok = bool(href) and _any(rules.url_patterns, href) and len(label) <= 2 * rules.max_text_len
    if not (text_ok or url_ok):
        return None
    if in_context(el, rules.exclude_contexts):
        return None
    if rules.exclude_context_texts and near_text(page, el, rules.exclude_context_texts, levels=2):
        return None
    if not rules.allow_dated and is_headline(page, el, label, href):
        return None
    if rules.context_texts and not near_text(page, el, rules.context_texts):
        return None
    return label, href


SENTENCE_MIN_CHARS = 10
SENTENCE_TAIL_CHARS = 5


def _sentence_after_keyword(label: str, patterns: list[str]) -> bool:
    """``市政务服务中心延长周末服务时间``: the keyword opens a longer sentence — a news title.

    Entry labels end at (or just after) their keyword: ``浙江政务服务网``, ``一件事一次办专区``.
    """
    if len(label) < SENTENCE_MIN_CHARS:
        return False
    for pattern in patterns:
        m = _rx(pattern).search(label)
        if m is None:
            continue
        tail = _ENTRY_SUFFIX.sub("", _QUOTES.sub("", label[m.end():]))
        if len(tail) < SENTENCE_TAIL_CHARS:
            return False
    return True


_QUOTES = re.compile(r"[“”\"'「」『』《》()（）\s]")
_ENTRY_SUFFIX = re.compile(r"(专区|专栏|专题|入口|平台|系统|服务|中心|网)+$")


def near_text(page: Page, el, patterns: list[str], levels: int = 3) -> bool:
    """Visible text of the element's nearest ancestors matches one of the patterns."""
    node = el.getparent()
    for _ in range(levels):
        if node is None:
            return False
        if _any(patterns, page.visible_text(node)[:400]):
            return True
        node = node.getparent()
    return False


def iter_link_matches(page: Page, rules, *, controls: bool = False):
    for el in page.controls() if controls else page.links():
        hit = match_link(page, rules, el)
        if hit is not None:
            yield el, hit[0], hit[1]


CAPTION_MAX = 40


def short_captions(page: Page) -> list[tuple[object, str]]:
    """Visible text elements (and image alt texts) short enough to be captions; computed once per page."""
    cached = page._cache.get("captions")
    if cached is None:
        cached = []
        for el in page.visible_elements(*TEXT_TAGS):
            if el.tag == "img":
                text = normalize_space(el.get("alt") or el.get("title") or "")
            else:
                text = page.visible_text(el)
            if text and len(text) <= CAPTION_MAX:
                cached.append((el, text))
        page._cache["captions"] = cached
    return cached


def iter_caption_matches(page: Page, rules):
    if not rules.text_patterns:
        return
    for el, text in short_captions(page):
        if len(text) > rules.max_text_len:
            continue
        if _any(rules.exclude_texts, text) or not _any(rules.text_patterns, text):
            continue
        if in_context(el, rules.exclude_contexts):
            continue
        if rules.exclude_context_texts and near_text(page, el, rules.exclude_context_texts, levels=2):
            continue
        if rules.context_texts and not near_text(page, el, rules.context_texts):
            continue
        if el.tag != "img":
            el = _innermost(page, el, text)
        container = item_container(page, el)
        if not rules.allow_dated and container is not None and element_has_date(page, container):
            continue
        yield el, text


# ---------------------------------------------------------------------------- generic detectors
@register("crawler")
def detect_crawler(page: Page, indicator, ctx: Context) -> Finding | None:
    """Indicators that need crawl context; produced by the crawler, not from one page."""
    return None


@register("entry")
def detect_entry(page: Page, indicator, ctx: Context) -> Finding:
    rules = indicator.rules
    for el, label, href in iter_link_matches(page, rules, controls=True):
        shown = page.label_of(el)
        details = {"section": label} if label != shown else None  # a "更多" link under its heading
        return present(page, indicator, ctx, el, href=href, snippet=shown, details=details)
    for el, text in iter_caption_matches(page, rules):
        return present(page, indicator, ctx, el, snippet=text)
    if rules.message_form:
        form = _message_form(page)
        if form is not None:
            return present(page, indicator, ctx, form, href=page.absolute(form.get("action")))
    n_controls = len(page.controls())
    return absent(page, indicator, ctx, f"{_describe(rules)} over {n_controls} visible link(s)/control(s) and short captions; no match")


def _value_of(match: re.Match) -> str:
    """The first matched group named ``value*`` (alternatives may each have one), else the match."""
    for name, text in match.groupdict().items():
        if name.startswith("value") and text is not None:
            return normalize_space(text)
    return normalize_space(match.group(0))


@register("value")
def detect_value(page: Page, indicator, ctx: Context, *, max_len: int | None = None) -> Finding:
    """Read a value near a label keyword in visible text; the value may span several tags.

    ``max_len`` skips long blocks (prose): a count stated in a sentence is not a statistic.
    """
    rules = indicator.rules
    regex = _rx(rules.value_regex or ".+")
    triggers = [_rx(p) for p in rules.labels] or [regex]
    candidates = 0
    seen = set()
    for el in page.visible_elements():
        own = page.own_text(el)
        if el.tag == "a":
            own += " " + page.label_of(el)
        if not own.strip() or not any(t.search(own) for t in triggers):
            continue
        if max_len is not None and _in_headline_link(page, el):
            continue
        node = el
        for _ in range(4):
            if node is None or node in seen:
                break
            seen.add(node)
            candidates += 1
            text = page.visible_text(node)
            if max_len is not None and len(text) > max_len:
                break
            match = regex.search(text)
            if match:
                value = _value_of(match)
                # A long block (a whole footer) is still one element; the snippet is its start.
                return present(page, indicator, ctx, node, value=value, href=_link_href(page, node), snippet=text)
            node = node.getparent()
    return absent(
        page,
        indicator,
        ctx,
        f"value regex {rules.value_regex!r} near label(s) {rules.labels} in visible text: "
        f"{candidates} candidate element(s), no match",
    )


def _in_headline_link(page: Page, el) -> bool:
    """Text inside a link of a dated list item: a news title quoting a figure, not the figure."""
    link = el if el.tag == "a" else next(el.iterancestors("a"), None)
    if link is None:
        return False
    container = item_container(page, link)
    return container is not None and element_has_date(page, container)


def _link_href(page: Page, el) -> str | None:
    if el.tag == "a":
        return page.absolute(el.get("href"))
    return None


def _message_form(page: Page):
    """A visible form where a visitor writes free text (a text area) and submits it."""
    for form in page.visible_elements("form"):
        has_area = any(page.is_visible(t) for t in form.iter("textarea"))
        has_submit = any(
            page.is_visible(b) and (b.tag == "button" or (b.get("type") or "").lower() in ("submit", "image", "button"))
            for b in form.iter("button", "input")
        )
        has_password = any((i.get("type") or "").lower() == "password" for i in form.iter("input"))
        if has_area and has_submit and not has_password:
            return form
    return None


# ---------------------------------------------------------------------------- special detectors
_SEARCH_INPUT_TYPES = {"", "text", "search"}


@register("search_box")
def detect_search_box(page: Page, indicator, ctx: Context) -> Finding:
    """A visible text input that is a site search (hints in form/input/button), not a login box."""
    rules = indicator.rules
    hints = rules.labels
    inputs = [
        el
        for el in page.visible_elements("input")
        if (el.get("type") or "").lower().strip() in _SEARCH_INPUT_TYPES
    ]
    for el in inputs:
        form = next((a for a in el.iterancestors("form")), None)
        scope = form if form is not None else el.getparent()
        if form is not None and any((i.get("type") or "").lower() == "password" for i in form.iter("input")):
            continue
        markers = [el.get(k) or "" for k in ("name", "id", "class", "placeholder", "title", "aria-label", "value")]
        if form is not None:
            markers += [form.get(k) or "" for k in ("action", "name", "id", "class")]
        if scope is not None:
            for button in scope.iter("button", "input", "a", "img", "span", "label"):
                if button is el or not page.is_visible(button):
                    continue
                markers += [page.label_of(button)[:12], button.get("value") or "", button.get("alt") or "", button.get("class") or ""]
        marker = " ".join(m for m in markers if m)
        if _any(rules.exclude_texts, marker):
            continue
        if _any(hints, marker):
            evidence = form if form is not None else el
            action = page.absolute(form.get("action")) if form is not None else None
            return present(page, indicator, ctx, evidence, href=action)
    return absent(page, indicator, ctx, f"{len(inputs)} visible text input(s) checked for search hints; none found")


def _valid_date(year: int, month: int, day: int, now: dt.date) -> dt.date | None:
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    if date.year < 1995 or date > now:
        return None
    return date


_PUBLISH_LABEL = re.compile(r"(?:(?:发布|更新|成文|印发|生成|公开|发文)(?:日期|时间)|发布于|更新于|^\s*(?:日期|时间))\s*[:：]?\s*$")
_ARTICLE_INFO = re.compile(r"来源[:：]|作者[:：]|浏览(次数|量)?[:：]|点击(数|量|率)?[:：]|阅读(数|量)?[:：]|字号[:：]|责任编辑")
_TODAY = re.compile(r"(今天是|今天|今日|当前时间|现在是)\s*[:：]?\s*$")
_WEEKDAY = re.compile(r"\s*(星期|周|礼拜)[一二三四五六日天]")
_ITEM_LABEL = re.compile(r"(留言|回复|答复|受理|办结|提问|来信|咨询|访谈|更新)(日期|时间)\s*[:：]?\s*$")
_OTHER_LABEL = re.compile(r"(截止|开始|结束|有效|出生|报名|考试|开标|施工)(日期|时间)\s*[:：]?\s*$")


PROSE_MIN_CHARS = 30


def _in_prose(page: Page, el) -> bool:
    """A short line inside a document body (a signature date under long paragraphs) is part of
    the text, not page information."""
    parent = el.getparent()
    for scope in (parent, parent.getparent() if parent is not None else None):
        if scope is None:
            continue
        for p in scope.iterchildren("p"):
            text = page.visible_text(p) if p is not el else ""
            if len(text) >= PROSE_MIN_CHARS and ("。" in text or "，" in text):
                return True
    return False


def _label_before(page: Page, el) -> str:
    """Text of the previous sibling element: ``<span>发布时间：</span><span>2026-11-02</span>``."""
    prev = el.getprevious()
    while prev is not None and not isinstance(prev.tag, str):
        prev = prev.getprevious()
    if prev is None or not page.is_visible(prev):
        return ""
    return page.visible_text(prev)[-12:]


@register("latest_date")
def detect_latest_date(page: Page, indicator, ctx: Context) -> Finding:
    """Newest plausible publish date shown in a date-like position.

    Two tiers: dates labelled as publish dates (发布日期/发布时间/更新时间 — article information)
    win over dates of list items and bare date elements. Dates in prose (long text without a
    label), in scripts or after now are ignored; ``MM-DD`` list dates take the year from the
    item's URL (``/201803/t20180315_...``).
    """
    best: dict[int, tuple[dt.date, object, str]] = {}
    candidates = 0
    max_len = indicator.rules.max_text_len

    def offer(tier: int, date: dt.date | None, el, text: str) -> None:
        if date and (tier not in best or date > best[tier][0]):
            best[tier] = (date, el, text)

    for el in page.visible_elements():
        if el.tag == "a":  # only a date that opens or closes a link label: "2026-11-24 关于…", "…(2026-11-24)"
            label = page.visible_text(el)
            m = FULL_DATE.match(label)
            if m is None:
                tail = label[-16:].rstrip(")]）】 ")
                m = next((c for c in FULL_DATE.finditer(tail) if c.end() == len(tail)), None)
            if m:
                candidates += 1
                offer(1, _valid_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), ctx.now), el, label)
            continue
        own = page.own_text(el)
        if not own.strip() or not any(ch.isdigit() for ch in own):
            continue
        full_text = page.visible_text(el)
        for m in FULL_DATE.finditer(own):
            candidates += 1
            before = own[max(0, m.start() - 12): m.start()]
            if not before.strip():
                before = _label_before(page, el)
            if _TODAY.search(before) or _WEEKDAY.match(own[m.end(): m.end() + 4]):
                continue  # a "today is ..." header widget, not a publish date
            date = _valid_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), ctx.now)
            if _PUBLISH_LABEL.search(before) or (len(full_text) <= 120 and _ARTICLE_INFO.search(full_text)):
                offer(0, date, el, full_text)  # 发布时间：… or an info line "2026-11-02 来源：… 字号：…"
                continue
            if _OTHER_LABEL.search(before):
                continue
            if _ITEM_LABEL.search(before):  # 留言时间：… in a message item, whatever the line length
                offer(1, date, el, full_text)
                continue
            dated_item = el.tag in ("li", "tr", "dd", "td") and el.find(".//a") is not None
            if (len(full_text) <= max_len or dated_item) and not _in_prose(page, el):
                offer(1, date, el, full_text)
        if not FULL_DATE.search(own) and len(normalize_space(own)) <= 8:
            for m in SHORT_DATE.finditer(own):
                candidates += 1
                item = el if el.tag in ("li", "tr", "dd") else item_container(page, el)
                if item is None:
                    continue
                link = next((a for a in item.iter("a") if a.get("href")), None)
                url_match = URL_DATE.search(link.get("href")) if link is not None else None
                if not url_match:
                    continue
                if url_match.group(2) and int(url_match.group(2)) != int(m.group(1)):
                    continue  # the URL's month disagrees: the year cannot be trusted
                year = int(url_match.group(1))
                offer(1, _valid_date(year, int(m.group(1)), int(m.group(2)), ctx.now), item, page.visible_text(item))
    if not best:
        return absent(
            page, indicator, ctx,
            f"{candidates} visible date string(s); none in a publish-date position (article information, "
            f"dated list items, date cells) and not after {ctx.now}",
        )
    tier = min(best)
    date, el, text = best[tier]
    details = {"position": "article information" if tier == 0 else "dated item"}
    return present(page, indicator, ctx, el, value=date.isoformat(), snippet=text, details=details)


def department_links(page: Page, rules):
    """Department-site evidence.

    Returns ``("directory", [(el, label, href)])`` for a link to a directory of department sites,
    ``("group", items)`` for the largest group of links (or select options) to other government
    hosts named like departments, else ``(None, largest_group)``.
    """
    own_host = host_of(page.url)
    groups: dict = {}
    for el in list(page.links()) + list(page.visible_elements("option")):
        href = page.absolute(el.get("value") if el.tag == "option" else el.get("href"))
        label = page.label_of(el)
        if href is None or not label or len(label) > rules.max_text_len or _any(rules.exclude_texts, label):
            continue
        if _any(rules.link_texts, label) and not is_headline(page, el, label, href):
            return "directory", [(el, label, href)]
        host = host_of(href)
        if not host or host == own_host or _NON_GOV_HOST.search(host) or not _any(rules.text_patterns, label):
            continue
        parent = el.getparent()
        group = parent.getparent() if parent is not None and parent.tag in ("li", "td", "dd", "span") else parent
        groups.setdefault(group, []).append((el, label, href))
    best = max(groups.items(), key=lambda kv: len(kv[1]), default=None)
    if best is not None and len(best[1]) >= rules.min_items:
        return "group", best[1]
    return None, (best[1] if best else [])


# Schools, universities and companies are not government departments, whatever their names.
_NON_GOV_HOST = re.compile(r"\.(edu|ac|com|net|org)(\.cn)?$")


@register("department_links")
def detect_department_links(page: Page, indicator, ctx: Context) -> Finding:
    """Links to the sites of government departments (other hosts, department-like names), or a
    link to a directory of such sites."""
    rules = indicator.rules
    how, items = department_links(page, rules)
    if how == "directory":
        el, label, href = items[0]
        return present(page, indicator, ctx, el, href=href, snippet=label)
    if how == "group":
        ancestors = [set(el.iterancestors()) for el, _, _ in items]
        container = items[0][0].getparent()
        while container is not None and not all(container in chain for chain in ancestors):
            container = container.getparent()
        return present(
            page, indicator, ctx, container if container is not None else items[0][0], href=items[0][2],
            value=str(len(items)),
            details={"links": [{"text": label, "href": href} for _, label, href in items]},
        )
    return absent(
        page, indicator, ctx,
        f"directory link texts and links to other government hosts with department names; "
        f"largest group has {len(items)} link(s), need {rules.min_items}",
    )


@register("status_list")
def detect_status_list(page: Page, indicator, ctx: Context) -> Finding:
    """Items of a message list that show a public reply (status label or reply block)."""
    rules = indicator.rules
    status = [_rx(p) for p in rules.text_patterns]
    hits: list = []
    checked = 0
    for el in page.visible_elements():
        own = page.own_text(el)
        if el.tag == "img":  # status shown as an icon with alt text
            own = el.get("alt") or el.get("title") or ""
        if not own.strip():
            continue
        checked += 1
        if not any(r.search(own) for r in status):
            continue
        item = el if el.tag in ("li", "tr", "dd", "dl") else item_container(page, el, levels=3)
        item = item if item is not None else el
        if rules.context_texts and not near_text(page, item, rules.context_texts):
            continue  # 已办结 in a service-case list is not a reply to the public
        if item not in hits and len(page.visible_text(item)) <= 300:
            hits.append(item)
    if len(hits) >= rules.min_items:
        return present(page, indicator, ctx, hits[0], details={"items": len(hits)})
    if rules.labels:
        block_rules = type(rules)(text_patterns=rules.labels, max_text_len=rules.max_text_len, allow_dated=True)
        for el, _text in iter_caption_matches(page, block_rules):
            container = el.getparent()
            if container is not None and len(page.visible_text(container)) > len(page.visible_text(el)) + 10:
                return present(page, indicator, ctx, el, details={"items": 0})
    return absent(page, indicator, ctx, f"{checked} text element(s) checked for reply status or reply blocks; {len(hits)} found")


_FORMAT_TOKEN = re.compile(r"(?<![A-Za-z])(CSV|XLSX|XLS|JSON|XML|RDF|TXT|SHP|GEOJSON)(?![A-Za-z])", re.I)
_FORMAT_SEQUENCE = re.compile(
    r"^\s*(?:CSV|XLSX|XLS|JSON|XML|RDF|TXT|SHP|GEOJSON)(?:\s*[/、,，|;；]\s*(?:CSV|XLSX|XLS|JSON|XML|RDF|TXT|SHP|GEOJSON))+\s*$",
    re.I,
)


@register("format_list")
def detect_format_list(page: Page, indicator, ctx: Context) -> Finding:
    """File formats offered for download (links, buttons or filter labels), as a sorted list."""
    rules = indicator.rules
    token = _rx(rules.value_regex or r"^(CSV|XLSX?|JSON|XML|RDF|TXT|PDF|ZIP)$")
    found: dict[str, object] = {}
    candidates = 0
    for el in page.visible_elements("a", "span", "button", "label", "li", "em", "i", "b", "td", "dd"):
        text = page.label_of(el) if el.tag == "a" else page.visible_text(el)
        if not text or len(text) > 40:
            continue
        candidates += 1
        m = token.search(text.strip()) if len(text) <= 12 else None
        if m:
            found.setdefault(_value_of(m).upper(), el)
        elif _FORMAT_SEQUENCE.match(text):  # a cell "CSV / XLSX / JSON"
            for t in _FORMAT_TOKEN.finditer(text):
                found.setdefault(t.group(0).upper(), el)
    if not found:
        for el, text in short_captions(page):
            if "格式" not in text or el.tag == "a":
                continue
            for m in _FORMAT_TOKEN.finditer(text.split("格式", 1)[1]):
                found.setdefault(m.group(0).upper(), el)
            if found:
                break
    if len(found) >= rules.min_items:
        formats = sorted(found)
        first = next(iter(found.values()))
        return present(page, indicator, ctx, first, value=",".join(formats), details={"formats": formats})
    return absent(page, indicator, ctx, f"{candidates} short label(s) checked for format names; {len(found)} found")


@register("count_value")
def detect_count_value(page: Page, indicator, ctx: Context) -> Finding:
    """An entry (link/caption) whose count, when shown next to the label, becomes the value."""
    rules = indicator.rules
    value_finding = detect_value(page, indicator, ctx, max_len=rules.max_text_len * 3) if rules.value_regex else None
    if value_finding is not None and value_finding.verdict == PRESENT:
        value = (value_finding.value or "").replace(",", "")
        return Finding(**{**value_finding.to_dict(), "value": value})
    entry = detect_entry(page, indicator, ctx)
    if entry.verdict == PRESENT:
        return entry
    return absent(page, indicator, ctx, f"{entry.checked}; {value_finding.checked if value_finding else ''}".strip("; "))

_REVIEW_COMPANIONS = {
    "bad_review_rectification_rate": re.compile(r"差评整改率\s*[:：]?\s*(\d{1,3}(?:\.\d+)?\s*%)"),
    "review_count": re.compile(r"评价(?:总量|总数|量|数|人次)\s*[:：]?\s*(\d[\d,]*)\s*(?:件|次|条|笔)?"),
    "bad_review_count": re.compile(r"差评(?:数|量|件数)\s*[:：]?\s*(\d[\d,]*)"),
}
_PERIOD = re.compile(
    r"(?:统计(?:周期|时间|区间)\s*[:：]?\s*)?"
    r"((?:19|20)\d{2}\s*年\s*(?:\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?|第?[一二三四1-4]\s*季度|上半年|下半年|全年)"
    r"(?:\s*[—\-–~至到]+\s*(?:(?:19|20)\d{2}\s*年)?\s*\d{1,2}\s*月(?:\s*\d{1,2}\s*日)?)?)"
)


@register("review_stats")
def detect_review_stats(page: Page, indicator, ctx: Context) -> Finding:
    """Published 好差评 figures: the 好评率 is the value; companions and the period go to details.

    The companions (差评整改率, 评价量) and the period are read from the smallest block around the
    好评率 that also carries them (up to four levels up).
    """
    finding = detect_value(page, indicator, ctx, max_len=indicator.rules.max_text_len * 4)
    if finding.verdict != PRESENT:
        return finding
    el = page.tree.cssselect(finding.locator)[0]
    details: dict = {"good_review_rate": finding.value}
    node = el
    for _ in range(4):
        parent = node.getparent()
        if parent is None:
            break
        node = parent
        text = page.visible_text(node)
        for key, rx in _REVIEW_COMPANIONS.items():
            if key not in details and (m := rx.search(text)):
                details[key] = normalize_space(m.group(1))
        if "period" not in details and (m := _PERIOD.search(text)):
            details["period"] = normalize_space(m.group(1))
        if len(details) >= 3 and "period" in details:
            break
    return Finding(**{**finding.to_dict(), "details": details})
