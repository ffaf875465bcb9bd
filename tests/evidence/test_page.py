"""Decoding, the visibility model and locators."""

from __future__ import annotations

import codecs

import pytest

from evidence import Page, detect
from evidence_fixtures import NOW, findings_of, page_of

GBK_PAGE = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=gb2312">
<title>示例县人民政府</title></head><body><div id="ft">版权所有：示例县人民政府 网站标识码：4399000012
<a href="https://beian.miit.gov.cn/">湘ICP备10001234号</a> 镕</div></body></html>"""


def test_gbk_page_declared_gb2312_with_gbk_only_character():
    body = GBK_PAGE.encode("gb18030")
    page = Page.from_bytes("http://www.example-county.gov.cn/", body)
    assert "镕" in page.text and "示例县人民政府" in page.text
    assert {f.indicator: f.value for f in detect(page, now=NOW)}["site.id_code"] == "4399000012"


def test_http_header_charset_wins_over_missing_meta():
    html = "<html><body><p>网站标识码：4399000013</p></body></html>"
    page = Page.from_bytes("http://x.gov.cn/", html.encode("gbk"), content_type="text/html; charset=GBK")
    assert "网站标识码" in page.text


def test_wrong_declaration_falls_back_to_detection():
    html = "<html><head><meta charset='utf-8'></head><body><p>主办单位：示例市人民政府办公室。网站标识码：4399000014。欢迎访问示例市人民政府门户网站。</p></body></html>"
    page = Page.from_bytes("http://x.gov.cn/", html.encode("gbk"))
    assert "网站标识码" in page.text


def test_utf8_bytes_behind_a_stale_gbk_declaration():
    html = "<html><head><meta charset='gb2312'></head><body><p>网站标识码：4399000020</p></body></html>"
    page = Page.from_bytes("http://x.gov.cn/", html.encode("utf-8"))
    assert page.encoding == "utf-8" and "网站标识码" in page.text


def test_missing_declaration_gbk():
    html = "<html><body><p>示例市人民政府主办，网站标识码：4399000015，政务公开，互动交流，政务服务。</p></body></html>"
    page = Page.from_bytes("http://x.gov.cn/", html.encode("gbk"))
    assert "政务公开" in page.text


def test_utf8_bom():
    html = "<html><body><p>网站标识码：4399000016</p></body></html>"
    page = Page.from_bytes("http://x.gov.cn/", codecs.BOM_UTF8 + html.encode("utf-8"))
    assert page.encoding.replace("-", "").lower().startswith("utf8")
    assert "网站标识码" in page.text


def test_stray_closing_html_does_not_truncate_the_page():
    html = "<html><body><div>头部</div></html><div id='f'>网站标识码：4399000017</div></body></html>"
    assert findings_of(html)["site.id_code"].value == "4399000017"


@pytest.mark.parametrize(
    "hidden",
    [
        '<div style="display:none">{}</div>',
        '<div style="visibility: hidden">{}</div>',
        "<div hidden>{}</div>",
        '<div class="ng-hide">{}</div>',
        "<script>var s = '{}';</script>",
        "<style>/* {} */</style>",
        "<!-- {} -->",
        '<iframe src="/footer.html">{}</iframe>',
        '<input type="hidden" value="{}">',
    ],
)
def test_hidden_text_is_not_evidence(hidden):
    code = "网站标识码：4399000018"
    html = "<html><body><p>正文</p>" + hidden.format(code) + "</body></html>"
    assert findings_of(html)["site.id_code"].verdict == "absent"


def test_tab_panel_opened_by_visible_tab_counts():
    html = """<html><body><div class="tabs"><span>要闻</span><span>公告</span></div>
    <ul id="con_1"><li><a href="/a/202601/t20260101_1.html">示例新闻一</a><span>2026-01-01</span></li></ul>
    <ul id="con_2" style="display:none"><li><a href="/a/202602/t20260203_2.html">示例公告二</a><span>2026-02-03</span></li></ul>
    </body></html>"""
    assert findings_of(html)["site.latest_update"].value == "2026-02-03"


def test_hover_submenu_under_visible_nav_item_counts():
    html = """<html><body><ul class="nav"><li><a href="/hd/">互动</a>
    <ul class="sub" style="display:none"><li><a href="/hd/xx/">书记信箱</a></li><li><a href="/hd/bj/">办件查询</a></li></ul></li></ul>
    </body></html>"""
    assert findings_of(html)["service.unified_query"].verdict == "present"


def test_hidden_list_without_trigger_does_not_count():
    html = """<html><body><div class="col"><ul class="quick" style="display:none;">
    <li><a href="http://10.1.1.1/wssb/">网上申报</a></li><li><a href="http://10.1.1.1/">办件查询</a></li></ul>
    <div class="title"><a href="/bmfw/">部门服务</a></div></div></body></html>"""
    found = findings_of(html)
    assert found["service.unified_application"].verdict == "absent"
    assert found["service.unified_query"].verdict == "absent"


LOCATOR_PAGE = """<html><body>
<div><a href="/a">首页</a><a href="/b">政务公开</a></div>
<div><div><span>说明</span></div><table><tr><td>网站标识码：</td><td>4399000019</td></tr></table></div>
<div id="dup"><a href="/hd/">互动交流</a></div><div id="dup"><a href="https://bszs.conac.cn/sitename?id=1"><img src="/red.png"></a></div>
<div id="toolbar"><a href="/wza/">无障碍</a></div>
</body></html>"""


def test_present_locator_matches_exactly_the_snippet_element():
    page = page_of(LOCATOR_PAGE)
    presents = [f for f in detect(page, now=NOW) if f.verdict == "present"]
    assert {f.indicator for f in presents} >= {"portal.gov_disclosure", "site.id_code", "portal.interaction_entry", "site.party_gov_label", "site.accessibility"}
    for finding in presents:
        matched = page.tree.cssselect(finding.locator)
        assert len(matched) == 1, finding
        element = matched[0]
        text = page.visible_text(element) or page.label_of(element)
        assert finding.snippet == text[:200], finding
        assert len(finding.snippet) <= 200


def test_locator_path_style_and_id_style():
    page = page_of(LOCATOR_PAGE)
    link = page.tree.cssselect("#toolbar > a")[0]
    assert page.locator(link) == "#toolbar > a:nth-of-type(1)"
    disclosure = page.tree.xpath("//a[@href='/b']")[0]
    assert page.locator(disclosure) == "html > body > div:nth-of-type(1) > a:nth-of-type(2)"


def test_image_link_href_is_absolute():
    finding = findings_of(LOCATOR_PAGE)["site.party_gov_label"]
    assert finding.href == "https://bszs.conac.cn/sitename?id=1"
    finding = findings_of(LOCATOR_PAGE)["portal.interaction_entry"]
    assert finding.href == "https://www.example-city.gov.cn/hd/"


def test_redirect_stub_is_flagged_on_absent_findings():
    html = "<html><head><script>window.top.location.href='/2026/index.shtml';</script></head><body></body></html>"
    page = Page.from_bytes("http://www.example.gov.cn/", html.encode())
    assert page.is_stub and page.redirect_url == "http://www.example.gov.cn/2026/index.shtml"
    finding = {f.indicator: f for f in detect(page, now=NOW)}["site.id_code"]
    assert finding.verdict == "absent"
    assert finding.details == {"stub": True, "redirect": "http://www.example.gov.cn/2026/index.shtml"}


def test_meta_refresh_redirect():
    html = "<html><head><meta http-equiv='refresh' content='0;url=https://zwfw.example.gov.cn/'></head><body></body></html>"
    assert Page.from_bytes("http://x.gov.cn/", html.encode()).redirect_url == "https://zwfw.example.gov.cn/"
