"""Whether pages can be drawn by a browser in this crawl, and the error when they cannot.

``browser_available(settings)`` answers without launching anything: the browser's
download handler (scrapy-playwright) must be enabled and the chromium it would start
(``PLAYWRIGHT_LAUNCH_OPTIONS["executable_path"]``, from ``GOVEVIDENCE_CHROMIUM`` or
``chromium`` on ``PATH``) must be an executable file. When it is not, the render
middleware refuses every request that needs the browser with ``BrowserUnavailable``,
which ``crawler.errors`` records as the status ``browser_unavailable``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.misc import load_object

PLAYWRIGHT_HANDLER = "scrapy_playwright.handler.ScrapyPlaywrightDownloadHandler"


class BrowserUnavailable(IgnoreRequest):
    """A request that needs a browser, in a crawl that has none."""


def is_browser_handler(path: Any) -> bool:
    if not path:
        return False
    if path == PLAYWRIGHT_HANDLER:
        return True
    try:
        handler = load_object(path) if isinstance(path, str) else path
        base = load_object(PLAYWRIGHT_HANDLER)
    except (ImportError, NameError, ValueError):
        return False
    return isinstance(handler, type) and issubclass(handler, base)


def executable_problem(settings: Any) -> str | None:
    """Why the configured chromium cannot be started, or None when it can be."""
    if settings.get("PLAYWRIGHT_CDP_URL") or settings.get("PLAYWRIGHT_CONNECT_URL"):
        return None  # a remote browser: nothing to check here
    options = settings.getdict("PLAYWRIGHT_LAUNCH_OPTIONS") or {}
    path = options.get("executable_path")
    if not path:
        return None  # Playwright's own browser build
    path = str(path)
    resolved = path if os.sep in path else shutil.which(path)
    if not resolved or not os.path.isfile(resolved) or not os.access(resolved, os.X_OK):
        return f"chromium not found at {path}"
    return None


def browser_available(settings: Any) -> tuple[bool, str]:
    """(True, "") when pages can be rendered in this crawl, else (False, the reason)."""
    problem = executable_problem(settings)
    if problem:
        return False, problem
    handlers = settings.getwithbase("DOWNLOAD_HANDLERS")
    if not any(is_browser_handler(handlers.get(scheme)) for scheme in ("http", "https")):
        return False, "no browser download handler is enabled"
    return True, ""
