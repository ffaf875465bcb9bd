"""The hostile corpus: every bad answer ends in a clear status and never in a false ``absent``.

One ``scrapy crawl province_portals`` over the whole corpus (``tests/hostile/cases.py``, one
fictional target per case, each on its own loopback address) into a fresh SQLite database;
the tests read what was recorded, case by case.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from db.models import CrawlRun, Finding, PageCapture
from vocabulary import DOWN_STATUSES
from tests.hostile.cases import CASES
from tests.hostile.crawl import PAGE_INDICATORS, Crawl
from tests.hostile.pages import CONTROL_PAGES

pytestmark = pytest.mark.slow


@pytest.fixture
def crawl(hostile_crawl: Crawl) -> Crawl:
    return hostile_crawl


def _home(captures: list[PageCapture], *, rendered: bool) -> PageCapture | None:
    return next((c for c in captures if c.depth == 0 and c.rendered is rendered), None)


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert sum(1 for c in CASES.values() if c.control) >= 2


def test_run_finished(crawl: Crawl):
    assert crawl.web.errors == []
    with crawl.session() as session:
        runs = session.execute(select(CrawlRun)).scalars().all()
    assert [(r.status, r.finish_reason) for r in runs] == [("finished", "finished")]


@pytest.mark.parametrize("name", list(CASES))
def test_home_capture_status(crawl: Crawl, name: str):
    case = CASES[name]
    captures = crawl.captures(name)
    home = _home(captures, rendered=False)
    assert home is not None, f"{name}: no home capture"
    assert home.error_status == case.expect, (name, home.error_status, home.error_detail)
    if case.expect not in ("ok", "not_html"):
        assert home.error_detail, name  # every bad answer says what was wrong
    if case.rendered:
        drawn = _home(captures, rendered=True)
        assert drawn is not None, f"{name}: not rendered"
        assert drawn.error_status == case.rendered, (name, drawn.error_status, drawn.error_detail)
        assert drawn.render_reason in ("challenge", "script_shell"), name
    if case.title:
        assert home.title == case.title, name
    if case.final_path:
        assert urlsplit(home.final_url).path == case.final_path, name
    if case.max_pages:
        assert len(captures) <= case.max_pages + 1, name
    if home.http_status is not None:
        assert home.ip_address == crawl.web.hosts[name].ip or home.ip_address == urlsplit(home.final_url).hostname


@pytest.mark.parametrize("name", list(CASES))
def test_no_false_absent(crawl: Crawl, name: str):
    captures = {c.id: c for c in crawl.captures(name)}
    page_findings = crawl.findings(name, "page")
    for finding in page_findings:
        status = captures[finding.capture_id].error_status
        if finding.indicator == "site.reachable":  # the crawl's own verdict: absent only when the site did not answer
            assert finding.verdict != "absent" or status in DOWN_STATUSES, (name, status)
        elif finding.verdict == "absent":
            assert status == "ok", (name, finding.indicator)
    home_read = any(c.depth == 0 and c.error_status == "ok" for c in captures.values())
    targets = {f.indicator: f for f in crawl.findings(name, "target")}
    assert set(PAGE_INDICATORS) <= set(targets), name
    if not home_read:
        for indicator, finding in targets.items():
            if indicator == "site.reachable":
                home = _home(list(captures.values()), rendered=False)
                expected = {"not_html": "present"}.get(home.error_status,
                                                       "absent" if home.error_status in DOWN_STATUSES else "unknown")
                assert finding.verdict == expected, name
            else:
                assert finding.verdict == "unknown", (name, indicator, finding.verdict)
    for finding in crawl.findings(name, "source") + list(targets.values()):
        if finding.verdict == "absent" and finding.indicator != "site.reachable":
            assert home_read, (name, finding.indicator)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.control])
def test_control_targets_are_complete(crawl: Crawl, name: str):
    captures = crawl.captures(name)
    by_path = {urlsplit(c.final_url).path: c for c in captures if c.final_url}
    assert set(CONTROL_PAGES) <= set(by_path), (name, sorted(by_path))
    assert all(c.error_status == "ok" for c in captures), [(c.requested_url, c.error_status) for c in captures]
    with crawl.session() as session:
        per_capture = defaultdict(set)
        for capture_id, indicator in session.execute(
                select(Finding.capture_id, Finding.indicator).where(Finding.capture_id.in_([c.id for c in captures]))):
            per_capture[capture_id].add(indicator)
    for capture in captures:
        assert set(PAGE_INDICATORS) <= per_capture[capture.id], capture.requested_url
    targets = {f.indicator: f for f in crawl.findings(name, "target")}
    assert all(f.verdict in ("present", "absent") for f in targets.values()), \
        [(i, f.verdict) for i, f in targets.items() if f.verdict == "unknown"]
    for indicator in ("site.reachable", "site.id_code", "site.icp_record", "site.psb_record", "site.search",
                      "site.latest_update"):
        assert targets[indicator].verdict == "present", (name, indicator)
    assert targets["site.latest_update"].value == "2026-11-18"
    assert targets["site.broken_links"].value == "0"


def test_moved_site_is_crawled_where_it_lands(crawl: Crawl):
    case = CASES["moved_site"]
    landing = crawl.web.landing_origin("moved_site", "new")
    captures = crawl.captures("moved_site")
    crawled = {urlsplit(c.final_url).path for c in captures
               if c.final_url and c.final_url.startswith(landing + "/") and c.error_status == "ok"}
    assert set(case.landing_pages) <= crawled, crawled
    deep = next(c for c in captures if c.final_url == landing + "/zwgk/deep.html")
    assert deep.depth == 2
    reachable = next(f for f in crawl.findings("moved_site", "page") if f.indicator == "site.reachable")
    assert reachable.details["landing_origin"] == landing
    targets = {f.indicator: f for f in crawl.findings("moved_site", "target")}
    assert targets["site.icp_record"].verdict == "present"  # found on the deep page of the landing host


def test_frames_are_followed(crawl: Crawl):
    captures = crawl.captures("frameset")
    assert {"/top.html", "/main/"} <= {urlsplit(c.final_url).path for c in captures if c.error_status == "ok"}
    targets = {f.indicator: f for f in crawl.findings("frameset", "target")}
    assert targets["site.icp_record"].verdict == "present"


def test_no_traffic_left_loopback(crawl: Crawl):
    with crawl.session() as session:
        urls = session.execute(select(PageCapture.requested_url, PageCapture.final_url)).all()
    for requested, final in urls:
        for url in (requested, final):
            if url:
                assert ipaddress.ip_address(urlsplit(url).hostname) in ipaddress.ip_network("127.0.0.0/8"), url
