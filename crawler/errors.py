"""Turn download failures and HTTP answers into the recorded statuses.

Statuses: ``ok``, ``timeout``, ``unreachable``, ``dns_error``, ``blocked`` (HTTP 401/403/429/451),
``blocked_by_robots``, ``http_error`` (other 4xx), ``server_error`` (5xx), ``redirect_loop``,
``too_large``, ``not_html``, ``error`` (anything else, with its detail), and the answers that
came back but hold nothing to look at:

- ``empty``: no body, or only whitespace (HTTP 204 and 205 included);
- ``not_modified``: HTTP 304 although the request asked for no validation;
- ``refused_redirect``: a 3xx that was not followed (no ``Location``, a target that is not
  HTTP(S), a status redirects do not use); the detail names the ``Location`` and why;
- ``unreadable``: bytes that are not a readable document (see ``crawler.content``);
- ``truncated``: only part of the body arrived (a compressed stream cut short, or the
  connection ended before the announced length);
- ``challenge``: an anti-bot challenge (HTTP 412, or a script-only page that sets a cookie
  and reloads) instead of the page.

Pages with any status other than ``ok`` never feed an ``absent``: on a home page every
indicator is ``unknown``.
"""

from __future__ import annotations

from scrapy import exceptions as scrapy_exc
from scrapy.exceptions import IgnoreRequest
from twisted.internet import error as neterror
from twisted.internet.defer import CancelledError
from twisted.internet.defer import TimeoutError as DeferTimeoutError
from twisted.python.failure import Failure
from twisted.web import http as _http
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from crawler.addresses import RefusedAddress
from crawler.browser import BrowserUnavailable

# Statuses meaning the site did not serve us at all from here: the site counts as
# not reachable, and everything else about it is unknown.
DOWN_STATUSES = frozenset({"timeout", "unreachable", "dns_error", "server_error", "http_error"})
# Statuses meaning we were not allowed to look: nothing can be said, not even reachability.
BLOCKED_STATUSES = frozenset({"blocked", "blocked_by_robots", "challenge"})
# Statuses meaning the site answered, but with nothing a visitor could read: the site is not
# proven down (reachability is unknown) and nothing can be said about its content.
NOTHING_SHOWN_STATUSES = frozenset({"empty", "not_modified", "refused_redirect", "unreadable", "truncated"})

# Scrapy >= 2.15 wraps transport errors in its own exception types; older
# releases raise Twisted's. Both are listed so the status does not depend on it.
def _scrapy(*names: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(scrapy_exc, n) for n in names if hasattr(scrapy_exc, n))


_TIMEOUTS = _scrapy("DownloadTimeoutError") + (DeferTimeoutError, neterror.TimeoutError, neterror.TCPTimedOutError, TimeoutError)
_UNREACHABLE = _scrapy("DownloadConnectionRefusedError", "DownloadFailedError", "ResponseDataLossError") + (
    neterror.ConnectionRefusedError,
    neterror.ConnectError,
    neterror.ConnectionLost,
    neterror.ConnectionDone,
    neterror.NoRouteError,
    ResponseFailed,
    ResponseNeverReceived,
    ConnectionError,
)


def _lost_body(failure: Failure) -> bool:
    """Headers arrived, the body was cut (Scrapy's data-loss error or Twisted's _DataLoss)."""
    if failure.check(*_scrapy("ResponseDataLossError")):
        return True
    reasons = getattr(failure.value, "reasons", None) or []
    return any(isinstance(r, Failure) and r.check(_http._DataLoss) for r in reasons)


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


def classify_failure(failure: Failure) -> tuple[str, str]:
    """Map a request failure to (status, human-readable detail)."""
    exc = failure.value
    detail = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, IgnoreRequest):
        if isinstance(exc, BrowserUnavailable):  # a page that needs a browser, in a crawl without one
            return "browser_unavailable", str(exc)
        if isinstance(exc, RefusedAddress):  # the address policy (crawler/addresses.py)
            return "private_address", f"refused {exc.host} ({', '.join(exc.addresses) or 'no address'}): {exc.reason}"
        text = str(exc).lower()
        if "robots" in text:
            return "blocked_by_robots", "forbidden by robots.txt"
        if "redirect" in text:
            return "redirect_loop", detail
        if "larger than" in text or "max size" in text or "maxsize" in text:
            return "too_large", detail  # e.g. a compressed body that decompresses past DOWNLOAD_MAXSIZE
        return "error", detail
    if failure.check(*_TIMEOUTS):
        return "timeout", detail
    if _lost_body(failure):
        # The server answered, then the body stopped short of what it announced: the site is
        # not proven down, and what arrived is not the page.
        return "truncated", f"the connection ended before the whole body arrived ({detail})"
    if failure.check(neterror.DNSLookupError, *_scrapy("CannotResolveHostError")):
        return "dns_error", detail
    if failure.check(*_UNREACHABLE):
        reasons = getattr(exc, "reasons", None) or []
        if any(r.check(*_TIMEOUTS) for r in reasons if isinstance(r, Failure)):
            return "timeout", detail
        return "unreachable", detail
    if failure.check(CancelledError, *_scrapy("DownloadCancelledError")) or "max size" in detail.lower() or "larger than" in detail.lower():
        return "too_large", detail
    return "error", detail
