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
# Only `scrapy crawl` records (database, WARC, screenshots); the project's shell, fetch,
# parse, view, bench, check and runspider are plain Scrapy tools (crawler/commands/).
COMMANDS_MODULE = "crawler.commands"
# Sets USER_AGENT from GOVEVIDENCE_CONTACT, and keeps the browser out of crawls without one.
# With GOVEVIDENCE_REDIS_URL, makes the crawl one worker of a shared run (crawler/distributed.py).
ADDONS = {"crawler.addon.GovEvidenceAddon": 0, "crawler.distributed.DistributedAddon": 10}

# --- politeness -----------------------------------------------------------------
# The User-Agent names the project and a contact; set GOVEVIDENCE_CONTACT (an email
# or URL) so site operators can reach whoever runs the crawl. USER_AGENT is computed from
# it by the add-on (crawler/addon.py); setting USER_AGENT yourself overrides it.
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
    "crawler.middlewares.RenderMiddleware": 560,
    # Last before the download handler: every request, redirect hop and robots.txt fetch.
    "crawler.addresses.AddressPolicyMiddleware": 950,
}
EXTENSIONS = {
    # The run this process records into (crawler/run.py): created, or joined (GOVEVIDENCE_RUN_ID).
    "crawler.run.RunContext": 50,
    "crawler.archive.WarcArchive": 500,
    # Per-source page budgets and seen URLs (crawler/budgets.py), kept out of the requests.
    "crawler.budgets.BudgetStore": 100,
}
# The store behind it: a dotted name of a crawler.budgets.BudgetStore subclass.
GOVEVIDENCE_BUDGET_STORE = "crawler.budgets.MemoryBudgetStore"
# Two requests are one capture only with the same source, URL, rendering and redirect hops:
# the duplicate filter drops no other (crawler/fingerprints.py).
REQUEST_FINGERPRINTER_CLASS = "crawler.fingerprints.CaptureFingerprinter"

# --- several workers on one run (crawler/distributed.py) ----------------------------
# Set, every crawl is a worker of the run GOVEVIDENCE_RUN_ID: scrapy-redis's scheduler and
# duplicate filter, budgets in crawler.budgets.RedisBudgetStore, all on this Redis server.
GOVEVIDENCE_REDIS_URL = os.environ.get("GOVEVIDENCE_REDIS_URL", "")
# Keys are <prefix>:<run id>:…, and expire this many days after the run.
GOVEVIDENCE_REDIS_PREFIX = "govevidence"
GOVEVIDENCE_REDIS_TTL_DAYS = 7
# Each worker writes its requests in progress every HEARTBEAT seconds; one silent for
# HEARTBEAT_TTL seconds is not waited for. All close once nothing has been queued or in
# progress anywhere for IDLE_GRACE seconds.
GOVEVIDENCE_WORKER_HEARTBEAT = 1.0
GOVEVIDENCE_WORKER_HEARTBEAT_TTL = 30.0
GOVEVIDENCE_WORKER_IDLE_GRACE = 6.0
ITEM_PIPELINES = {
    "crawler.pipelines.CapturePipeline": 300,
    "crawler.pipelines.SourcePipeline": 310,
}

