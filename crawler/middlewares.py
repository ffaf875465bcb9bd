"""Downloader middlewares: an honest User-Agent and browser rendering on request."""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy_playwright.page import PageMethod

import govevidence

PROJECT_URL = "https://github.com/govevidence/govevidence"


class ContactUserAgentMiddleware:
    """Sends ``GovEvidence/<version> (+<project>; contact: <GOVEVIDENCE_CONTACT>)``.

    An explicit ``USER_AGENT`` that is not Scrapy's default wins, so operators can
    still set their own.
    """

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "ContactUserAgentMiddleware":
        settings = crawler.settings
        configured = settings.get("USER_AGENT") or ""
        if configured and not configured.startswith("Scrapy/"):
            return cls(configured)
        contact = settings.get("GOVEVIDENCE_CONTACT") or "not set"
        agent = (
            f"GovEvidence/{govevidence.__version__} (+{PROJECT_URL}; "
            f"government website evaluation evidence collector; contact: {contact})"
        )
        return cls(agent)

    def process_request(self, request: Request) -> None:
        request.headers.setdefault(b"User-Agent", self.user_agent)


class RenderMiddleware:
    """Turns ``meta["render"]`` into scrapy-playwright meta.

    Spiders only say *that* a page needs a browser; how it is rendered (waiting for
    the network to go idle so script-inserted widgets exist) is decided here once.
    With screenshots on, the browser page is handed to the callback, which takes the
    pictures and closes it.
    """

    def __init__(self, keep_page: bool) -> None:
        self.keep_page = keep_page

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "RenderMiddleware":
        return cls(crawler.settings.getbool("GOVEVIDENCE_SCREENSHOTS", True))

    def process_request(self, request: Request) -> None:
        if not request.meta.get("render") or request.meta.get("playwright"):
            return
        request.meta["playwright"] = True
        request.meta["playwright_include_page"] = self.keep_page
        request.meta.setdefault(
            "playwright_page_methods",
            [PageMethod("wait_for_load_state", "networkidle")],
        )
