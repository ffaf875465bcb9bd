"""End to end: the portal spiders crawl the sandbox web into a real database.

Each backend gets one database; the fixture crawls ``province_portals`` twice and
``city_portals`` once (runs 1, 2, 3) as ``scrapy crawl`` subprocesses, exactly as a
user would, and the tests read what was recorded.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import CrawlRun, Finding, PageCapture, Source, Target
from db.session import get_engine
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl
from tests.conftest import BACKENDS, fresh_database

CRAWL_SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "2", "LOG_LEVEL": "INFO", "DOWNLOAD_MAXSIZE": "1000000"}


@dataclass
class Crawled:
    url: str
    logs: list[str]
    folder: Path

    def session(self) -> Session:
        return Session(get_engine(self.url))


@pytest.fixture(scope="module", params=BACKENDS)
def crawled(request, sandbox_registry, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"crawl-{request.param}")
    with fresh_database(request.param, folder) as url:
        env = {"DATABASE_URL": url, "GOVEVIDENCE_DATA_DIR": str(folder)}
        logs = []
        for spider in ("province_portals", "city_portals", "province_portals"):
            result = scrapy_crawl(spider, args={"registry": str(sandbox_registry)}, settings=CRAWL_SETTINGS,
                                  env=env, capture=True, timeout=600)
            logs.append(result.stderr)
            assert result.returncode == 0, result.stderr[-3000:]
        yield Crawled(url, logs, folder)


def _captures(session: Session, run_id: int, code: str | None = None):
    query = select(PageCapture, Source.kind, Target.code).join(Source, Source.id == PageCapture.source_id) \
        .join(Target, Target.id == Source.target_id).where(PageCapture.run_id == run_id)
    if code:
        query = query.where(Target.code == code)
    return session.execute(query).all()


def _target_findings(session: Session, run_id: int, code: str) -> dict[str, Finding]:
    rows = session.execute(
        select(Finding).join(Target, Target.id == Finding.target_id)
        .where(Finding.run_id == run_id, Finding.scope == "target", Target.code == code)
    ).scalars()
    return {f.indicator: f for f in rows}


def test_scrapy_list_shows_the_portal_spiders():
    out = subprocess.run([sys.executable, "-m", "scrapy", "list"], capture_output=True, text=True, check=True,
                         env={"SCRAPY_SETTINGS_MODULE": "crawler.settings", "PATH": ""}).stdout.split()
    assert {"province_portals", "city_portals"} <= set(out)


def test_runs_are_recorded_and_finished(crawled):
    with crawled.session() as session:
        runs = session.execute(select(CrawlRun).order_by(CrawlRun.id)).scalars().all()
    assert [r.spider for r in runs] == ["province_portals", "city_portals", "province_portals"]
    for run in runs:
        assert run.status == "finished" and run.finish_reason == "finished"
        assert run.finished_at > run.started_at
        assert run.stats["item_scraped_count"] > 0
        assert run.settings["ROBOTSTXT_OBEY"] is True


def test_rerun_makes_a_new_run_not_duplicates(crawled):
    with crawled.session() as session:
        per_run = dict(session.execute(select(PageCapture.run_id, func.count()).group_by(PageCapture.run_id)).all())
        findings = dict(session.execute(select(Finding.run_id, func.count()).group_by(Finding.run_id)).all())
        duplicates = session.execute(
            select(PageCapture.run_id, PageCapture.source_id, PageCapture.requested_url, PageCapture.rendered)
            .group_by(PageCapture.run_id, PageCapture.source_id, PageCapture.requested_url, PageCapture.rendered)
            .having(func.count() > 1)
        ).all()
        targets = session.execute(select(func.count()).select_from(Target)).scalar()
    assert duplicates == []
    assert per_run[1] == per_run[3] > 20
    assert findings[1] == findings[3]
    assert targets == 5


def test_full_targets_have_complete_evidence(crawled):
    with crawled.session() as session:
        for code in ("910000", "920000", "910100", "920100"):
            found = _target_findings(session, 1 if code.endswith("0000") else 2, code)
            assert found["site.reachable"].verdict == "present", code
            assert found["site.id_code"].verdict == "present", code
            assert found["site.id_code"].value and len(found["site.id_code"].value) == 10, code
            assert found["site.icp_record"].verdict == "present", code
            assert found["site.search"].verdict == "present", code
            assert found["site.latest_update"].value.startswith("20"), code
            pages = _captures(session, 1 if code.endswith("0000") else 2, code)
            assert sum(1 for c, _, _ in pages if c.error_status == "ok") >= 5, code


def test_page_findings_point_at_their_capture(crawled):
    with crawled.session() as session:
        rows = session.execute(
            select(Finding, PageCapture).join(PageCapture, PageCapture.id == Finding.capture_id)
            .where(Finding.run_id == 1, Finding.scope == "page", Finding.verdict == "present",
                   Finding.indicator == "site.icp_record")
        ).all()
    assert rows
    for finding, capture in rows:
        assert finding.locator and finding.snippet and "ICP" in finding.snippet
        assert finding.url == capture.final_url
        assert capture.sha256 and len(capture.sha256) == 64 and capture.size > 0
        assert capture.fetched_at.tzinfo is not None


def test_gbk_site_is_decoded(crawled):
    with crawled.session() as session:
        found = _target_findings(session, 1, "920000")
        encodings = {c.encoding for c, _, _ in _captures(session, 1, "920000") if c.encoding}
    assert found["site.icp_record"].value.startswith("西ICP备")
    assert any(e.lower() in ("gbk", "gb18030", "gb2312") for e in encodings)


def test_dead_host_is_unreachable_and_unknown(crawled):
    with crawled.session() as session:
        portal = [c for c, kind, _ in _captures(session, 2, "910200") if kind == "portal"]
        found = _target_findings(session, 2, "910200")
        portal_findings = {f.indicator: f for f in session.execute(
            select(Finding).where(Finding.run_id == 2, Finding.scope == "source",
                                  Finding.source_id == portal[0].source_id)
        ).scalars()}
    assert [c.error_status for c in portal] == ["unreachable"]
    assert portal_findings["site.reachable"].verdict == "absent"
    assert portal_findings["site.reachable"].value == "unreachable"
    others = [f for i, f in portal_findings.items() if i not in ("site.reachable",)]
    assert others and all(f.verdict == "unknown" for f in others)
    assert found["site.id_code"].verdict == "unknown"


def test_slow_host_times_out(crawled):
    with crawled.session() as session:
        service = [c for c, kind, _ in _captures(session, 2, "910200") if kind == "service"]
    assert service and all(c.error_status == "timeout" for c in service)


def test_bad_links_get_statuses(crawled):
    with crawled.session() as session:
        statuses = {c.error_status for c, _, _ in _captures(session, 1)} | {c.error_status for c, _, _ in _captures(session, 2)}
        broken = session.execute(
            select(Finding).where(Finding.run_id == 1, Finding.scope == "source", Finding.indicator == "site.broken_links",
                                  Finding.value != "0")
        ).scalars().all()
    assert {"ok", "http_error", "server_error", "redirect_loop", "blocked_by_robots", "too_large",
            "blocked"} <= statuses
    assert broken and all(f.details["broken"] for f in broken)


def test_portal_links_discover_unregistered_sources(crawled):
    with crawled.session() as session:
        discovered = session.execute(
            select(Source.kind, Source.url, Source.anchor_text).join(Target, Target.id == Source.target_id)
            .where(Source.origin == "discovered", Target.code == "910100")
        ).all()
    kinds = {kind for kind, _, _ in discovered}
    assert {"interaction", "department"} <= kinds
    assert all(anchor for _, _, anchor in discovered)


def test_javascript_widget_is_seen_after_rendering(crawled):
    with crawled.session() as session:
        service = session.execute(
            select(Finding).join(Source, Source.id == Finding.source_id).join(Target, Target.id == Source.target_id)
            .where(Finding.run_id == 1, Finding.scope == "source", Target.code == "910000", Source.kind == "service",
                   Finding.indicator == "service.good_bad_review")
        ).scalar_one()
        capture = session.get(PageCapture, service.capture_id)
    assert service.verdict == "present"
    assert capture.rendered is True


def test_spider_trap_is_bounded(crawled):
    with crawled.session() as session:
        per_source = session.execute(
            select(PageCapture.source_id, func.count()).where(PageCapture.run_id == 1).group_by(PageCapture.source_id)
        ).all()
    assert max(n for _, n in per_source) <= 60 + 1  # page budget (+1 for a re-rendered home page)


def test_no_traffic_left_loopback(crawled):
    with crawled.session() as session:
        urls = session.execute(select(PageCapture.requested_url, PageCapture.final_url)).all()
    for requested, final in urls:
        for url in (requested, final):
            if url:
                assert ipaddress.ip_address(urlsplit(url).hostname) in ipaddress.ip_network("127.0.0.0/8"), url


def test_capture_provenance_and_render_reasons(crawled):
    with crawled.session() as session:
        rows = _captures(session, 1)
    raw_ok = [c for c, _, _ in rows if not c.rendered and c.http_status]
    assert raw_ok and all(c.ip_address == urlsplit(c.final_url).hostname for c in raw_ok)
    assert all(c.render_reason is None for c, _, _ in rows if not c.rendered)
    reasons = {(kind, c.render_reason) for c, kind, _ in rows if c.rendered}
    assert {r for _, r in reasons} <= {"source_marked", "script_shell", "challenge", "screenshot"}
    assert ("service", "source_marked") in reasons  # 东海省政务服务网 is marked render: true
    assert ("portal", "screenshot") in reasons  # home pages are drawn for their screenshot


def test_compressed_answers_are_archived_as_sent(crawled):
    from warcio.archiveiterator import ArchiveIterator

    with crawled.session() as session:
        rows = [(c, code) for c, kind, code in _captures(session, 1)
                if kind in ("portal", "service") and c.depth == 0 and not c.rendered and c.error_status == "ok"]
    codings = {}
    for capture, code in rows:
        with open(crawled.folder / capture.warc_file, "rb") as fh:
            fh.seek(capture.warc_offset)
            record = next(iter(ArchiveIterator(fh)))
        codings[(code, record.rec_headers.get_header("WARC-Target-URI"))] = (
            record.http_headers.get_header("Content-Encoding"), record.http_headers.get_header("Vary"))
    values = set(codings.values())
    assert ("gzip", "Accept-Encoding") in values  # most sites compress
    assert (None, None) in values  # 西岭省政务服务网 does not (compress: false)
