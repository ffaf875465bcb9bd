"""The date detector: the newest plausible publish date a page shows."""

from __future__ import annotations

import datetime as dt
import re

from .common import FULL_DATE, SHORT_DATE, URL_DATE, Context, absent, item_container, present, register
from .finding import Finding
from .index import page_index
from .page import Page, normalize_space


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


# A digit where a date pattern matches (every match starts with a digit; the regex engine skips
# to the digits, then the patterns are tried there, looking behind).
_ANY_DATE = rf"\d(?<=(?=(?:{FULL_DATE.pattern})|(?:{SHORT_DATE.pattern}))\d)"
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

    index = page_index(page)
    elements = index.elements()
    links = index.positions_of("a")
    # a link's visible text in place of its own text
    texts = dict(zip(links, page.visible_texts([elements[i] for i in links])))
    # Only elements where a date pattern matches are looked at (one search over all texts: the
    # patterns cannot match across the separator, and whitespace at either end of a text does not
    # decide whether they match).
    for position in index.own_scan(_ANY_DATE, texts):
        el = elements[position]
        if el.tag == "a":  # only a date that opens or closes a link label: "2026-11-24 关于…", "…(2026-11-24)"
            label = texts[position]
            m = FULL_DATE.match(label)
            if m is None:
                tail = label[-16:].rstrip(")]）】 ")
                m = next((c for c in FULL_DATE.finditer(tail) if c.end() == len(tail)), None)
            if m:
                candidates += 1
                offer(1, _valid_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), ctx.now), el, label)
            continue
        own = page.own_text(el)
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
            # a dated item: a list entry, row or cell holding a link
            dated_item = len(full_text) > max_len and el.tag in ("li", "tr", "dd", "td") and next(el.iterdescendants("a"), None) is not None
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
