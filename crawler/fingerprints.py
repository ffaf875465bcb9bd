"""Request fingerprints that tell captures apart (``REQUEST_FINGERPRINTER_CLASS``).

Scrapy's duplicate filter drops a request whose fingerprint it has seen, in one process or, with
the distributed add-on (``crawler/distributed.py``), across all workers of a run. Two requests
are one capture when they fetch the same thing for the same purpose, so the fingerprint covers:

- what Scrapy's default covers: the canonical URL (``w3lib.url.canonicalize_url``), method
  and body (``scrapy.utils.request.fingerprint``);
- the source the page is fetched for (meta ``source``): the same URL in two sources is two
  captures, each counted against its own source's budget;
- how it is drawn (meta ``render``, ``render_reason``, ``screenshot_only``): a page fetched
  plain and then drawn by the browser is two captures;
- the redirect hops that led to it (meta ``redirect_urls``): Scrapy's redirect middleware gives
  a redirected copy the original's ``dont_filter``, so without them a page that redirects to
  one already fetched would be dropped and never recorded under the URL that was asked for.

Retries are never filtered (Scrapy's retry middleware sets ``dont_filter`` on them).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from scrapy import Request
from scrapy.utils.request import fingerprint
from w3lib.url import canonicalize_url


def capture_identity(request: Request) -> dict[str, Any]:
    """What, beyond the URL, method and body, makes a request its own capture."""
    meta = request.meta
    source = meta.get("source")
    return {
        "source": list(source) if source is not None else None,
        "render": bool(meta.get("render")),
        "render_reason": meta.get("render_reason"),
        "screenshot_only": bool(meta.get("screenshot_only")),
        "redirected_from": [canonicalize_url(url) for url in meta.get("redirect_urls") or ()],
    }


class CaptureFingerprinter:
    """Scrapy's request fingerprint, extended with the capture's identity (see the module)."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> "CaptureFingerprinter":
        return cls()

    def fingerprint(self, request: Request) -> bytes:
        digest = hashlib.sha1(fingerprint(request))
        digest.update(json.dumps(capture_identity(request), sort_keys=True, ensure_ascii=True).encode())
        return digest.digest()
