"""Roll page findings up to one verdict per source and per target.

Rules a scorer can rely on:
- ``present`` when any page of the source shows the indicator;
- ``unknown`` when nothing shows it and the source could not be looked at (its home
  page was unreachable, timed out or was blocked);
- ``absent`` only when the source was looked at (its home page was fetched and read:
  error status ``ok``) and no page shows it, and at least one page that was read was
  really searched for it (a page finding ``absent`` on an ``ok`` capture; raw HTML that a
  browser draws next is not searched); the finding says how many pages were checked.
  Any other home status (``empty``, ``unreadable``, ``challenge``, ``refused_redirect``,
  ``private_address``, ``browser_unavailable``, …) gives ``unknown``.
A target's verdict is ``present`` if any of its sources shows the indicator,
``unknown`` if none does and one that could have was not looked at, else ``absent``.

Each roll-up row names the page finding it stands on (``derived_from_id``, from the page
findings' ``id``): a ``present`` the page finding it copies, an ``absent`` the page finding
of the example page searched, an ``unknown`` the page finding its reason (or, for
``site.reachable``, its verdict) comes from, if any. A target row names the page finding of
the source row it takes. ``site.broken_links`` is counted over the captures and names none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vocabulary import BROKEN_STATUSES

# Indicators whose aggregate value is the greatest page value, not the first one.
MAX_VALUE_INDICATORS = frozenset({"site.latest_update"})


@dataclass
class SourceCrawl:
    """What one run did with one source: its captures and the findings on them."""

    source_id: int
    target_id: int
    kind: str
    home_status: str | None  # error_status of the depth-0 capture; None if never attempted
    captures: list[Mapping[str, Any]] = field(default_factory=list)
    findings: list[Mapping[str, Any]] = field(default_factory=list)


COPIED = ("verdict", "value", "url", "href", "locator", "snippet", "capture_id", "detector_version",
          "screenshot", "evidence_image", "evidence_image_record_id")


class _IndicatorTally:
    """What a source's page findings of one indicator add up to, kept as they stream by
    (in page order: shallowest first), so a source of any size costs the same memory."""

    __slots__ = ("indicator", "first", "present", "best", "best_key", "searched", "unknown_reason", "unknown_row")

    def __init__(self, indicator: str) -> None:
        self.indicator = indicator
        self.first: Mapping[str, Any] | None = None
        self.present = 0
        self.best: Mapping[str, Any] | None = None
        self.best_key: tuple[str, bool] | None = None
        self.searched: Mapping[str, Any] | None = None
        self.unknown_reason: str | None = None
        self.unknown_row: Mapping[str, Any] | None = None

    def add(self, row: Mapping[str, Any], read_ids: set[int]) -> None:
        if self.first is None:
            self.first = row
        verdict = row["verdict"]
        if verdict == "present":
            self.present += 1
            # The page finding that stands for the source: greatest value where that matters,
            # else the shallowest page, preferring one with a picture of the evidence.
            if self.indicator in MAX_VALUE_INDICATORS:
                key = (row.get("value") or "", bool(row.get("evidence_image")))
                if self.best_key is None or key > self.best_key:
                    self.best, self.best_key = row, key
            elif self.best is None or (not self.best.get("evidence_image") and row.get("evidence_image")):
                self.best = row
        elif verdict == "absent":
            if self.searched is None and row.get("capture_id") in read_ids:
                self.searched = row
        elif verdict == "unknown" and self.unknown_reason is None and row.get("checked"):
            self.unknown_reason = row["checked"]
            self.unknown_row = row


class SourceTally:
    """A source's roll-up, fed its page findings one by one (``add``) after its captures."""

    def __init__(self, crawl: SourceCrawl) -> None:
        self.crawl = crawl
        self.pages_ok = sum(1 for c in crawl.captures if c["error_status"] == "ok")
        self.read_ids = {c["id"] for c in crawl.captures if c["error_status"] == "ok"}
        self.indicators: dict[str, _IndicatorTally] = {}

    def add(self, row: Mapping[str, Any]) -> None:
        indicator = row["indicator"]
        tally = self.indicators.get(indicator)
        if tally is None:
            tally = self.indicators[indicator] = _IndicatorTally(indicator)
        tally.add(row, self.read_ids)

    def rows(self, indicators: Iterable[str]) -> list[dict[str, Any]]:
        """Source-scope findings, one per indicator (plus site.broken_links)."""
        crawl, pages_ok = self.crawl, self.pages_ok
        looked = crawl.home_status == "ok" and bool(pages_ok)
        out: list[dict[str, Any]] = []
        # site.broken_links is the crawl's own count (below), not a page finding.
        wanted = [i for i in dict.fromkeys([*indicators, "site.reachable"]) if i != "site.broken_links"]
        for indicator in wanted:
            tally = self.indicators.get(indicator) or _IndicatorTally(indicator)
            base = {"indicator": indicator, "source_id": crawl.source_id, "target_id": crawl.target_id,
                    "scope": "source"}
            if tally.present:
                best = tally.best
                out.append({**base, **{k: best.get(k) for k in COPIED}, "derived_from_id": best.get("id"),
                            "details": {"pages_present": tally.present, "pages_checked": pages_ok}})
            elif not looked or (tally.searched is None and indicator != "site.reachable"):
                reason = tally.unknown_reason
                if looked and not reason:
                    reason = "no page that was read was searched for it"
                first = tally.first
                # site.reachable keeps the crawler's own verdict (absent when the site did not answer).
                verdict = first["verdict"] if indicator == "site.reachable" and first else "unknown"
                basis = first if indicator == "site.reachable" else (tally.unknown_row or first)
                out.append({**base, "verdict": verdict, "value": first.get("value") if first else None,
                            "checked": reason or f"source not looked at: {crawl.home_status or 'not attempted'}",
                            "derived_from_id": basis.get("id") if basis else None,
                            "details": {"pages_checked": pages_ok}})
            else:
                example = tally.searched
                rules = f"; rules: {example['checked']}" if example and example.get("checked") else ""
                out.append({**base, "verdict": "absent",
                            "checked": f"{pages_ok} page(s) of the source checked, none shows it{rules}",
                            "derived_from_id": example.get("id") if example else None,
                            "details": {"pages_checked": pages_ok}})
        out.append(broken_links(crawl))
        return out


