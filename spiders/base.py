"""Base spider for evaluation targets: crawl each source, detect, discover, record.

A spider subclass only says which targets it covers (``level``). For every selected
target it crawls each registered source within its own site to a bounded depth and
page budget, records every fetch (successful or not) as a ``PageRecord`` carrying the
detectors' findings, and follows the portal's links to the target's other evaluation
sources one hop, recording those as ``SourceRecord``s.

A source's crawl scope is its registered origin plus the origin its home page finally
lands on after redirects (``http://`` to ``https://``, bare domain to ``www.``, a moved
host), unless that origin is another target's registered site. Answers that hold nothing
to look at (empty, unreadable, a refused redirect, an unsolicited 304, an anti-bot
challenge) get their own recorded status and never feed an ``absent``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urldefrag, urljoin, urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import IGNORED_EXTENSIONS
from twisted.python.failure import Failure
from w3lib.url import canonicalize_url

from crawler.content import (binary_kind, challenge_reason, compressed_stream_problem, drew_nothing, is_blank,
                             unreadable_reason)
from crawler.errors import (BLOCKED_STATUSES, DOWN_STATUSES, NOTHING_SHOWN_STATUSES, classify_failure,
                            http_status_kind)
from crawler.items import PageRecord, SourceRecord
from crawler.screenshots import Screenshotter
from crawler.tls import connection_facts
from evidence import DETECTOR_VERSION, Page, detect, discover_sources, indicators_for
from govevidence.registry import RegistryError, TargetEntry, load_registry

_SKIP_EXTENSIONS = tuple(f".{ext}" for ext in IGNORED_EXTENSIONS)
# Indicators the crawl itself decides, not the page detectors.
CRAWL_INDICATORS = ("site.reachable", "site.broken_links")
# Why a browser draws a capture (PageRecord.render_reason).
RENDER_REASONS = ("source_marked", "script_shell", "challenge", "screenshot")
_RENDER_NOTES = {"source_marked": "source marked render", "script_shell": "page is a script shell",
                 "challenge": "anti-bot challenge"}
_FOLLOWED_REDIRECTS = (301, 302, 303, 307, 308)


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class SourceState:
    """Crawl bookkeeping for one source within one run."""

    target_code: str
    kind: str
    url: str
    max_depth: int
    max_pages: int
    render: bool = False
    obey_robots: bool = True
    seen: set[str] = field(default_factory=set)
    # Origins whose links are followed: the registered one and where the home page landed.
    scope: set[str] = field(default_factory=set)
    landing: str | None = None

    def __post_init__(self) -> None:
        self.scope.add(self.site)

    @property
    def site(self) -> str:
        return origin(self.url)

    def in_scope(self, url: str) -> bool:
        return origin(url) in self.scope

    def admit(self, url: str) -> bool:
        """Reserve a page of the budget for a URL not seen before."""
        key = canonicalize_url(url)
        if key in self.seen or len(self.seen) >= self.max_pages:
            return False
        self.seen.add(key)
        return True


class TargetSpider(scrapy.Spider):
    """Crawl the registered sources of evaluation targets of one level."""

    level: ClassVar[str | None] = None

    def __init__(self, targets: str | None = None, registry: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry_file = registry
        try:
            self.registry = load_registry(registry)
            codes = [c.strip() for c in targets.split(",") if c.strip()] if targets else None
            self.targets: list[TargetEntry] = self.registry.select(codes, level=self.level)
        except RegistryError as exc:
            raise ValueError(str(exc)) from None
        if targets and not self.targets:
            raise ValueError(f"none of the targets {targets} is of level {self.level}")
        self.sources: dict[tuple[str, str, str], SourceState] = {}
        self.run_id: int | None = None
        # Sites the registry gives to a target: a city portal linking to its province's
        # platform has not discovered a source of the city.
        self.site_owner: dict[str, set[str]] = {}
        for target in self.registry.targets:
            for entry in target.sources:
                self.site_owner.setdefault(origin(entry.url), set()).add(target.code)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "TargetSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._check_compressed, signal=signals.response_downloaded)
        return spider

    def _check_compressed(self, response: Response, request: scrapy.Request) -> None:
        """Before Scrapy decompresses a body (it keeps whatever a cut stream gave), note
        whether the compressed stream as received is complete."""
        request.meta.pop("body_truncated", None)  # a redirect or retry copies meta: judge this answer only
        coding = response.headers.get(b"Content-Encoding")
        if not coding or "playwright" in response.flags or "source" not in request.meta:
            return
        codings = [c.strip() for c in coding.decode("latin-1").split(",") if c.strip()]
        if len(codings) != 1:
            return
        problem = compressed_stream_problem(response.body, codings[0], self.settings.getint("DOWNLOAD_MAXSIZE"))
        if problem:
            request.meta["body_truncated"] = problem

    @cached_property
    def screenshots(self) -> Screenshotter:
        return Screenshotter(self.crawler)

    # --- scheduling --------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        settings = self.settings
        for target in self.targets:
            for entry in target.sources:
                depth = settings.getint(
                    "GOVEVIDENCE_PORTAL_MAX_DEPTH" if entry.kind == "portal" else "GOVEVIDENCE_SOURCE_MAX_DEPTH"
                )
                state = SourceState(
                    target.code, entry.kind, entry.url, max_depth=depth,
                    max_pages=settings.getint("GOVEVIDENCE_MAX_PAGES_PER_SOURCE"),
                    render=entry.render, obey_robots=entry.obey_robots,
                )
                self.sources[(target.code, entry.kind, entry.url)] = state
                state.admit(entry.url)
                yield self.page_request(state, entry.url, depth=0)

    def page_request(self, state: SourceState, url: str, *, depth: int, referer: str | None = None,
                     render_reason: str | None = None, screenshot_only: bool = False) -> scrapy.Request:
        """A page of a source. Pages are fetched over plain HTTP first, so the archive
        holds the server's response; those that need a browser are then rendered
        (``render_reason`` says why, one of ``RENDER_REASONS``)."""
        meta = {
            "source": state,
            "depth_in_source": depth,
            "render": render_reason is not None,
            "render_reason": render_reason,
            "dont_obey_robotstxt": not state.obey_robots,
            "screenshot_only": screenshot_only,
        }
        headers = {"Referer": referer} if referer else None
        # dont_filter: every scheduled URL must reach a callback or errback so that it is
        # recorded; de-duplication happens per source in SourceState.admit.
        return scrapy.Request(url, callback=self.parse_page, errback=self.page_failed, meta=meta,
                              headers=headers, dont_filter=True, priority=-depth)

    # --- callbacks -----------------------------------------------------------------------
    async def parse_page(self, response: Response) -> AsyncIterator[Any]:
        browser_page = response.meta.pop("playwright_page", None)
        try:
            for item in await self._parse_page(response, browser_page):
                yield item
        finally:
            if browser_page is not None:
                await browser_page.close()

    async def _parse_page(self, response: Response, browser_page: Any) -> list[Any]:
        state: SourceState = response.meta["source"]
        depth: int = response.meta["depth_in_source"]
        record = self._record(response.request, state, depth)
        record.final_url = response.url
        record.http_status = response.status
        record.content_type = response.headers.get(b"Content-Type", b"").decode("latin-1") or None
        record.size = len(response.body)
        warc = response.meta.get("warc") or {}
        record.warc_file, record.warc_record_id, record.warc_offset = (
            warc.get("warc_file"), warc.get("record_id"), warc.get("offset"))
        record.warc_request_id = warc.get("request_record_id")
        # SHA-256 of the body as archived (as received, or the rendered DOM).
        record.sha256 = warc.get("payload_sha256") or hashlib.sha256(response.body).hexdigest()
        record.rendered = "playwright" in response.flags or bool(response.meta.get("playwright"))
        record.render_reason = (response.meta.get("render_reason") or "source_marked") if record.rendered else None
        # A browser's answer names the connection it was given (a local proxy), not the server.
        if response.ip_address is not None and not record.rendered:
            record.ip_address = str(response.ip_address)
        for name, value in connection_facts(response).items():
            setattr(record, name, value)
        referer = response.request.headers.get(b"Referer")
        referer_url = referer.decode("latin-1") if referer else None
        landed = self._landed(state, response.url) if depth == 0 else None
        if response.url != response.request.url or response.meta.get("redirect_urls"):
            # Where a redirect led is a page of the budget already seen: links back to it
            # (an inner page's "home" link to the landing URL) do not fetch it again.
            state.seen.add(canonicalize_url(response.url))
        status, detail, page = self._judge(response, record)
        record.error_status, record.error_detail = status, detail
        if page is not None and status in ("ok", "challenge"):
            record.encoding = page.encoding
            record.title = self._title(page)
        if status != "ok":
            out: list[Any] = [record]
            if status == "challenge" and not record.rendered and self._render_challenges():
                # What a visitor's browser shows after running the challenge is looked at next.
                record.error_detail = f"{detail}; rendered again with a browser: {_RENDER_NOTES['challenge']}"
                out.append(self.page_request(state, response.url, depth=depth, render_reason="challenge",
                                             referer=referer_url, screenshot_only=bool(response.meta.get("screenshot_only"))))
            if depth == 0:
                record.findings = self._could_not_look(state, status, record.error_detail or "")
            return out

        findings = [f.to_dict() for f in detect(page)]
        if depth == 0:
            findings.append(self._finding("site.reachable", "present", value=str(response.status),
                                          url=response.url, snippet=record.title, details=landed or {}))
        record.findings = findings
        reason = None
        if not record.rendered:
            if state.render:
                reason = "source_marked"
            elif depth == 0 and self.settings.getbool("GOVEVIDENCE_AUTO_RENDER") and self._looks_like_script_shell(page):
                reason = "script_shell"
        if reason:
            # The raw capture is kept; what the browser shows is looked at next, and links
            # are followed from there. Until then nothing on the raw HTML counts as absent.
            record.error_detail = "rendered again with a browser: " + _RENDER_NOTES[reason]
            record.findings = self._before_rendering(findings, reason)
            return [record, self.page_request(state, response.url, depth=depth, render_reason=reason,
                                              referer=referer_url)]
        if browser_page is not None and self.screenshots.wanted(depth, findings):
            await self.screenshots.take(browser_page, record, warc.get("record_id"))
        out = [record]
        if response.meta.get("screenshot_only"):
            return out
        if depth == 0 and not record.rendered and self.screenshots.enabled:
            # Home pages are shown as a browser draws them, even when fetched without one.
            out.append(self.page_request(state, response.url, depth=0, render_reason="screenshot", screenshot_only=True))
        if state.kind == "portal":
            out.extend(self._discover(state, page))
        if depth < state.max_depth:
            for url in self._links(page):
                if state.in_scope(url) and state.admit(url):
                    out.append(self.page_request(state, url, depth=depth + 1, referer=response.url))
        return out

    def _judge(self, response: Response, record: PageRecord) -> tuple[str, str | None, Page | None]:
        """(status, detail, parsed page or None) of an answer that reached the spider."""
        code = response.status
        kind = http_status_kind(code)
        body = response.body
        if kind == "refused_redirect":
            return kind, self._refused_redirect(response), None
        if kind == "not_modified":
            return kind, "HTTP 304 Not Modified, although the request sent no validator", None
        if kind == "empty":
            return kind, f"HTTP {code}: no content", None
        truncated = response.meta.get("body_truncated")
        if truncated and kind == "ok":
            return "truncated", f"only part of the body arrived: {truncated}", None
        is_html = self._is_html(response)
        if is_blank(body):
            if kind == "challenge":
                return kind, "HTTP 412 (anti-bot challenge) with no body", None
            return ("empty", f"HTTP {code}: {len(body)} byte(s), no content", None) if kind == "ok" else (
                kind, f"HTTP {code}", None)
        if not is_html:
            if kind == "challenge":
                return kind, f"HTTP 412 (anti-bot challenge), {record.content_type}", None
            return ("not_html", record.content_type, None) if kind == "ok" else (kind, f"HTTP {code}", None)
        binary = binary_kind(body)
        if binary:
            if kind == "ok":
                return "unreadable", f"binary content: {binary}", None
            return ("challenge", "HTTP 412 (anti-bot challenge)", None) if kind == "challenge" else (kind, f"HTTP {code}", None)
        page = Page.from_bytes(response.url, body, content_type=record.content_type, kind=record.source_kind)
        if kind in ("ok", "challenge", "blocked", "server_error", "http_error"):
            why = challenge_reason(body, page)
            if why:
                return "challenge", f"HTTP {code}: {why}", page
        if record.rendered and response.meta.get("render_reason") == "challenge" and kind != "ok":
            # The browser ran the challenge and drew the page; the status is its first answer's.
            kind = "ok"
        if kind == "challenge":
            return kind, "HTTP 412 (anti-bot challenge)", page
        if kind != "ok":
            return kind, f"HTTP {code}", page
        why = unreadable_reason(body, page)
        if why:
            return "unreadable", why, None
        if record.rendered and drew_nothing(page):
            return "empty", "the browser drew an empty page", page
        return "ok", None, page

    @staticmethod
    def _refused_redirect(response: Response) -> str:
        """Why a 3xx reached the spider instead of being followed, naming its Location."""
        code = response.status
        location = response.headers.get(b"Location")
        if location is None:
            return f"HTTP {code} without a Location header"
        shown = location.decode("latin-1").strip()
        target = urljoin(response.url, shown)
        scheme = urlsplit(target).scheme.lower()
        if len(shown) > 200:
            shown = shown[:200] + "…"
        if code not in _FOLLOWED_REDIRECTS:
            why = f"{code} is not a redirect status that is followed"
        elif scheme not in ("http", "https"):
            why = f"the target's scheme {scheme + ':' if scheme else '(none)'} is not HTTP(S)"
        else:
            why = "the redirect was not followed"
        return f"HTTP {code} Location: {shown}: {why}"

    def _render_challenges(self) -> bool:
        return self.settings.getbool("GOVEVIDENCE_RENDER_CHALLENGES", self.settings.getbool("GOVEVIDENCE_AUTO_RENDER"))

    def _landed(self, state: SourceState, final_url: str) -> dict[str, Any] | None:
        """Add the origin a home page landed on to the source's scope; say what was done."""
        landing = origin(final_url)
        if landing == state.site:
            return None
        owners = self.site_owner.get(landing, set())
        if owners and state.target_code not in owners:
            self.logger.info("Home page %s landed on %s, another target's registered site: not crawled",
                             state.url, landing)
            return {"landing_url": final_url, "landing_origin": landing, "crawl_scope": sorted(state.scope),
                    "landing_refused": "another target's registered site"}
        if landing not in state.scope:
            state.scope.add(landing)
            state.landing = landing
            self.logger.info("Home page %s landed on %s: its links are followed too", state.url, landing)
        return {"landing_url": final_url, "landing_origin": landing, "crawl_scope": sorted(state.scope)}

    def _before_rendering(self, findings: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
        """Findings on raw HTML that a browser draws next: what is shown counts, what is not
        shown is not yet an ``absent`` (the rendered capture says)."""
        out = []
        for row in findings:
            if row.get("verdict") == "absent":
                why = f"raw HTML before rendering ({_RENDER_NOTES[reason]})"
                if row.get("checked"):
                    why += f"; searched: {row['checked']}"
                row = {**row, "verdict": "unknown", "checked": why}
            out.append(row)
        return out

    async def page_failed(self, failure: Failure) -> AsyncIterator[Any]:
        request = failure.request
        browser_page = request.meta.pop("playwright_page", None)
        if browser_page is not None:
            await browser_page.close()
        state: SourceState = request.meta["source"]
        depth: int = request.meta["depth_in_source"]
        status, detail = classify_failure(failure)
        record = self._record(request, state, depth)
        record.error_status, record.error_detail = status, detail
        # A request meant for the browser is a rendered capture even when the browser never got
        # it (unavailable, refused): its plain capture is another row.
        record.rendered = bool(request.meta.get("playwright") or request.meta.get("render"))
        record.render_reason = (request.meta.get("render_reason") or "source_marked") if record.rendered else None
        if depth == 0 and not request.meta.get("screenshot_only"):
            # (A home page drawn only for its picture was judged on its plain capture.)
            record.findings = self._could_not_look(state, status, detail)
        self.logger.info("Could not fetch %s (%s): %s", request.url, status, detail)
        yield record

    # --- helpers -----------------------------------------------------------------------
    def _record(self, request: scrapy.Request, state: SourceState, depth: int) -> PageRecord:
        redirects = request.meta.get("redirect_urls") or []
        referer = request.headers.get(b"Referer")
        return PageRecord(
            target_code=state.target_code, source_kind=state.kind, source_url=state.url,
            requested_url=redirects[0] if redirects else request.url, fetched_at=utcnow(), depth=depth,
            referer=referer.decode("latin-1") if referer else None,
        )

    @staticmethod
    def _finding(indicator: str, verdict: str, **fields: Any) -> dict[str, Any]:
        return {"indicator": indicator, "verdict": verdict, "detector_version": DETECTOR_VERSION, **fields}

    def _could_not_look(self, state: SourceState, status: str, detail: str) -> list[dict[str, Any]]:
        """Findings for a source whose home page could not be looked at."""
        if status in DOWN_STATUSES:
            reachable = "absent"
        elif status in BLOCKED_STATUSES or status in NOTHING_SHOWN_STATUSES:
            reachable = "unknown"  # it answered, but showed nothing: not proven down
        else:
            reachable = "present" if status == "not_html" else "unknown"
        why = f"home page {state.url}: {status} ({detail})"
        rows = [self._finding("site.reachable", reachable, value=status, url=state.url, checked=why)]
        for indicator in indicators_for(state.kind):
            if indicator.id not in CRAWL_INDICATORS:
                rows.append(self._finding(indicator.id, "unknown", url=state.url, checked=why))
        return rows

    def _discover(self, state: SourceState, page: Page) -> Iterator[Any]:
        """Record links to the target's other evaluation sources; fetch new sites one hop."""
        crawled_sites = {site for s in self.sources.values() if s.target_code == state.target_code for site in s.scope}
        for found in discover_sources(page):
            url = urldefrag(found.url)[0]
            key = (state.target_code, found.kind, url)
            if key in self.sources:
                continue
            site = origin(url)
            if site in crawled_sites and site not in state.scope:
                continue  # a page of a site this run crawls anyway
            owners = self.site_owner.get(site, set())
            if owners and state.target_code not in owners:
                continue  # another target's registered site
            hop = SourceState(state.target_code, found.kind, url, max_depth=0, max_pages=1,
                              obey_robots=state.obey_robots)
            self.sources[key] = hop
            yield SourceRecord(state.target_code, found.kind, url, found.anchor_text, page.url)
            if site not in state.scope:
                hop.admit(url)
                crawled_sites.add(site)
                yield self.page_request(hop, url, depth=0, referer=page.url)

    @staticmethod
    def _links(page: Page) -> list[str]:
        out: list[str] = []
        base = next(iter(page.tree.xpath("//base/@href")), None)
        base = urljoin(page.url, base.strip()) if base else page.url
        # Frames are the documents a frameset page shows.
        for href in page.tree.xpath("//a/@href | //frame/@src | //iframe/@src"):
            href = href.strip()
            if not href or href.startswith(("javascript:", "mailto:", "tel:", "#")):
                continue
            url = urldefrag(urljoin(base, href))[0]
            if not url.startswith(("http://", "https://")) or url.lower().split("?")[0].endswith(_SKIP_EXTENSIONS):
                continue
            out.append(url)
        return out

    @staticmethod
    def _is_html(response: Response) -> bool:
        content_type = response.headers.get(b"Content-Type", b"").decode("latin-1").lower()
        if "html" in content_type or "xml" in content_type:
            return True
        return not content_type and isinstance(response, TextResponse)

    @staticmethod
    def _title(page: Page) -> str | None:
        titles = page.tree.xpath("//title/text()")
        return " ".join(titles[0].split())[:300] if titles else None

    @staticmethod
    def _looks_like_script_shell(page: Page) -> bool:
        body_text = " ".join(page.tree.xpath("//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::noscript)]"))
        return len(body_text.strip()) < 40 and bool(page.tree.xpath("//script"))
