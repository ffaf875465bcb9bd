"""The GovEvidence add-on (``ADDONS``): settings that depend on other settings.

Scrapy calls ``update_settings`` for every crawl, after ``-s`` options and spider
settings are in and before the settings freeze. This is the one place that

- computes the User-Agent, ``GovEvidence/<version> (+<project>; …; contact: <GOVEVIDENCE_CONTACT>)``,
  and sets ``USER_AGENT`` to it, so Scrapy's UserAgentMiddleware, robots.txt matching, the
  WARC ``warcinfo`` record and the run's recorded settings all say the same;
  ``GOVEVIDENCE_BROWSER_USER_AGENT`` (what the browser sends and shows to scripts on
  rendered pages) follows it. An explicit ``USER_AGENT`` (``-s`` or a project setting) wins:
  the add-on sets its value at add-on priority.
- keeps the browser's download handler out of crawls that cannot or need not use it:
  commands that do not record (``scrapy shell``, ``fetch``, ``parse`` …, see
  ``crawler/commands``) and crawls whose chromium is missing get Scrapy's own HTTP(S)
  handlers, so no Playwright driver is started for nothing.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from functools import cache

from scrapy.crawler import Crawler
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.settings import BaseSettings

from crawler.browser import executable_problem, is_browser_handler

PROJECT_URL = "https://github.com/govevidence/govevidence"


@cache
def software_version() -> str:
    """The installed GovEvidence distribution's version (read from its metadata, so the
    plumbing never imports the application for it)."""
    try:
        return importlib.metadata.version("govevidence")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def user_agent(contact: str | None) -> str:
    """The User-Agent GovEvidence identifies itself with."""
    return (
        f"GovEvidence/{software_version()} (+{PROJECT_URL}; "
        f"government website evaluation evidence collector; contact: {contact or 'not set'})"
    )


def recording(settings: BaseSettings) -> bool:
    """Whether this crawl records (database, WARC, screenshots): only ``scrapy crawl`` does."""
    return settings.getbool("GOVEVIDENCE_RECORD", True)


class GovEvidenceAddon:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "GovEvidenceAddon":
        return cls(crawler)

    def update_settings(self, settings: BaseSettings) -> None:
        if settings.get("DOWNLOADER_CLIENTCONTEXTFACTORY") not in (None, "SENTINEL"):
            # Scrapy 2.19 deprecates the setting but offers no other way for the HTTP/1.1
            # handler to report a TLS handshake (crawler/tls.py); one line per crawl saying so
            # would be noise in every log and on every error.
            warnings.filterwarnings("ignore", message="The 'DOWNLOADER_CLIENTCONTEXTFACTORY' setting is deprecated",
                                    category=ScrapyDeprecationWarning)
        settings.set("USER_AGENT", user_agent(settings.get("GOVEVIDENCE_CONTACT")), priority="addon")
        settings.set("GOVEVIDENCE_BROWSER_USER_AGENT", settings.get("USER_AGENT"), priority="addon")
        if not recording(settings) or executable_problem(settings):
            handlers = settings["DOWNLOAD_HANDLERS"]
            for scheme in ("http", "https"):
                if is_browser_handler(handlers.get(scheme)):
                    # Falls back to DOWNLOAD_HANDLERS_BASE, Scrapy's own handler.
                    handlers.delete(scheme, priority=handlers.getpriority(scheme))