def _pick_present(rows: list[Mapping[str, Any]], indicator: str) -> Mapping[str, Any]:
    """The row that stands for several (sources of a target): as a source's page findings."""
    tally = _IndicatorTally(indicator)
    for row in rows:
        tally.add(row, set())
    return tally.best


def _first_basis(rows: list[Mapping[str, Any]]) -> int | None:
    """The page finding the first of some source rows (portal first) stands on, if any does."""
    return next((r["derived_from_id"] for r in rows if r.get("derived_from_id") is not None), None)


def aggregate_source(crawl: SourceCrawl, indicators: Iterable[str]) -> list[dict[str, Any]]:
    """Source-scope findings, one per indicator (plus site.broken_links), of the findings in
    ``crawl.findings`` (page order)."""
    tally = SourceTally(crawl)
    for row in crawl.findings:
        tally.add(row)
    return tally.rows(indicators)


def broken_links(crawl: SourceCrawl) -> dict[str, Any]:
    """site.broken_links: links of the source that were followed and did not work."""
    followed = [c for c in crawl.captures if c.get("depth", 0) > 0]
    broken = [c for c in followed if c["error_status"] in BROKEN_STATUSES]
    base = {"indicator": "site.broken_links", "source_id": crawl.source_id, "target_id": crawl.target_id, "scope": "source"}
    if crawl.home_status != "ok":
        return {**base, "verdict": "unknown", "checked": f"source not looked at: {crawl.home_status or 'not attempted'}"}
    return {
        **base,
        "verdict": "present",
        "value": str(len(broken)),
        "checked": f"{len(followed)} internal link(s) followed",
        "details": {
            "checked": len(followed),
            "broken": [
                {"url": c["requested_url"], "status": c["error_status"], "http_status": c.get("http_status"), "referer": c.get("referer")}
                for c in broken
            ],
        },
    }


def aggregate_target(target_id: int, source_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Target-scope findings from the source-scope ones."""
    by_indicator: dict[str, list[Mapping[str, Any]]] = {}
    for row in source_rows:
        by_indicator.setdefault(row["indicator"], []).append(row)
    out: list[dict[str, Any]] = []
    for indicator, rows in by_indicator.items():
        present = [r for r in rows if r["verdict"] == "present"]
        base = {"indicator": indicator, "target_id": target_id, "source_id": None, "scope": "target"}
        if present:
            best = _pick_present(present, indicator)
            out.append({**base, **{k: best.get(k) for k in COPIED}, "derived_from_id": best.get("derived_from_id"),
                        "details": {"sources_present": len(present), "sources": len(rows)}})
        elif any(r["verdict"] == "unknown" for r in rows):
            unknown = [r for r in rows if r["verdict"] == "unknown"]
            out.append({**base, "verdict": "unknown", "checked": "; ".join(sorted({r.get('checked') or '' for r in unknown})),
                        "derived_from_id": _first_basis(unknown), "details": {"sources": len(rows)}})
        else:
            out.append({**base, "verdict": "absent", "checked": f"{len(rows)} source(s) checked, none shows it",
                        "derived_from_id": _first_basis(rows), "details": {"sources": len(rows)}})
    return out
