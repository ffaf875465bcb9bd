"""Roll-up rules: present if any page shows it, absent only when looked at, unknown otherwise."""

import pytest

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


def _could_not_look(indicators, capture_id, status):
    return [{"indicator": i, "verdict": "unknown", "capture_id": capture_id, "checked": f"home page: {status}"}
            for i in indicators]


@pytest.mark.parametrize("status", ["empty", "not_modified", "refused_redirect", "unreadable", "truncated",
                                    "challenge", "private_address", "browser_unavailable"])
def test_home_page_not_read_is_unknown(status):
    rows = [{"indicator": "site.reachable", "verdict": "unknown", "value": status, "capture_id": 1, "checked": status},
            *_could_not_look(["site.search", "site.icp_record"], 1, status)]
    # a page deeper down that was read does not make the source looked at
    crawl = SourceCrawl(1, 7, "portal", status, captures=[_capture(1, status), _capture(2, depth=1)],
                        findings=rows + [_finding("site.search", "absent", 2)])
    out = {r["indicator"]: r for r in aggregate_source(crawl, ["site.search", "site.icp_record", "site.id_code"])}
    assert {out[i]["verdict"] for i in ("site.reachable", "site.search", "site.icp_record", "site.id_code")} == {"unknown"}
    assert out["site.broken_links"]["verdict"] == "unknown"
    assert status in out["site.search"]["checked"]


def test_raw_html_before_a_failed_render_is_not_absent():
    """The raw capture of a source marked render is read, its browser capture failed."""
    crawl = SourceCrawl(1, 7, "service", "ok", captures=[_capture(1), _capture(2, "browser_unavailable")], findings=[
        {"indicator": "site.reachable", "verdict": "present", "capture_id": 1},
        {"indicator": "service.good_bad_review", "verdict": "unknown", "capture_id": 1,
         "checked": "raw HTML before rendering (source marked render)"},
        _finding("site.icp_record", "present", 1, "浙ICP备1号"),
        *_could_not_look(["service.good_bad_review"], 2, "browser_unavailable"),
    ])
    out = {r["indicator"]: r for r in aggregate_source(crawl, ["service.good_bad_review", "site.icp_record"])}
    assert out["service.good_bad_review"]["verdict"] == "unknown"
    assert "before rendering" in out["service.good_bad_review"]["checked"]
    assert out["site.icp_record"]["verdict"] == "present"


def test_absent_needs_a_read_page_that_was_searched():
    crawl = SourceCrawl(1, 7, "portal", "ok", captures=[_capture(1), _capture(2, "unreadable", 1)], findings=[
        {"indicator": "site.reachable", "verdict": "present", "capture_id": 1},
        _finding("site.search", "absent", 1),
        _finding("site.icp_record", "absent", 2),  # on a page that was not read: does not count
    ])
    out = {r["indicator"]: r for r in aggregate_source(crawl, ["site.search", "site.icp_record", "site.broken_links"])}
    assert out["site.search"]["verdict"] == "absent"
    assert out["site.icp_record"]["verdict"] == "unknown"
    assert [r["indicator"] for r in aggregate_source(crawl, ["site.broken_links"])].count("site.broken_links") == 1


def test_each_rollup_names_the_page_finding_it_stands_on():
    def numbered(n, row):
        return {**row, "id": n}

    portal = SourceCrawl(1, 7, "portal", "ok", captures=[_capture(1), _capture(2, depth=1)], findings=[
        numbered(10, {"indicator": "site.reachable", "verdict": "present", "capture_id": 1}),
        numbered(11, _finding("site.search", "absent", 1)),
        numbered(12, _finding("site.search", "present", 2, image="s.png")),
        numbered(13, _finding("site.icp_record", "absent", 1)),
        numbered(14, _finding("site.icp_record", "absent", 2)),
    ])
    service = SourceCrawl(2, 7, "service", "timeout", captures=[_capture(3, "timeout")], findings=[
        numbered(20, {"indicator": "site.reachable", "verdict": "absent", "value": "timeout", "capture_id": 3,
                      "checked": "timeout"}),
        *(numbered(21 + i, row) for i, row in enumerate(_could_not_look(["site.search"], 3, "timeout"))),
    ])
    indicators = ["site.search", "site.icp_record", "site.id_code"]
    sources = aggregate_source(portal, indicators) + aggregate_source(service, indicators)
    by = {(r["source_id"], r["indicator"]): r for r in sources}
    assert by[1, "site.search"]["derived_from_id"] == 12  # the present page finding it copies
    assert by[1, "site.icp_record"]["derived_from_id"] == 13  # the first page searched
    assert by[1, "site.reachable"]["derived_from_id"] == 10
    assert by[2, "site.reachable"]["derived_from_id"] == 20  # absent: the site did not answer
    assert by[2, "site.search"]["verdict"] == "unknown" and by[2, "site.search"]["derived_from_id"] == 21
    assert by[1, "site.id_code"]["verdict"] == "unknown" and by[1, "site.id_code"]["derived_from_id"] is None
    assert by[1, "site.broken_links"].get("derived_from_id") is None  # counted over the captures
    targets = {r["indicator"]: r for r in aggregate_target(7, sources)}
    assert targets["site.search"]["derived_from_id"] == 12
    assert targets["site.reachable"]["derived_from_id"] == 10
    assert targets["site.icp_record"]["verdict"] == "unknown" and targets["site.icp_record"]["derived_from_id"] is None
    assert targets["site.id_code"]["derived_from_id"] is None
