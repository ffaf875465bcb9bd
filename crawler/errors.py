"""Turn download failures into the recorded statuses.

A request that never produced an answer the spider could read gets one of: ``timeout``,
``unreachable``, ``dns_error``, ``blocked_by_robots``, ``redirect_loop``, ``too_large`` (a
compressed body that decompresses past ``DOWNLOAD_MAXSIZE`` too), ``truncated`` (the
connection ended before the announced length), ``private_address``, ``browser_unavailable``
or ``error`` (anything else, with its detail).

The statuses of answers that did arrive (``ok``, ``blocked``, ``empty``, ``challenge`` …),
the status sets and what a status means for the findings are decided by the one judgement
the crawl and ``govevidence judge`` share: ``evidence.judgement``.
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


# Scrapy >= 2.15 wraps transport errors in its own exception types; older
# releases raise Twisted's. Both are listed so the status does not depend on it.
def _scrapy(*names: str) -> tuple[type[BaseException], ...]:
    return tuple(getattr(scrapy_exc, n) for n in names if hasattr(scrapy_exc, n))


_TIMEOUTS = _scrapy("DownloadTimeoutError") + (DeferTimeoutError, neterror.TimeoutError, neterror.TCPTimedOutError, TimeoutError)
_UNREACHABLE = _scrapy("DownloadConnectionRefusedError", "DownloadFailedError") + (
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