# --- where the crawler may connect (crawler/addresses.py) ---------------------------
# Private, loopback, link-local, multicast, reserved, shared (CGNAT), documentation and other
# special addresses are refused, for Scrapy and for the browser, unless listed here (CIDRs,
# a list or a comma-separated string). The loopback sandbox and the tests allow 127.0.0.0/8.
GOVEVIDENCE_ALLOWED_NETWORKS: list[str] = []
# The resolver Twisted connects with refuses those addresses too, so a name cannot be
# re-resolved to one between the middleware's check and the connection.
TWISTED_DNS_RESOLVER = "crawler.addresses.PolicyResolver"

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
        # No connection may bypass the address policy proxy (see PLAYWRIGHT_BROWSER_PROVIDER):
        # WebRTC only over the proxy (no direct UDP), no DNS prefetching.
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--dns-prefetch-disable",
        # Nothing to Google at start: the account check (accounts.google.com/ListAccounts) and
        # the on-device model manifest update (update.googleapis.com) are sent even with the
        # flags above; pointed at reserved names they go nowhere (refused without a lookup).
        "--gaia-url=https://gaia.invalid/",
        "--component-updater=url-source=https://updates.invalid/",
    ],
}
# chromium connects only through a SOCKS5 proxy inside the crawler that checks every
# connection (redirect hops, WebSockets, workers included) against the address policy.
PLAYWRIGHT_BROWSER_PROVIDER = "crawler.addresses.GuardedBrowserProvider"
# It also blocks service workers, which fetch outside request interception. And every
# intercepted request whose address is refused is aborted (only those).
PLAYWRIGHT_ABORT_REQUEST = "crawler.addresses.abort_refused_request"
PLAYWRIGHT_MAX_CONTEXTS = 1
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000

# --- provenance and anchoring -------------------------------------------------------
# Every HTTPS capture records the TLS version, the SHA-256 of the certificate chain presented
# and whether it validated (crawler/tls.py); sites with bad certificates are still collected.
DOWNLOADER_CLIENTCONTEXTFACTORY = "crawler.tls.TlsFactsContextFactory"
# Extra trusted roots (PEM) next to the system store, for validating certificates.
GOVEVIDENCE_CA_BUNDLE = os.environ.get("GOVEVIDENCE_CA_BUNDLE", "")
# RFC 3161 time-stamping authority that witnesses each sealed run (empty: none), and the
# PEM file of its certificate chain used by `govevidence verify` to check the tokens.
GOVEVIDENCE_TSA_URL = os.environ.get("GOVEVIDENCE_TSA_URL", "")
GOVEVIDENCE_TSA_CA_FILE = os.environ.get("GOVEVIDENCE_TSA_CA_FILE", "")
GOVEVIDENCE_TSA_TIMEOUT = 10
# --- judging and the end of a run (the application's steps; crawler/ never imports them) ---
# Told the ids of each batch of stored captures and closed at the end of the crawl
# (crawler/run.py): govevidence.judging.CrawlJudges makes their findings from the stored bytes
# in GOVEVIDENCE_JUDGE_WORKERS processes beside the crawl (0: in the crawl process).
GOVEVIDENCE_CAPTURE_HANDLERS = ["govevidence.judging.CrawlJudges"]
GOVEVIDENCE_JUDGE_WORKERS = 1
# Niceness of the judging processes: on busy cores the crawl keeps its pace and the judges
# take the time left over (what remains is judged when the crawl ends). 0: same priority.
GOVEVIDENCE_JUDGE_NICE = 10
# Join a run several crawl workers share (made by `govevidence run open --workers N`).
GOVEVIDENCE_RUN_ID = ""
# Called in order by the pipeline once the last captures are written and the WARC files are
# closed, each as finisher(session_factory, run_id, archive_root, settings, reason=…, stats=…)
# (dotted names, loaded with Scrapy's load_object). govevidence.seal.finish_run rolls the page
# findings up, closes the run's row, writes the manifest and, with GOVEVIDENCE_TSA_URL,
# time-stamps it. With none (or when one fails) the run is closed unsealed;
# `govevidence seal RUN` seals it later.
GOVEVIDENCE_RUN_FINISHERS = ["govevidence.seal.finish_run"]
# The module whose user_message / one_line / hide_passwords turn an error of input or
# environment into the one line `scrapy crawl` prints (crawler/commands/crawl.py).
GOVEVIDENCE_ERRORS_MODULE = "govevidence.errors"

# A kill loses at most this many seconds of captures and WARC index rows.
GOVEVIDENCE_DB_FLUSH_INTERVAL = 1.0
GOVEVIDENCE_INDEX_FLUSH_INTERVAL = 1.0

LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
