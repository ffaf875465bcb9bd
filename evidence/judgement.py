"""The judgement of one answer: its bytes and the facts of its fetch in; status, detail and findings out.

The crawl asks it once per page as the answer arrives (``spiders.base``) for what it needs to
go on (``findings=False``: status, parsed page, whether a browser draws it next); the judging
step (``govevidence.judge``, beside the crawl and again with ``govevidence judge RUN``) asks it
over the bytes archived in the run's WARC files for the findings, so both decide alike. It is pure: no Scrapy, no database, no network.

Statuses of an answer that reached the spider: ``ok``, ``blocked`` (HTTP 401/403/429/451),
``http_error`` (other 4xx), ``server_error`` (5xx), ``not_html``, and those that hold nothing
to look at — ``empty`` (no body, 204/205), ``not_modified`` (a 304 nobody asked for),
``refused_redirect`` (a 3xx that was not followed), ``unreadable`` (see ``evidence.content``),
``truncated`` (only part of the body arrived) and ``challenge`` (an anti-bot challenge).
Fetch failures get theirs from ``crawler.errors.classify_failure``; the judge step adds
``too_large`` (archived bytes that decode past the size limit), ``not_archived`` and
``archive_error`` (no readable record of the answer).

Findings: on an ``ok`` page the detectors' findings, plus ``site.reachable`` on a source's home
page; raw HTML a browser draws next shows what it shows, but nothing on it counts as ``absent``
yet; a home page with any other status gives ``could_not_look`` (every indicator ``unknown``,
reachability ``absent`` only when the site did not serve us at all). No status but ``ok`` ever
feeds an ``absent``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

# What a status means for a source's findings and why a browser draws a capture.
from vocabulary import BLOCKED_STATUSES, DOWN_STATUSES, NOTHING_SHOWN_STATUSES

from . import DETECTOR_VERSION, detect
from .catalogue import Catalogue, load_catalogue
from .content import binary_kind, challenge_reason, drew_nothing, is_blank, unreadable_reason
from .page import Page

# Indicators the crawl itself decides, not the page detectors.
CRAWL_INDICATORS = ("site.reachable", "site.broken_links")
RENDER_NOTES = {"source_marked": "source marked render", "script_shell": "page is a script shell",
                "challenge": "anti-bot challenge"}
FOLLOWED_REDIRECTS = (301, 302, 303, 307, 308)


def http_status_kind(status: int) -> str:
    """Status of an HTTP answer that reached the spider, from its code alone.

    A 3xx reaching the spider is one the redirect handling did not follow; a 304 is
    never asked for (no conditional requests are sent); 204/205 have no content.
    """
    if status in (204, 205):
        return "empty"
    if status == 304:
        return "not_modified"
    if 300 <= status < 400:
        return "refused_redirect"
    if status < 400:
        return "ok"
    if status == 412:
        return "challenge"
    if status in (401, 403, 429, 451):
        return "blocked"
    if status >= 500:
        return "server_error"
    return "http_error"


def is_html_type(content_type: str | None, text_response: bool) -> bool:
    """Whether an answer is a document to parse: an HTML/XML type, or no type and text content."""
    lowered = (content_type or "").lower()
    if "html" in lowered or "xml" in lowered:
        return True
    return not lowered and text_response


@dataclass(frozen=True)
class Answer:
    """What came back for one fetch, as the spider (or the archive) has it."""

    url: str  # the final URL, after redirects
    status: int
    body: bytes  # decoded: no Content-Encoding, no transfer framing
    content_type: str | None = None
    is_html: bool = True  # see is_html_type
    location: str | None = None  # the Location header of a 3xx
    body_truncated: str | None = None  # why the compressed stream as received is incomplete
    rendered: bool = False
    render_reason: str | None = None


@dataclass(frozen=True)
class PageFacts:
    """Where the answer belongs: its source, its depth, what the crawl did with it."""

    source_kind: str
    source_url: str
    depth: int = 0
    screenshot_only: bool = False  # a home page drawn for its picture only
    landed: dict[str, Any] | None = None  # where a home page landed (site.reachable details)


@dataclass(frozen=True)
class RenderPolicy:
    """When a browser draws a raw capture next."""

    source_marked: bool = False  # the source is marked render: every page
    auto_render: bool = True  # home pages whose raw HTML is an empty script shell
    render_challenges: bool = True  # anti-bot challenges


@dataclass
class PageJudgement:
    status: str
    detail: str | None
    page: Page | None
    findings: list[dict[str, Any]] = field(default_factory=list)
    render_next: str | None = None  # why a browser draws this page next (one of RENDER_REASONS)


def judge(answer: Answer, facts: PageFacts, policy: RenderPolicy = RenderPolicy(), *,
          catalogue: Catalogue | None = None, now: dt.date | dt.datetime | None = None,
          findings: bool = True) -> PageJudgement:
    """Status, detail, parsed page and findings of one answer.

    With ``findings=False`` only what the crawl needs to go on is decided — status, detail,
    parsed page, whether a browser draws it next — and no detector runs: the capture's findings
    are made from its stored bytes by the judging step (``govevidence.judge``)."""
    status, detail, page = answer_status(answer, facts.source_kind)
    if status != "ok":
        render_next = None
        if status == "challenge" and not answer.rendered and policy.render_challenges:
            # What a visitor's browser shows after running the challenge is looked at next.
            detail = f"{detail}; rendered again with a browser: {RENDER_NOTES['challenge']}"
            render_next = "challenge"
        rows = (could_not_look(facts.source_kind, facts.source_url, status, detail or "", catalogue)
                if facts.depth == 0 and findings else [])
        return PageJudgement(status, detail, page, rows, render_next)

    assert page is not None
    reason = render_reason(answer, facts, policy, page)
    if not findings:
        detail = "rendered again with a browser: " + RENDER_NOTES[reason] if reason else None
        return PageJudgement("ok", detail, page, [], reason)
    findings = [f.to_dict() for f in detect(page, now=now, catalogue=catalogue or load_catalogue())]
    if facts.depth == 0:
        findings.append(finding("site.reachable", "present", value=str(answer.status), url=answer.url,
                                snippet=page_title(page), details=dict(facts.landed or {})))
    if reason:
        # The raw capture is kept; what the browser shows is looked at next. Until then
        # nothing on the raw HTML counts as absent.
        return PageJudgement("ok", "rendered again with a browser: " + RENDER_NOTES[reason], page,
                             before_rendering(findings, reason), reason)
    return PageJudgement("ok", None, page, findings)


def render_reason(answer: Answer, facts: PageFacts, policy: RenderPolicy, page: Page) -> str | None:
    """Why a browser draws an ``ok`` raw capture next (one of RENDER_REASONS), or None."""
    if answer.rendered:
        return None
    if policy.source_marked:
        return "source_marked"
    if facts.depth == 0 and policy.auto_render and looks_like_script_shell(page):
        return "script_shell"
    return None


def answer_status(answer: Answer, source_kind: str) -> tuple[str, str | None, Page | None]:
    """(status, detail, parsed page or None) of an answer."""
    code = answer.status
    kind = http_status_kind(code)
    body = answer.body
    if kind == "refused_redirect":
        return kind, refused_redirect_detail(answer.url, code, answer.location), None
    if kind == "not_modified":
        return kind, "HTTP 304 Not Modified, although the request sent no validator", None
    if kind == "empty":
        return kind, f"HTTP {code}: no content", None
    if answer.body_truncated and kind == "ok":
        return "truncated", f"only part of the body arrived: {answer.body_truncated}", None
    if is_blank(body):
        if kind == "challenge":
            return kind, "HTTP 412 (anti-bot challenge) with no body", None
        return ("empty", f"HTTP {code}: {len(body)} byte(s), no content", None) if kind == "ok" else (
            kind, f"HTTP {code}", None)
    if not answer.is_html:
        if kind == "challenge":
            return kind, f"HTTP 412 (anti-bot challenge), {answer.content_type}", None
        return ("not_html", answer.content_type, None) if kind == "ok" else (kind, f"HTTP {code}", None)
    binary = binary_kind(body)
    if binary:
        if kind == "ok":
            return "unreadable", f"binary content: {binary}", None
        return ("challenge", "HTTP 412 (anti-bot challenge)", None) if kind == "challenge" else (kind, f"HTTP {code}", None)
    page = Page.from_bytes(answer.url, body, content_type=answer.content_type, kind=source_kind)
    if kind in ("ok", "challenge", "blocked", "server_error", "http_error"):
        why = challenge_reason(body, page)
        if why:
            return "challenge", f"HTTP {code}: {why}", page
    if answer.rendered and answer.render_reason == "challenge" and kind != "ok":
        # The browser ran the challenge and drew the page; the status is its first answer's.
        kind = "ok"
    if kind == "challenge":
        return kind, "HTTP 412 (anti-bot challenge)", page
    if kind != "ok":
        return kind, f"HTTP {code}", page
    why = unreadable_reason(body, page)
    if why:
        return "unreadable", why, None
    if answer.rendered and drew_nothing(page):
        return "empty", "the browser drew an empty page", page
    return "ok", None, page


def refused_redirect_detail(url: str, code: int, location: str | None) -> str:
    """Why a 3xx reached the spider instead of being followed, naming its Location."""
    if location is None:
        return f"HTTP {code} without a Location header"
    shown = location.strip()
    target = urljoin(url, shown)
    scheme = urlsplit(target).scheme.lower()
    if len(shown) > 200:
        shown = shown[:200] + "…"
    if code not in FOLLOWED_REDIRECTS:
        why = f"{code} is not a redirect status that is followed"
    elif scheme not in ("http", "https"):
        why = f"the target's scheme {scheme + ':' if scheme else '(none)'} is not HTTP(S)"
    else:
        why = "the redirect was not followed"
    return f"HTTP {code} Location: {shown}: {why}"


def finding(indicator: str, verdict: str, **fields: Any) -> dict[str, Any]:
    return {"indicator": indicator, "verdict": verdict, "detector_version": DETECTOR_VERSION, **fields}


def could_not_look(kind: str, source_url: str, status: str, detail: str,
                   catalogue: Catalogue | None = None) -> list[dict[str, Any]]:
    """Findings for a source whose home page could not be looked at."""
    catalogue = catalogue or load_catalogue()
    if status in DOWN_STATUSES:
        reachable = "absent"
    elif status in BLOCKED_STATUSES or status in NOTHING_SHOWN_STATUSES:
        reachable = "unknown"  # it answered, but showed nothing: not proven down
    else:
        reachable = "present" if status == "not_html" else "unknown"
    why = f"home page {source_url}: {status} ({detail})"
    rows = [finding("site.reachable", reachable, value=status, url=source_url, checked=why)]
    for indicator in catalogue.for_kind(kind):
        if indicator.id not in CRAWL_INDICATORS:
            rows.append(finding(indicator.id, "unknown", url=source_url, checked=why))
    return rows


def before_rendering(findings: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """Findings on raw HTML that a browser draws next: what is shown counts, what is not
    shown is not yet an ``absent`` (the rendered capture says)."""
    out = []
    for row in findings:
        if row.get("verdict") == "absent":
            why = f"raw HTML before rendering ({RENDER_NOTES[reason]})"
            if row.get("checked"):
                why += f"; searched: {row['checked']}"
            row = {**row, "verdict": "unknown", "checked": why}
        out.append(row)
    return out


def page_title(page: Page) -> str | None:
    titles = page.tree.xpath("//title/text()")
    return " ".join(titles[0].split())[:300] if titles else None


def looks_like_script_shell(page: Page) -> bool:
    body_text = " ".join(page.tree.xpath(
        "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"))
    return len(body_text.strip()) < 40 and bool(page.tree.xpath("//script"))
