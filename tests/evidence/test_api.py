"""The API the crawler integrates against."""

from __future__ import annotations

import json
from pathlib import Path

import evidence
from evidence import DETECTOR_VERSION, Finding, Page, detect, discover_sources, indicators_for, load_catalogue

from evidence_fixtures import NOW, findings_of, page_of

FOOTER = """
<html><head><meta charset="utf-8"><title>示例市人民政府</title></head><body>
<div class="header"><form action="/search/index.jsp" name="searchform">
  <input type="text" name="searchword" placeholder="请输入关键字"><input type="submit" value="搜索"></form></div>
<ul class="news"><li><a href="/xw/202611/t20261120_1.html">示例市召开常务会议</a><span>2026-11-20</span></li>
<li><a href="/xw/202611/t20261118_2.html">示例市推进营商环境建设</a><span>2026-11-18</span></li></ul>
<div class="footer"><p>主办单位：示例市人民政府办公室 网站标识码：<span>3399</span><span>000001</span></p>
<p><a href="https://beian.miit.gov.cn/">示ICP备12345678号-2</a>
<a href="http://www.beian.gov.cn/portal/registerSystemInfo?recordcode=33990202000001">示公网安备 33990202000001号</a></p></div>
</body></html>
"""


def test_public_names():
    for name in ("Page", "Finding", "detect", "discover_sources", "indicators_for", "load_catalogue", "DETECTOR_VERSION"):
        assert hasattr(evidence, name)
    assert isinstance(DETECTOR_VERSION, str) and DETECTOR_VERSION


def test_page_attributes():
    page = Page.from_bytes("https://www.example-city.gov.cn/", FOOTER.encode("utf-8"), content_type="text/html; charset=utf-8")
    assert page.url == "https://www.example-city.gov.cn/"
    assert page.kind == "portal"
    assert page.encoding == "utf-8"
    assert "网站标识码" in page.text
    assert page.tree.tag == "html"


def test_one_finding_per_applicable_indicator_except_crawler_ones():
    for kind in ("portal", "service", "opendata", "interaction", "department", "newmedia"):
        page = page_of(FOOTER, kind=kind)
        got = [f.indicator for f in detect(page, now=NOW)]
        expected = [i.id for i in indicators_for(kind) if i.id not in ("site.reachable", "site.broken_links")]
        assert got == expected
        assert "site.reachable" in [i.id for i in indicators_for(kind)]
        assert "site.broken_links" in [i.id for i in indicators_for(kind)]


def test_site_basics_values():
    found = findings_of(FOOTER)
    assert found["site.id_code"].value == "3399000001"
    assert found["site.icp_record"].value == "示ICP备12345678号-2"
    assert found["site.icp_record"].href == "https://beian.miit.gov.cn/"
    assert found["site.psb_record"].value == "示公网安备 33990202000001号"
    assert found["site.search"].verdict == "present"
    assert found["site.search"].href == "https://www.example-city.gov.cn/search/index.jsp"
    assert found["site.latest_update"].value == "2026-11-20"


def test_finding_to_dict_is_json_safe():
    found = findings_of(FOOTER)
    record = found["site.id_code"].to_dict()
    assert set(record) == {
        "indicator", "verdict", "value", "url", "href", "locator", "snippet", "checked", "details", "detector_version",
    }
    json.dumps(record, ensure_ascii=False)
    assert isinstance(found["site.id_code"], Finding)


def test_absent_says_what_was_checked():
    found = findings_of("<html><body><p>欢迎访问</p></body></html>")
    for indicator in ("site.id_code", "site.icp_record", "site.psb_record", "site.search", "site.latest_update"):
        finding = found[indicator]
        assert finding.verdict == "absent"
        assert finding.checked.startswith("checked") and any(ch.isdigit() for ch in finding.checked)
        assert finding.locator is None and finding.value is None


def test_catalogue_loads_with_exact_ids():
    ids = {i.id for i in load_catalogue().indicators}
    assert ids == {
        "site.reachable", "site.id_code", "site.icp_record", "site.psb_record", "site.party_gov_label",
        "site.search", "site.accessibility", "site.latest_update", "site.broken_links",
        "portal.service_entry", "portal.open_data_entry", "portal.interaction_entry", "portal.new_media_matrix",
        "portal.gov_disclosure", "portal.department_list",
        "service.unified_application", "service.unified_query", "service.unified_consultation",
        "service.good_bad_review", "service.review_stats", "service.e_license", "service.one_thing",
        "service.no_application", "service.certificate_free", "service.cross_province",
        "opendata.dataset_catalog", "opendata.satisfaction_rating", "opendata.api_access",
        "opendata.data_request", "opendata.download_formats",
        "interaction.consultation_channel", "interaction.reply_public", "interaction.reply_satisfaction",
    }


def test_discover_sources_kinds_and_dedup():
    html = """<html><body><ul class="nav">
    <li><a href="https://zwfw.example-prov.gov.cn/">政务服务</a></li>
    <li><a href="https://zwfw.example-prov.gov.cn/">政务服务</a></li>
    <li><a href="https://data.example-prov.gov.cn/">数据开放</a></li>
    <li><a href="/hdjl/index.html">互动交流</a></li>
    <li><a href="/zwgk/index.html">政务公开</a></li>
    <li><a href="/fw/index.html">政务服务</a></li>
    <li><a href="https://weibo.com/examplecity"><img src="/img/wb.png" alt="微博"></a></li></ul>
    <div class="links"><a href="http://fgw.example-city.gov.cn/">市发展改革委</a>
    <a href="http://jyj.example-city.gov.cn/">市教育局</a><a href="http://gaj.example-city.gov.cn/">市公安局</a></div>
    </body></html>"""
    sources = discover_sources(page_of(html))
    pairs = {(s.kind, s.url) for s in sources}
    assert ("service", "https://zwfw.example-prov.gov.cn/") in pairs
    assert ("opendata", "https://data.example-prov.gov.cn/") in pairs
    assert ("interaction", "https://www.example-city.gov.cn/hdjl/index.html") in pairs
    assert ("newmedia", "https://weibo.com/examplecity") in pairs
    assert ("department", "http://fgw.example-city.gov.cn/") in pairs
    assert ("service", "https://www.example-city.gov.cn/fw/index.html") not in pairs  # same site
    assert len(pairs) == len(sources)
    for source in sources:
        assert source.kind in {"service", "opendata", "interaction", "department", "newmedia"}
        assert source.url.startswith("http")
        assert page_of(html).tree.cssselect(source.locator)


def test_evidence_imports_neither_scrapy_nor_sqlalchemy():
    import subprocess
    import sys

    code = "import sys, evidence; bad = [m for m in ('scrapy', 'sqlalchemy') if m in sys.modules]; print(bad)"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_detect_accepts_datetime_now():
    import datetime as dt

    page = page_of(FOOTER)
    finding = {f.indicator: f for f in detect(page, now=dt.datetime(2026, 11, 19, 8, 0))}["site.latest_update"]
    assert finding.value == "2026-11-18"
