"""Base spider for evaluation targets: crawl each source, detect, discover, record.

A spider subclass only says which targets it covers (``level``). For every selected
target it crawls each registered source within its own site to a bounded depth and
page budget, records every fetch (successful or not) as a ``PageRecord`` carrying the
detectors' findings, and follows the portal's links to the target's other evaluation
sources one hop, recording those as ``SourceRecord``s.
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
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import IGNORED_EXTENSIONS
from twisted.python.failure import Failure
from w3lib.url import canonicalize_url

from crawler.errors import BLOCKED_STATUSES, DOWN_STATUSES, classify_failure, http_status_kind
from crawler.items import PageRecord, SourceRecord
from crawler.screenshots import Screenshotter
from evidence import DETECTOR_VERSION, Page, detect, discover_sources, indicators_for
from govevidence.registry import RegistryError, TargetEntry, load_registry

_SKIP_EXTENSIONS = tuple(f".{ext}" for ext in IGNORED_EXTENSIONS)
# Indicators the crawl itself decides, not the page detectors.
CRAWL_INDICATORS = ("site.reachable", "site.broken_links")


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

    @property
    def site(self) -> str:
        return origin(self.url)

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
                     render: bool = False, screenshot_only: bool = False) -> scrapy.Request:
        """A page of a source. Pages are fetched over plain HTTP first, so the archive
        holds the server's response; those that need a browser are then rendered."""
        meta = {
            "source": state,
            "depth_in_source": depth,
            "render": render,
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
        # SHA-256 of the body as archived (as received, or the rendered DOM).
        record.sha256 = warc.get("payload_sha256") or hashlib.sha256(response.body).hexdigest()
        record.rendered = "playwright" in response.flags or bool(response.meta.get("playwright"))
        record.error_status = http_status_kind(response.status)
        if record.error_status != "ok" or not self._is_html(response):
            if record.error_status == "ok":
                record.error_status, record.error_detail = "not_html", record.content_type
            else:
                record.error_detail = f"HTTP {response.status}"
            if depth == 0:
                record.findings = self._could_not_look(state, record.error_status, record.error_detail or "")
            return [record]

        page = Page.from_bytes(response.url, response.body, content_type=record.content_type, kind=state.kind)
        record.encoding = page.encoding
        record.title = self._title(page)
        findings = [f.to_dict() for f in detect(page)]
        if depth == 0:
            findings.append(self._finding("site.reachable", "present", value=str(response.status),
                                          url=response.url, snippet=record.title))
        record.findings = findings
        referer = response.request.headers.get(b"Referer")
        if not record.rendered and (state.render or (
                depth == 0 and self.settings.getbool("GOVEVIDENCE_AUTO_RENDER") and self._looks_like_script_shell(page))):
            # The raw capture is kept; what the browser shows is looked at next, and
            # links are followed from there.
            record.error_detail = "rendered again with a browser: " + (
                "source marked render" if state.render else "page is a script shell")
            return [record, self.page_request(state, response.url, depth=depth, render=True,
                                              referer=referer.decode("latin-1") if referer else None)]
        if browser_page is not None and self.screenshots.wanted(depth, findings):
            await self.screenshots.take(browser_page, record, warc.get("record_id"))
        out: list[Any] = [record]
        if response.meta.get("screenshot_only"):
            return out
        if depth == 0 and not record.rendered and self.screenshots.enabled:
            # Home pages are shown as a browser draws them, even when fetched without one.
            out.append(self.page_request(state, response.url, depth=0, render=True, screenshot_only=True))
        if state.kind == "portal":
            out.extend(self._discover(state, page))
        if depth < state.max_depth:
            for url in self._links(page):
                if origin(url) == state.site and state.admit(url):
                    out.append(self.page_request(state, url, depth=depth + 1, referer=response.url))
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
        record.rendered = bool(request.meta.get("playwright"))
        if depth == 0:
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
        elif status in BLOCKED_STATUSES:
            reachable = "unknown"
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
        crawled_sites = {s.site for s in self.sources.values() if s.target_code == state.target_code}
        for found in discover_sources(page):
            url = urldefrag(found.url)[0]
            key = (state.target_code, found.kind, url)
            if key in self.sources:
                continue
            site = origin(url)
            if site in crawled_sites and site != state.site:
                continue  # a page of a site this run crawls anyway
            owners = self.site_owner.get(site, set())
            if owners and state.target_code not in owners:
                continue  # another target's registered site
            hop = SourceState(state.target_code, found.kind, url, max_depth=0, max_pages=1,
                              obey_robots=state.obey_robots)
            self.sources[key] = hop
            yield SourceRecord(state.target_code, found.kind, url, found.anchor_text, page.url)
            if site != state.site:
                hop.admit(url)
                crawled_sites.add(site)
                yield self.page_request(hop, url, depth=0, referer=page.url)

    @staticmethod
    def _links(page: Page) -> list[str]:
        out: list[str] = []
        base = next(iter(page.tree.xpath("//base/@href")), None)
        base = urljoin(page.url, base.strip()) if base else page.url
        for href in page.tree.xpath("//a/@href"):
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
