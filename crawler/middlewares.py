"""Downloader middlewares: browser rendering on request.

The User-Agent is Scrapy's own ``UserAgentMiddleware`` sending ``USER_AGENT``, which
the GovEvidence add-on (``crawler/addon.py``) sets from ``GOVEVIDENCE_CONTACT``.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.useragent import UserAgentMiddleware
from scrapy_playwright.page import PageMethod

from crawler.addon import recording
from crawler.browser import BrowserUnavailable, browser_available

logger = logging.getLogger(__name__)


class ContactUserAgentMiddleware(UserAgentMiddleware):
    """Kept so that settings naming it still work: it is Scrapy's UserAgentMiddleware,
    and the GovEvidence User-Agent is the ``USER_AGENT`` setting (see ``crawler/addon.py``)."""


class RenderMiddleware:
    """Turns ``meta["render"]`` into scrapy-playwright meta.

    Spiders only say *that* a page needs a browser; how it is rendered (waiting for
    the network to go idle so script-inserted widgets exist) is decided here once.
    With screenshots on, the browser page is handed to the callback, which takes the
    pictures and closes it. The browser context identifies itself with
    ``GOVEVIDENCE_BROWSER_USER_AGENT``.

    Without a usable browser (``crawler.browser.browser_available``) the crawl says so
    once at the start, its stats record ``browser: unavailable``, and every request
    that needs the browser fails with ``BrowserUnavailable`` instead of reaching it.
    """

    def __init__(self, keep_page: bool, user_agent: str | None, available: bool = True, reason: str = "",
                 stats: Any = None) -> None:
        self.keep_page = keep_page
        self.stats = stats
        self.user_agent = user_agent
        self.available = available
        self.reason = reason

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RenderMiddleware":
        settings = crawler.settings
        available, reason = browser_available(settings)
        middleware = cls(settings.getbool("GOVEVIDENCE_SCREENSHOTS", True),
                         settings.get("GOVEVIDENCE_BROWSER_USER_AGENT") or settings.get("USER_AGENT"),
                         available, reason, crawler.stats)
        if not available and recording(settings):
            logger.warning("Browser unavailable (%s): pages that need a browser will be recorded as "
                           "browser_unavailable", reason)
        crawler.signals.connect(middleware.spider_opened, signal=signals.spider_opened)
        return middleware

    def spider_opened(self) -> None:
        if self.stats is None:
            return
        self.stats.set_value("browser", "available" if self.available else "unavailable")
        if not self.available:
            self.stats.set_value("browser_unavailable_reason", self.reason)

    def process_request(self, request: Request) -> None:
        if not request.meta.get("render") or request.meta.get("playwright"):
            return
        if not self.available:
            raise BrowserUnavailable(f"browser unavailable: {self.reason}")
        request.meta["playwright"] = True
        request.meta["playwright_include_page"] = self.keep_page
        if self.user_agent:
            request.meta.setdefault("playwright_context_kwargs", {"user_agent": self.user_agent})
        request.meta.setdefault(
            "playwright_page_methods",
            [PageMethod("wait_for_load_state", "networkidle")],
        )
