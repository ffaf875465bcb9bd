"""GovEvidence evidence detectors: catalogue-driven, pure functions over a parsed page.

Public API::

    page = Page.from_bytes(url, body, content_type=None, kind="portal")
    findings = detect(page)               # one Finding per applicable indicator
    sources = discover_sources(page)      # links to other evaluation sources
    indicators_for(kind)                  # catalogue entries for a source kind
"""

from __future__ import annotations

import datetime as dt

from .catalogue import Catalogue, CatalogueError, Indicator, SOURCE_KINDS, indicators_for, load_catalogue
from .detectors import DETECTORS, Context, plan_for
from .finding import ABSENT, PRESENT, UNKNOWN, DiscoveredSource, Finding
from .page import Page
from .sources import discover_sources

DETECTOR_VERSION = "0.1.0"

__all__ = [
    "ABSENT", "Catalogue", "CatalogueError", "DETECTOR_VERSION", "DiscoveredSource", "Finding",
    "Indicator", "PRESENT", "Page", "SOURCE_KINDS", "UNKNOWN", "detect", "discover_sources",
    "indicators_for", "load_catalogue",
]


def detect(page: Page, *, now: dt.date | dt.datetime | None = None, catalogue: Catalogue | None = None) -> list[Finding]:
    """Run every catalogue indicator that applies to ``page.kind`` (crawler-only ones excepted).

    ``now`` bounds plausible dates (default: today, UTC); ``catalogue`` defaults to the packaged one.
    """
    catalogue = catalogue or load_catalogue()
    if isinstance(now, dt.datetime):
        now = now.date()
    today = now or dt.datetime.now(dt.timezone.utc).date()
    plan = plan_for(catalogue)
    findings: list[Finding] = []
    for indicator in catalogue.for_kind(page.kind):
        if indicator.crawler_only:
            continue
        ctx = Context(now=today, version=f"{DETECTOR_VERSION}+{indicator.id}.v{indicator.version}", plan=plan)
        finding = DETECTORS[indicator.detector](page, indicator, ctx)
        if finding is not None:
            findings.append(finding)
    return findings
