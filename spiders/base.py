"""Base spider for evaluation targets: crawl each source, discover, record.

A spider subclass only says which targets it covers (``level``). For every selected
target it crawls each registered source within its own site to a bounded depth and
page budget, records every fetch (successful or not) as a ``PageRecord`` (its findings are
made from the stored capture by the judging step, ``govevidence.judging``), and follows the
portal's links to the target's other evaluation sources one hop, recording those as
``SourceRecord``s.

A source's crawl scope is its registered origin plus the origin its home page finally
lands on after redirects (``http://`` to ``https://``, bare domain to ``www.``, a moved
host), unless that origin is another target's registered site. Answers that hold nothing
to look at (empty, unreadable, a refused redirect, an unsolicited 304, an anti-bot
challenge) get their own recorded status and never feed an ``absent``.

Requests carry only plain data (the source's key, the depth, why a browser draws the page),
so they can be pickled to a disk queue. How each source is crawled is kept here, keyed by
that key (``SourceConfig``, ``spiders/sources.py``); its page budget and the URLs it has taken
are kept by the crawl's ``crawler.budgets.BudgetStore``. What a fetch is recorded as is built
in ``spiders/capture.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import urldefrag, urljoin

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.linkextractors import IGNORED_EXTENSIONS
from twisted.python.failure import Failure

from crawler.budgets import BudgetStore, SourceKey, site_of
from crawler.errors import classify_failure
from crawler.items import SourceRecord
from crawler.run import RunContext, sources_found
from crawler.screenshots import Screenshotter
from evidence import DiscoveredSource, Page, discover_sources
from evidence.content import compressed_stream_problem
from evidence.judgement import PageFacts, RenderPolicy, judge, page_title
from govevidence.registry import RegistryError, TargetEntry, load_registry
from spiders.capture import answer_of, answered_record, new_record
from spiders.sources import SourceConfig

_SKIP_EXTENSIONS = tuple(f".{ext}" for ext in IGNORED_EXTENSIONS)


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
        # How each source is crawled, as far as this process has met it; the crawl's BudgetStore
        # holds every source of the run (registered by any process) and their scopes.
        self.sources: dict[SourceKey, SourceConfig] = {}
        self._joined: dict[Any, str | None] = {}  # link as written → absolute URL (``_links``)
        self.registry_keys: set[SourceKey] = {(t.code, e.kind, e.url) for t in self.targets for e in t.sources}
        # Sites the registry gives to a target: a city portal linking to its province's
        # platform has not discovered a source of the city.
        self.site_owner: dict[str, set[str]] = {}
        for target in self.registry.targets:
            for entry in target.sources:
                self.site_owner.setdefault(site_of(entry.url), set()).add(target.code)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> "TargetSpider":
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._check_compressed, signal=signals.response_downloaded)
        crawler.signals.connect(spider.sources_found, signal=sources_found)
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

    @cached_property
    def _judging_discovers(self) -> bool:
        """Whether the judging of the stored pages finds the linked sources (it parses them
        anyway), so the crawl does not: it records and fetches what it is told."""
        context = self.crawler.get_extension(RunContext)
        return context is not None and context.reports_sources

    @cached_property
    def budgets(self) -> BudgetStore:
        """The crawl's page budgets and seen URLs per source (an extension)."""
        store = self.crawler.get_extension(BudgetStore)
        if store is None:
            raise RuntimeError("no crawler.budgets.BudgetStore in EXTENSIONS: sources have no page budget")
        return store

    def _add_source(self, source: SourceConfig) -> bool:
        """Register a source with its budget and config; True when it is new to the run
        (another process may have registered it first: its stored config is the one used)."""
        new = self.budgets.register(source.key, source.max_pages, source.shared())
        stored = None if new else self.budgets.config(source.key)
        self.sources[source.key] = SourceConfig.from_shared(stored) if stored else source
        return new

    def _source(self, meta: dict[str, Any]) -> SourceConfig:
        """The source a request was made for, with its crawl scope as the store has it now
        (another process may have widened it)."""
        key: SourceKey = tuple(meta["source"])  # type: ignore[assignment]
        state = self.sources.get(key)
        if state is None:
            config = self.budgets.config(key)
            if config is None:
                raise KeyError(f"source not registered in this run: {key!r}")
            state = self.sources[key] = SourceConfig.from_shared(config)
        state.scope = {state.site, *self.budgets.scope(key)}
        return state

    # --- scheduling --------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        settings = self.settings
        for target in self.targets:
            for entry in target.sources:
                depth = settings.getint(
                    "GOVEVIDENCE_PORTAL_MAX_DEPTH" if entry.kind == "portal" else "GOVEVIDENCE_SOURCE_MAX_DEPTH"
                )
                source = SourceConfig(
                    target.code, entry.kind, entry.url, max_depth=depth,
                    max_pages=settings.getint("GOVEVIDENCE_MAX_PAGES_PER_SOURCE"),
                    render=entry.render, obey_robots=entry.obey_robots,
                )
                self._add_source(source)
                # Only the process that reserves the home page fetches it: workers sharing a
                # run all read the registry, and each start page is scheduled once.
                if self.budgets.admit(source.key, entry.url):
                    yield self.page_request(source, entry.url, depth=0)

    def page_request(self, state: SourceConfig, url: str, *, depth: int, referer: str | None = None,
                     render_reason: str | None = None, screenshot_only: bool = False) -> scrapy.Request:
        """A page of a source. Pages are fetched over plain HTTP first, so the archive
        holds the server's response; those that need a browser are then rendered
        (``render_reason`` says why, one of ``vocabulary.RENDER_REASONS``). Its meta is plain,
        picklable data: the source is named by its key."""
        meta = {
            "source": state.key,
            "depth_in_source": depth,
            "render": render_reason is not None,
            "render_reason": render_reason,
            "dont_obey_robotstxt": not state.obey_robots,
            "screenshot_only": screenshot_only,
        }
        headers = {"Referer": referer} if referer else None
        # The budget is spent once, by BudgetStore.admit, before a page is asked for. The
        # duplicate filter (shared by the workers of a run) drops a request only when it is a
        # capture already made: same source, URL, rendering and redirect hops
        # (crawler/fingerprints.py); redirect hops and retries of a request still reach its
        # callback or errback.
        return scrapy.Request(url, callback=self.parse_page, errback=self.page_failed, meta=meta,
                              headers=headers, priority=-depth)

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
        state = self._source(response.meta)
        depth: int = response.meta["depth_in_source"]
        record = answered_record(response, new_record(response.request, state, depth))
        referer = response.request.headers.get(b"Referer")
        referer_url = referer.decode("latin-1") if referer else None
        landed = self._landed(state, response.url) if depth == 0 else None
        if response.url != response.request.url or response.meta.get("redirect_urls"):
            # Where a redirect led is a page of the budget already seen: links back to it
            # (an inner page's "home" link to the landing URL) do not fetch it again.
            self.budgets.mark_seen(state.key, response.url)
        answer = answer_of(response, record)
        facts = PageFacts(source_kind=state.kind, source_url=state.url, depth=depth,
                          screenshot_only=bool(response.meta.get("screenshot_only")), landed=landed)
        # What only this moment can tell is kept with the capture for its judging.
        observations: dict[str, Any] = {}
        if landed:
            observations["landed"] = landed
        if state.render and not record.rendered:
            observations["source_marked"] = True
        record.observations = observations or None
        # The findings are made from the stored capture by the judging step; the detectors run
        # here only on a live browser page whose evidence elements are to be pictured.
        picture = browser_page is not None and self.screenshots.enabled
        result = judge(answer, facts, self._render_policy(state), now=record.fetched_at, findings=picture)
        status, page, findings = result.status, result.page, result.findings
        record.error_status, record.error_detail = status, result.detail
        if page is not None and status in ("ok", "challenge"):
            record.encoding = page.encoding
            record.title = page_title(page)
        if status != "ok":
            out: list[Any] = [record]
            if result.render_next == "challenge":
                out.append(self.page_request(state, response.url, depth=depth, render_reason="challenge",
                                             referer=referer_url, screenshot_only=bool(response.meta.get("screenshot_only"))))
            return out
        if result.render_next:
            # The raw capture is kept; what the browser shows is looked at next, and links
            # are followed from there.
            return [record, self.page_request(state, response.url, depth=depth, render_reason=result.render_next,
                                              referer=referer_url)]
        if picture and self.screenshots.wanted(depth, findings):
            pictures = await self.screenshots.take(browser_page, record, findings, record.warc_record_id)
            if pictures:
                record.observations = {**(record.observations or {}), "pictures": pictures}
        out = [record]
        if response.meta.get("screenshot_only"):
            return out
        if depth == 0 and not record.rendered and self.screenshots.enabled:
            # Home pages are shown as a browser draws them, even when fetched without one.
            out.append(self.page_request(state, response.url, depth=0, render_reason="screenshot", screenshot_only=True))
        if state.kind == "portal" and not self._judging_discovers:
            out.extend(self._discover(state, page.url, discover_sources(page)))
        if depth < state.max_depth:
            for url in self._links(page):
                if state.in_scope(url) and self.budgets.admit(state.key, url):
                    out.append(self.page_request(state, url, depth=depth + 1, referer=response.url))
        return out

    def _render_policy(self, state: SourceConfig) -> RenderPolicy:
        auto = self.settings.getbool("GOVEVIDENCE_AUTO_RENDER")
        return RenderPolicy(source_marked=state.render, auto_render=auto,
                            render_challenges=self.settings.getbool("GOVEVIDENCE_RENDER_CHALLENGES", auto))

    def _landed(self, state: SourceConfig, final_url: str) -> dict[str, Any] | None:
        """Add the origin a home page landed on to the source's scope; say what was done."""
        landing = site_of(final_url)
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
            # Shared: the source's other pages may be parsed by another process.
            if self.budgets.add_scope(state.key, landing):
                self.logger.info("Home page %s landed on %s: its links are followed too", state.url, landing)
        return {"landing_url": final_url, "landing_origin": landing, "crawl_scope": sorted(state.scope)}

    async def page_failed(self, failure: Failure) -> AsyncIterator[Any]:
        request = failure.request
        browser_page = request.meta.pop("playwright_page", None)
        if browser_page is not None:
            await browser_page.close()
        state = self._source(request.meta)
        depth: int = request.meta["depth_in_source"]
        status, detail = classify_failure(failure)
        record = new_record(request, state, depth)
        record.error_status, record.error_detail = status, detail
        # A request meant for the browser is a rendered capture even when the browser never got
        # it (unavailable, refused): its plain capture is another row.
        record.rendered = bool(request.meta.get("playwright") or request.meta.get("render"))
        record.render_reason = (request.meta.get("render_reason") or "source_marked") if record.rendered else None
        self.logger.info("Could not fetch %s (%s): %s", request.url, status, detail)
        yield record

    # --- helpers -----------------------------------------------------------------------
    def _discover(self, state: SourceConfig, page_url: str, links: Iterable[DiscoveredSource]) -> Iterator[Any]:
        """Record links to the target's other evaluation sources; fetch new sites one hop."""
        crawled_sites = self.budgets.target_sites(state.target_code)  # by every process of the run
        for found in links:
            url = urldefrag(found.url)[0]
            key = (state.target_code, found.kind, url)
            if key in self.registry_keys or key in self.sources:
                continue
            site = site_of(url)
            if site in crawled_sites and site not in state.scope:
                continue  # a page of a site this run crawls anyway
            owners = self.site_owner.get(site, set())
            if owners and state.target_code not in owners:
                continue  # another target's registered site
            hop = SourceConfig(state.target_code, found.kind, url, max_depth=0, max_pages=1,
                               obey_robots=state.obey_robots)
            if not self._add_source(hop):
                continue  # found first on another page, maybe by another process
            yield SourceRecord(state.target_code, found.kind, url, found.anchor_text, page_url)
            if site not in state.scope and self.budgets.admit(hop.key, url):
                crawled_sites.add(site)
                yield self.page_request(hop, url, depth=0, referer=page_url)

    def sources_found(self, found: list[dict[str, Any]], fetch: bool = True) -> None:
        """The sources the judging found linked on stored portal pages (``crawler.run.sources_found``):
        recorded, and their new sites fetched while the crawl goes on."""
        context = self.crawler.get_extension(RunContext)
        by_page: dict[tuple[SourceKey, str], list[DiscoveredSource]] = {}
        for row in found:
            key: SourceKey = tuple(row["source"])  # type: ignore[assignment]
            by_page.setdefault((key, row["page_url"]), []).append(
                DiscoveredSource(kind=row["kind"], url=row["url"], anchor_text=row.get("anchor_text") or "",
                                 locator=row.get("locator") or ""))
        for (key, page_url), links in by_page.items():
            state = self._source({"source": key})
            for out in self._discover(state, page_url, links):
                if isinstance(out, SourceRecord):
                    context.record_source(out)
                elif fetch:
                    self.crawler.engine.crawl(out)
                else:  # the crawl is closing: the hop is not fetched, and not counted as taken
                    self.logger.info("Found %s on %s as the crawl closed: recorded, not fetched", out.url, page_url)

    def _links(self, page: Page) -> list[str]:
        out: list[str] = []
        base = next(iter(page.tree.xpath("//base/@href")), None)
        base = urljoin(page.url, base.strip()) if base else page.url
        base_origin = site_of(base)
        joined = self._joined
        if len(joined) > 100_000:
            joined.clear()
        # Frames are the documents a frameset page shows.
        for href in page.tree.xpath("//a/@href | //frame/@src | //iframe/@src"):
            href = href.strip()
            if not href or href.startswith(("javascript:", "mailto:", "tel:", "#")):
                continue
            # Absolute and root-relative links (menus, footers: most of a page's links, the
            # same on every page) are joined once per crawl; the others depend on the page.
            if href.startswith(("http://", "https://")):
                cache_key: Any = href
            elif href.startswith("/") and not href.startswith("//"):
                cache_key = (base_origin, href)
            else:
                cache_key = None
            url = joined.get(cache_key, False) if cache_key is not None else False
            if url is False:
                url = urldefrag(urljoin(base, href))[0]
                if not url.startswith(("http://", "https://")) or url.lower().split("?")[0].endswith(_SKIP_EXTENSIONS):
                    url = None
                if cache_key is not None:
                    joined[cache_key] = url
            if url is not None:
                out.append(url)
        return out
