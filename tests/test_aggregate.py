"""Roll-up rules: present if any page shows it, absent only when looked at, unknown otherwise."""

from govevidence.aggregate import SourceCrawl, aggregate_source, aggregate_target


def _capture(n, status="ok", depth=0, url=None):
    return {"id": n, "error_status": status, "depth": depth, "requested_url": url or f"http://127.0.0.9/{n}",
            "http_status": 200 if status == "ok" else None, "referer": None}


def _finding(indicator, verdict, capture_id, value=None, image=None):
    return {"indicator": indicator, "verdict": verdict, "value": value, "capture_id": capture_id,
            "evidence_image": image, "checked": "rules: 3 candidates" if verdict == "absent" else None}


def test_present_on_any_page_wins_and_prefers_a_picture():
    crawl = SourceCrawl(1, 7, "portal", "ok", captures=[_capture(1), _capture(2, depth=1)], findings=[
        _finding("site.search", "absent", 1), _finding("site.search", "present", 2),
        _finding("portal.service_entry", "present", 1), _finding("portal.service_entry", "present", 2, image="x.png"),
    ])
    rows = {r["indicator"]: r for r in aggregate_source(crawl, ["site.search", "portal.service_entry"])}
    assert rows["site.search"]["verdict"] == "present" and rows["site.search"]["capture_id"] == 2
    assert rows["portal.service_entry"]["evidence_image"] == "x.png"


def test_latest_update_takes_the_newest_date():
    crawl = SourceCrawl(1, 7, "portal", "ok", captures=[_capture(1), _capture(2, depth=1)], findings=[
        _finding("site.latest_update", "present", 1, "2026-11-20"),
        _finding("site.latest_update", "present", 2, "2026-11-24"),
    ])
    row = next(r for r in aggregate_source(crawl, ["site.latest_update"]) if r["indicator"] == "site.latest_update")
    assert row["value"] == "2026-11-24"


def test_absent_says_how_much_was_checked():
    crawl = SourceCrawl(1, 7, "service", "ok", captures=[_capture(1), _capture(2, depth=1), _capture(3, "http_error", 1)],
                        findings=[_finding("service.good_bad_review", "absent", 1)])
    rows = {r["indicator"]: r for r in aggregate_source(crawl, ["service.good_bad_review"])}
    assert rows["service.good_bad_review"]["verdict"] == "absent"
    assert "2 page(s)" in rows["service.good_bad_review"]["checked"]
    assert "rules: 3 candidates" in rows["service.good_bad_review"]["checked"]
    assert rows["site.broken_links"]["value"] == "1"
    assert rows["site.broken_links"]["details"]["broken"][0]["status"] == "http_error"


def test_source_not_looked_at_is_unknown_but_unreachable():
    crawl = SourceCrawl(1, 7, "portal", "timeout", captures=[_capture(1, "timeout")], findings=[
        {"indicator": "site.reachable", "verdict": "absent", "value": "timeout", "capture_id": 1, "checked": "timeout"},
        {"indicator": "site.search", "verdict": "unknown", "capture_id": 1, "checked": "home page: timeout"},
    ])
    rows = {r["indicator"]: r for r in aggregate_source(crawl, ["site.search", "site.icp_record"])}
    assert rows["site.reachable"]["verdict"] == "absent" and rows["site.reachable"]["value"] == "timeout"
    assert rows["site.search"]["verdict"] == "unknown" and "timeout" in rows["site.search"]["checked"]
    assert rows["site.icp_record"]["verdict"] == "unknown"
    assert rows["site.broken_links"]["verdict"] == "unknown"


def test_target_verdicts():
    rows = [
        {"indicator": "a", "verdict": "absent", "checked": "x"},
        {"indicator": "a", "verdict": "unknown", "checked": "home page: timeout"},
        {"indicator": "b", "verdict": "absent", "checked": "x"},
        {"indicator": "b", "verdict": "absent", "checked": "y"},
        {"indicator": "c", "verdict": "unknown", "checked": "z"},
        {"indicator": "c", "verdict": "present", "value": "v", "capture_id": 3},
    ]
    out = {r["indicator"]: r for r in aggregate_target(7, rows)}
    assert out["a"]["verdict"] == "unknown" and "timeout" in out["a"]["checked"]
    assert out["b"]["verdict"] == "absent" and "2 source(s)" in out["b"]["checked"]
    assert out["c"]["verdict"] == "present" and out["c"]["value"] == "v"
    assert all(r["scope"] == "target" and r["target_id"] == 7 for r in out.values())
