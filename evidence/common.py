"""Shared building blocks of the detectors: the registry, the call context, finding builders and
the structural tests every detector uses (news items, headlines, nearby text, share widgets)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Callable

from .finding import ABSENT, PRESENT, Finding, clip
from .page import Page
from .patterns import any_match

Detector = Callable[["Page", object, "Context"], Finding | None]
DETECTORS: dict[str, Detector] = {}


def register(name: str) -> Callable[[Detector], Detector]:
    def wrap(func: Detector) -> Detector:
        DETECTORS[name] = func
        return func

    return wrap


@dataclass
class Context:
    """Per-call settings shared by detectors (``now`` bounds plausible dates).

    ``plan`` holds the catalogue's compiled pattern banks (``evidence.index.MatchPlan``); without
    one, detectors test their own rule lists directly, with the same results.
    """

    now: dt.date
    version: str
    plan: Any = None


# ---------------------------------------------------------------------------- dates and headlines
FULL_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})\s*(?:[-/.]|年)\s*(\d{1,2})\s*(?:[-/.]|月)\s*(\d{1,2})(?!\d)\s*日?")
SHORT_DATE = re.compile(r"(?<![\d\-/.])(\d{1,2})[-/](\d{1,2})(?![\d\-/.])")
# Year (and month) of an item from its URL: /201803/t20180315_1.html, /art/2018/3/16/, /2018-03/16/
URL_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})(?:[-/]?(\d{1,2}))?(?=[-/_]|\d{2}[/_])")
HEADLINE = re.compile(
    r"[《》]|关于|通知|公告|推进|推出|推动|加快|助力|打造|提升|新增|开展|召开|举行|举办|印发|出台|深化|"
    r"扎实|全面|启动|上线|实现|我[省市区县]|解读|报道|成效|经验|答记者问|座谈|调研|部署|动员|培训|荣获|获评|喜报"
)
ARTICLE_URL = re.compile(r"/t\d{8}_\d+|/art/\d{4}/|content_\d+|/\d{6}/t\d|/\d{4}-?\d{2}/\d{2}/|/\d{4}/\d{4}/", re.I)
ITEM_TAGS = ("li", "tr", "dd", "dt", "p")
# Every date pattern needs a decimal digit: text without one holds no date.
DIGIT = re.compile(r"\d")


def has_date(text: str) -> bool:
    return bool(FULL_DATE.search(text) or SHORT_DATE.search(text))


def element_has_date(page: Page, el) -> bool:
    """A visible date in the element, read per text node (adjacent tags are not glued together)."""
    cache = page._table("dated")
    found = cache.get(el)
    if found is None:
        found = False
        for node in el.iter():
            if not isinstance(node.tag, str) or not page.is_visible(node):
                continue
            own = page.own_text(node)
            if DIGIT.search(own) and has_date(own):
                found = True
                break
        cache[el] = found
    return found


ITEM_MAX_CHARS = 150


def item_container(page: Page, el, levels: int = 3):
    """Nearest enclosing list item / table row / paragraph (a news list entry), if any.

    A layout row (a table row holding nested tables or lists, or a long block) is not an item.
    """
    node = el.getparent()
    for _ in range(levels):
        if node is None:
            return None
        if node.tag in ITEM_TAGS:
            if len(page.visible_text(node)) > ITEM_MAX_CHARS:
                return None
            nested = next((n for n in node.iterdescendants("table", "ul", "ol", "dl")), None)
            if nested is not None:
                return None
            return node
        node = node.getparent()
    return None


def is_headline(page: Page, el, label: str, href: str | None) -> bool:
    """A link that reports on something (news item) rather than offering it."""
    container = item_container(page, el)
    if container is not None and element_has_date(page, container):
        return True
    if HEADLINE.search(label):
        return True
    if href and ARTICLE_URL.search(href) and len(label) > 8:
        return True
    return False


def in_context(el, patterns: list[str]) -> bool:
    """An ancestor's id/class matches one of the patterns (e.g. a share widget)."""
    if not patterns:
        return False
    node = el
    while node is not None:
        marker = f"{node.get('id') or ''} {node.get('class') or ''}"
        if marker.strip() and any_match(patterns, marker):
            return True
        node = node.getparent()
    return False


def near_text(page: Page, el, patterns: list[str], levels: int = 3) -> bool:
    """Visible text of the element's nearest ancestors matches one of the patterns."""
    node = el.getparent()
    for _ in range(levels):
        if node is None:
            return False
        if any_match(patterns, page.visible_text(node)[:400]):
            return True
        node = node.getparent()
    return False


# ---------------------------------------------------------------------------- findings
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
