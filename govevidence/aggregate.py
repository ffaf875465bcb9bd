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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Indicators whose aggregate value is the greatest page value, not the first one.
MAX_VALUE_INDICATORS = frozenset({"site.latest_update"})
BROKEN_STATUSES = frozenset({"http_error", "server_error", "unreachable", "timeout", "dns_error", "redirect_loop"})


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
          "screenshot", "evidence_image")


def _pick_present(rows: list[Mapping[str, Any]], indicator: str) -> Mapping[str, Any]:
    """The page finding that stands for the source: greatest value where that matters,
    else the shallowest page, preferring one with a picture of the evidence."""
    if indicator in MAX_VALUE_INDICATORS:
        return max(rows, key=lambda r: (r.get("value") or "", bool(r.get("evidence_image"))))
    return next((r for r in rows if r.get("evidence_image")), rows[0])


def aggregate_source(crawl: SourceCrawl, indicators: Iterable[str]) -> list[dict[str, Any]]:
    """Source-scope findings, one per indicator (plus site.broken_links)."""
    by_indicator: dict[str, list[Mapping[str, Any]]] = {}
    for row in crawl.findings:
        by_indicator.setdefault(row["indicator"], []).append(row)
    pages_ok = [c for c in crawl.captures if c["error_status"] == "ok"]
    read_ids = {c["id"] for c in pages_ok}
    looked = crawl.home_status == "ok" and bool(pages_ok)
    out: list[dict[str, Any]] = []
    # site.broken_links is the crawl's own count (below), not a page finding.
    wanted = [i for i in dict.fromkeys([*indicators, "site.reachable"]) if i != "site.broken_links"]
    for indicator in wanted:
        rows = by_indicator.get(indicator, [])
        present = [r for r in rows if r["verdict"] == "present"]
        searched = [r for r in rows if r["verdict"] == "absent" and r.get("capture_id") in read_ids]
        base = {"indicator": indicator, "source_id": crawl.source_id, "target_id": crawl.target_id, "scope": "source"}
        if present:
            best = _pick_present(present, indicator)
            out.append({**base, **{k: best.get(k) for k in COPIED},
                        "details": {"pages_present": len(present), "pages_checked": len(pages_ok)}})
        elif not looked or (not searched and indicator != "site.reachable"):
            reason = next((r.get("checked") for r in rows if r["verdict"] == "unknown" and r.get("checked")), None)
            if looked and not reason:
                reason = "no page that was read was searched for it"
            # site.reachable keeps the crawler's own verdict (absent when the site did not answer).
            verdict = rows[0]["verdict"] if indicator == "site.reachable" and rows else "unknown"
            out.append({**base, "verdict": verdict, "value": rows[0].get("value") if rows else None,
                        "checked": reason or f"source not looked at: {crawl.home_status or 'not attempted'}",
                        "details": {"pages_checked": len(pages_ok)}})
        else:
            example = searched[0] if searched else None
            rules = f"; rules: {example['checked']}" if example and example.get("checked") else ""
            out.append({**base, "verdict": "absent",
                        "checked": f"{len(pages_ok)} page(s) of the source checked, none shows it{rules}",
                        "details": {"pages_checked": len(pages_ok)}})
    out.append(broken_links(crawl))
    return out


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
            out.append({**base, **{k: best.get(k) for k in COPIED},
                        "details": {"sources_present": len(present), "sources": len(rows)}})
        elif any(r["verdict"] == "unknown" for r in rows):
            out.append({**base, "verdict": "unknown", "checked": "; ".join(sorted({r.get('checked') or '' for r in rows if r['verdict'] == 'unknown'})),
                        "details": {"sources": len(rows)}})
        else:
            out.append({**base, "verdict": "absent", "checked": f"{len(rows)} source(s) checked, none shows it",
                        "details": {"sources": len(rows)}})
    return out
