"""Turn download failures and HTTP answers into the recorded statuses.

Statuses: ``ok``, ``timeout``, ``unreachable``, ``dns_error``, ``blocked`` (HTTP 401/403/429/451),
``blocked_by_robots``, ``http_error`` (other 4xx), ``server_error`` (5xx), ``redirect_loop``,
``too_large``, ``not_html``, ``error`` (anything else, with its detail).
"""

from __future__ import annotations

from scrapy import exceptions as scrapy_exc
from scrapy.exceptions import IgnoreRequest
from twisted.internet import error as neterror
from twisted.internet.defer import CancelledError
from twisted.internet.defer import TimeoutError as DeferTimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

# Statuses meaning the site did not serve us at all from here: the site counts as
# not reachable, and everything else about it is unknown.
DOWN_STATUSES = frozenset({"timeout", "unreachable", "dns_error", "server_error", "http_error"})
# Statuses meaning we were not allowed to look: nothing can be said, not even reachability.
BLOCKED_STATUSES = frozenset({"blocked", "blocked_by_robots"})

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


def http_status_kind(status: int) -> str:
    if status < 400:
        return "ok"
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
        text = str(exc).lower()
        if "robots" in text:
            return "blocked_by_robots", "forbidden by robots.txt"
        if "redirect" in text:
            return "redirect_loop", detail
        return "error", detail
    if failure.check(*_TIMEOUTS):
        return "timeout", detail
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
