"""Scrapy settings of GovEvidence. Polite by default; every value can be overridden with ``-s``."""

from __future__ import annotations

import os
import shutil

# Scrapy's cookie handling asks tldextract for the Public Suffix List, which it would download
# on first use; the crawler contacts no host but the sites it evaluates, so tldextract uses the
# snapshot it ships with. Read when Scrapy's cookies middleware is imported, after this module.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

BOT_NAME = "govevidence"
SPIDER_MODULES = ["spiders"]
NEWSPIDER_MODULE = "spiders"

# --- politeness -----------------------------------------------------------------
# The User-Agent names the project and a contact; set GOVEVIDENCE_CONTACT (an email
# or URL) so site operators can reach whoever runs the crawl.
GOVEVIDENCE_CONTACT = os.environ.get("GOVEVIDENCE_CONTACT", "")
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0

# --- robustness against bad sites -------------------------------------------------
DOWNLOAD_TIMEOUT = 30
RETRY_TIMES = 2
REDIRECT_MAX_TIMES = 10
DOWNLOAD_MAXSIZE = 20 * 1024 * 1024
DOWNLOAD_WARNSIZE = 5 * 1024 * 1024
URLLENGTH_LIMIT = 1000
# Every HTTP answer reaches the spider, so 404s and 500s are recorded, not dropped.
HTTPERROR_ALLOW_ALL = True

# --- crawl bounds (per evaluation source) -----------------------------------------
GOVEVIDENCE_PORTAL_MAX_DEPTH = 2
GOVEVIDENCE_SOURCE_MAX_DEPTH = 1
GOVEVIDENCE_MAX_PAGES_PER_SOURCE = 60
# Re-fetch a page with the browser when its raw HTML looks like an empty JavaScript shell.
GOVEVIDENCE_AUTO_RENDER = True

# --- storage ----------------------------------------------------------------------
# Empty means DATABASE_URL from the environment, else SQLite in GOVEVIDENCE_DATA_DIR.
DATABASE_URL = os.environ.get("DATABASE_URL", "")

# --- archiving and screenshots ------------------------------------------------------
GOVEVIDENCE_WARC_ENABLED = True
GOVEVIDENCE_WARC_MAX_SIZE = 1024**3  # rotate WARC files past 1 GiB
GOVEVIDENCE_SCREENSHOTS = True  # full page + evidence elements of rendered pages; home pages always
# Empty means the data folder (GOVEVIDENCE_DATA_DIR).
GOVEVIDENCE_ARCHIVE_DIR = ""

# --- components -------------------------------------------------------------------
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": None,
    "crawler.middlewares.ContactUserAgentMiddleware": 500,
    "crawler.middlewares.RenderMiddleware": 560,
}
EXTENSIONS = {
    "crawler.archive.WarcArchive": 500,
}
ITEM_PIPELINES = {
    "crawler.pipelines.EvidencePipeline": 300,
}

# Both let whoever reaches them run code inside the crawler.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

# --- browser rendering (only for requests that ask for it) -------------------------
DOWNLOAD_HANDLERS = {
    "http": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
    "https": "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler",
}
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
PLAYWRIGHT_BROWSER_TYPE = "chromium"
# Debian's chromium; Playwright's own browser downloads are not used.
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "executable_path": os.environ.get("GOVEVIDENCE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium",
    "headless": True,
    "args": [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ],
}
PLAYWRIGHT_MAX_CONTEXTS = 1
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
