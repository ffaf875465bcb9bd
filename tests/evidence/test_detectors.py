"""Each detector on positive and negative structures (small inline pages)."""

from __future__ import annotations

import datetime as dt

import pytest

from evidence import Page, detect
from evidence_fixtures import findings_of

CASES = [
    # (indicator, kind, body html, expected verdict, expected value)
    ("site.id_code", "portal", "<p>网站标识码：5899000001</p>", "present", "5899000001"),
    ("site.id_code", "portal", "<p>网站标识码bm58000001</p>", "present", "bm58000001"),
    ("site.id_code", "portal", "<p>政府网站标识码:<b>5899</b>000002</p>", "present", "5899000002"),
    ("site.id_code", "portal", "<p>网站标识码：</p><p>请咨询</p><p>5899000003</p>", "absent", None),
    ("site.id_code", "portal", "<p>网站标识码：58990003</p>", "absent", None),
    ("site.icp_record", "portal", "<p>备案号：<a href='https://beian.miit.gov.cn'>明ICP备12345678号-2</a></p>", "present", "明ICP备12345678号-2"),
    ("site.icp_record", "portal", "<p>ICP备案号：待办理</p>", "absent", None),
    ("site.psb_record", "portal", "<p>明公网安备:580102000888</p>", "present", "明公网安备:580102000888"),
    ("site.psb_record", "portal", "<a href='http://www.beian.gov.cn/'><img src='ga.png'>明公网安备</a><span>58010202000101号</span>", "present", "明公网安备58010202000101号"),
    ("site.psb_record", "portal", "<p>公安备案办理中</p>", "absent", None),
    ("site.party_gov_label", "department", "<a href='https://bszs.conac.cn/sitename?method=show&id=1'><img src='red.png'></a>", "present", None),
    ("site.party_gov_label", "department", "<img src='/images/blue.png'><p>党政机关网站建设规范解读</p>", "absent", None),
    ("site.search", "service", "<form action='/s'><input name='searchword'><button>搜索</button></form>", "present", None),
    ("site.search", "service", "<input type='search' placeholder='请输入关键字'>", "present", None),
    ("site.search", "service", "<form action='/login'><input name='user'><input type='password' name='pwd'><button>登录</button></form>", "absent", None),
    ("site.search", "service", "<form action='/bjcx'><input name='slbh'><button>查询</button></form>", "absent", None),
    ("site.accessibility", "opendata", "<a href='/wza/'>无障碍浏览</a>", "present", None),
    ("site.accessibility", "opendata", "<button onclick='care()'>长者模式</button>", "present", None),
    ("site.accessibility", "opendata", "<ul><li><a href='/n/202611/t20261101_1.html'>我市推进无障碍环境建设</a><span>2026-11-01</span></li></ul>", "absent", None),
    ("portal.service_entry", "portal", "<a href='https://zwfw.example.gov.cn/'><img src='a.png'></a>", "present", None),
    ("portal.service_entry", "portal", "<a href='/bszn/'>办事指南</a>", "absent", None),
    ("portal.open_data_entry", "portal", "<a href='/sj/tjsj/'>统计数据</a><a href='/sj/tjgb/'>统计公报</a>", "absent", None),
    ("portal.open_data_entry", "portal", "<a href='https://data.example.gov.cn/'>开放数据</a>", "present", None),
    ("portal.interaction_entry", "portal", "<a href='/jiucuo/'>网站纠错</a>", "absent", None),
    ("portal.interaction_entry", "portal", "<a href='/hd/'>政民互动</a>", "present", None),
    ("portal.new_media_matrix", "portal", "<a href='https://weibo.com/x'><img src='wb.png' alt='微博'></a>", "present", None),
    ("portal.new_media_matrix", "portal", "<div class='share'>分享到：<a title='分享到新浪微博'>微博</a><a>微信</a></div>", "absent", None),
    ("portal.new_media_matrix", "portal", "<div><img src='qr.png'><p>示例市发布官方微信</p></div>", "present", None),
    ("portal.new_media_matrix", "portal", "<p><a href='http://service.weibo.com/share/share.php?url=x'>新浪微博</a></p>", "absent", None),
    ("portal.gov_disclosure", "department", "<a href='/xxgk/'>政府信息公开</a>", "present", None),
    ("portal.gov_disclosure", "department", "<ul><li><a href='/a/202611/t20261102_1.html'>市政府召开政务公开工作会议</a><span>2026-11-02</span></li></ul>", "absent", None),
    ("portal.department_list", "portal", "<ul><li><a href='http://fgw.example.gov.cn/'>市发展改革委</a></li><li><a href='http://jyj.example.gov.cn/'>市教育局</a></li><li><a href='http://gaj.example.gov.cn/'>市公安局</a></li></ul>", "present", "3"),
    ("portal.department_list", "portal", "<ul><li><a href='http://www.a.gov.cn/'>甲县人民政府</a></li><li><a href='http://www.b.gov.cn/'>乙县人民政府</a></li><li><a href='http://www.c.gov.cn/'>丙区人民政府</a></li></ul>", "absent", None),
    ("portal.department_list", "portal", "<a href='/bmwz/'>部门网站</a>", "present", None),
    ("service.unified_application", "service", "<a href='/apply'>在线办理</a>", "present", None),
    ("service.unified_application", "service", "<a href='/gr/'>个人办事</a><a href='/bszn/'>办事指南</a>", "absent", None),
    ("service.unified_query", "service", "<a href='/bj/'>办件查询</a>", "present", None),
    ("service.unified_query", "service", "<a href='/gjj/'>公积金账户查询</a><a href='/xkz/'>许可证信息查询</a>", "absent", None),
    ("service.unified_consultation", "service", "<a href='/zx/'>我要咨询</a>", "present", None),
    ("service.unified_consultation", "service", "<p>咨询电话：0999-12345</p>", "absent", None),
    ("service.good_bad_review", "service", "<div><h4>好差评</h4><a href='/pj'>非常满意</a></div>", "present", None),
    ("service.good_bad_review", "service", "<ul><li><a href='/n/2026/1101/1.html'>全省好差评工作推进会召开</a><span>2026-11-01</span></li></ul>", "absent", None),
    ("service.review_stats", "service", "<div><p>统计周期：2026年10月</p><p>好评率：<b>99.9%</b></p><p>差评整改率：100%</p></div>", "present", "99.9%"),
    ("service.review_stats", "service", "<ul><li><a href='/n/1.html'>好评率99.9%</a><span>2026-11-01</span></li></ul>", "absent", None),
    ("service.e_license", "service", "<a href='/elic/login'>电子营业执照登录</a>", "present", None),
    ("service.one_thing", "service", "<a href='/zmpd/'>最多跑一次</a>", "absent", None),
    ("service.one_thing", "service", "<a href='/yjs/'>高效办成一件事</a>", "present", None),
    ("service.no_application", "service", "<a href='/msjx/'>免申即享</a>", "present", None),
    ("service.certificate_free", "service", "<a href='/mzb/' title='免证办'><img src='mzb.png'></a>", "present", None),
    ("service.cross_province", "service", "<a href='/kstb/'>跨省通办</a>", "present", None),
    ("service.cross_province", "service", "<ul><li><a href='/n/1.html'>我省推进“跨省通办”</a></li></ul>", "absent", None),
    ("opendata.dataset_catalog", "opendata", "<div class='stat'><b>1,024</b><span>数据集</span></div>", "present", "1024"),
    ("opendata.dataset_catalog", "opendata", "<p>截至目前，平台累计开放数据集3000余个，覆盖交通、教育、医疗、文旅、市场监管等二十余个领域，数据质量持续提升。</p>", "absent", None),
    ("opendata.satisfaction_rating", "opendata", "<span class='score'>评分：4.5</span>", "present", None),
    ("opendata.api_access", "opendata", "<a href='/api/'>API接口</a>", "present", None),
    ("opendata.data_request", "opendata", "<a href='/need/'>数据需求</a>", "present", None),
    ("opendata.download_formats", "opendata", "<a href='/f.csv'>CSV</a><a href='/f.json'>JSON</a>", "present", "CSV,JSON"),
    ("opendata.download_formats", "opendata", "<p>支持CSV、JSON等多种格式下载的数据集已超过一千个，欢迎使用。</p>", "absent", None),
    ("interaction.consultation_channel", "interaction", "<form action='/ly'><textarea name='c'></textarea><button type='submit'>提交</button></form>", "present", None),
    ("interaction.consultation_channel", "interaction", "<a href='/ly/list'>留言选登</a>", "absent", None),
    ("interaction.reply_public", "interaction", "<ul><li><span>[已回复]</span><a href='/m/1'>路灯不亮</a></li></ul>", "present", None),
    ("interaction.reply_public", "interaction", "<ul><li><a href='/m/1'>路灯不亮</a><span>留言时间：2026-11-01</span></li></ul>", "absent", None),
    ("interaction.reply_satisfaction", "interaction", "<table><tr><td>答复内容</td><td>已处理。</td></tr><tr><td>评价</td><td><a href='#'>满意</a><a href='#'>不满意</a></td></tr></table>", "present", None),
    ("interaction.reply_satisfaction", "interaction", "<div><h4>好差评</h4><span>非常满意</span><span>不满意</span></div>", "absent", None),
    # structure, not keywords
    ("portal.service_entry", "portal", "<ul><li><a href='/dt/1.html'>市政务服务中心延长周末服务时间</a></li></ul>", "absent", None),
    ("portal.service_entry", "portal", "<a href='/zwfw/'>内蒙古自治区政务服务网</a>", "present", None),
    ("interaction.reply_public", "portal", "<h3>办件公示</h3><table><tr><td>食品经营许可</td><td>已办结</td></tr></table>", "absent", None),
    ("interaction.reply_public", "portal", "<h3>来信选登</h3><table><tr><td>路灯不亮</td><td>已办结</td></tr></table>", "present", None),
    ("opendata.satisfaction_rating", "portal", "<a href='/myd/'>群众满意度调查</a>", "absent", None),
    ("opendata.data_request", "portal", "<div><h4>依申请公开</h4><a href='/ysq/'>我要申请</a></div>", "absent", None),
    ("site.accessibility", "portal", "<ul><li><a href='/n/1.html'>关怀困难群众</a></li></ul>", "absent", None),
    ("service.one_thing", "portal", "<p>附件：<a href='/up/yjs_qd.xls'>1.一件事一次办事项清单</a></p>", "absent", None),
    ("portal.gov_disclosure", "portal", "<div class='blk'><h3>政务公开</h3><ul><li><a href='/a/1.html'>某某工作进展</a></li></ul><a href='/zwgk/'>更多&gt;&gt;</a></div>", "present", None),
    ("site.search", "portal", "<div class='top'><a class='search-icon' href='javascript:;'></a><div style='display:none'><form action='/s'><input name='q'></form></div></div>", "present", None),
]


@pytest.mark.parametrize("indicator,kind,body,verdict,value", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_detector_structures(indicator, kind, body, verdict, value):
    html = f"<html><head><meta charset='utf-8'></head><body>{body}</body></html>"
    finding = findings_of(html, kind=kind)[indicator]
    assert finding.verdict == verdict, finding
    if value is not None:
        assert finding.value == value
    if verdict == "present":
        assert finding.locator and finding.url
    else:
        assert finding.checked


def test_latest_update_ignores_future_script_and_prose_dates():
    html = """<html><body>
    <script>var d = '2026-11-25';</script>
    <p>会议要求在2026年11月24日前完成全部整改工作，并于2026年11月23日报送情况，确保各项任务落实到位。</p>
    <ul><li><a href="/a/202611/t20261110_1.html">示例新闻</a><span>2026-11-10</span></li>
    <li><a href="/a/202612/t20261201_2.html">未来新闻</a><span>2026-12-01</span></li></ul>
    </body></html>"""
    page = Page.from_bytes("http://x.gov.cn/", html.encode())
    finding = {f.indicator: f for f in detect(page, now=dt.date(2026, 11, 26))}["site.latest_update"]
    assert finding.value == "2026-11-10"
    later = {f.indicator: f for f in detect(page, now=dt.date(2026, 12, 2))}["site.latest_update"]
    assert later.value == "2026-12-01"


def test_latest_update_prefers_article_information():
    html = """<html><body><div class="info">发布时间：2026-10-01</div>
    <ul class="side"><li><a href="/b.html">相关</a><span>2026-11-01</span></li></ul></body></html>"""
    assert findings_of(html)["site.latest_update"].value == "2026-10-01"


def test_latest_update_year_from_item_url_and_today_widget_ignored():
    html = """<html><body><div>今天是：2026年11月26日 星期四</div>
    <ul><li><span>03-15</span><a href="./ggtz/202603/t20260315_1.html">通知</a></li></ul></body></html>"""
    assert findings_of(html)["site.latest_update"].value == "2026-03-15"


def test_review_stats_details():
    html = """<html><body><section><h3>好差评数据公开</h3><p>统计周期：2026年10月1日—2026年10月31日</p>
    <div>评价总量 <b>1,234</b></div><div>好评率 <b>99.5%</b></div><div>差评整改率 <b>100%</b></div></section></body></html>"""
    finding = findings_of(html, kind="service")["service.review_stats"]
    assert finding.value == "99.5%"
    assert finding.details == {
        "good_review_rate": "99.5%", "review_count": "1,234", "bad_review_rectification_rate": "100%",
        "period": "2026年10月1日—2026年10月31日",
    }


def test_department_list_details_carry_the_links():
    html = """<html><body><ul><li><a href='http://fgw.example.gov.cn/'>市发展改革委</a></li>
    <li><a href='http://jyj.example.gov.cn/'>市教育局</a></li><li><a href='http://gaj.example.gov.cn/'>市公安局</a></li></ul></body></html>"""
    finding = findings_of(html)["portal.department_list"]
    assert [link["text"] for link in finding.details["links"]] == ["市发展改革委", "市教育局", "市公安局"]


def test_headline_link_is_not_the_feature_but_nav_item_is():
    news = "<ul class='news'><li><a href='/n/202611/t20261101_1.html'>全市推进一件事一次办改革</a><span>2026-11-01</span></li></ul>"
    nav = "<ul class='nav'><li><a href='/yjs/'>一件事一次办</a></li></ul>"
    assert findings_of(f"<html><body>{news}</body></html>", kind="service")["service.one_thing"].verdict == "absent"
    found = findings_of(f"<html><body>{news}{nav}</body></html>", kind="service")["service.one_thing"]
    assert found.verdict == "present" and found.href == "https://www.example-city.gov.cn/yjs/"


def test_menu_opened_by_a_handler_elsewhere_is_visible():
    html = """<html><body><a href="/bsfw/" onmouseover="showMenu('menu3')">办事服务</a>
    <div id="menu3" style="display:none"><a href="/bsfw/bjcx/">办件查询</a></div>
    <div id="menu9" style="display:none"><a href="/old/">跨省通办</a></div></body></html>"""
    found = findings_of(html, kind="service")
    assert found["service.unified_query"].verdict == "present"
    assert found["service.cross_province"].verdict == "absent"


def test_layout_row_is_not_a_news_item():
    html = """<html><body><table><tr>
    <td><table><tr><td><a href="/n/1.html">示例新闻</a></td><td>2026-11-01</td></tr></table></td>
    <td><a href="/hd/jzxx/" title="局长信箱"><img src="x.jpg"></a></td></tr></table></body></html>"""
    assert findings_of(html)["interaction.consultation_channel"].verdict == "present"


def test_latest_update_reads_an_unlabelled_article_info_line():
    html = """<html><body><h1>标题</h1><div class="info">2026-10-12 08:30 来源：示例市人民政府办公室 字号：大 中 小</div>
    <p>正文提到2026年11月01日的安排。</p></body></html>"""
    assert findings_of(html)["site.latest_update"].value == "2026-10-12"


def test_signature_date_inside_document_text_is_not_a_publish_date():
    html = """<html><body><div class="content"><p>各市、县人民政府，省政府各部门：</p>
    <p>省人民政府同意省文化和旅游厅确定的代表性项目名录，现予公布，请认真组织实施。</p>
    <p class="sign">示例省人民政府<br>2026年9月28日</p></div></body></html>"""
    assert findings_of(html)["site.latest_update"].verdict == "absent"


def test_date_closing_a_link_label_counts():
    html = """<html><body><ul class="gg"><li><a href="/gg/1.html">关于停水的通知(2026-11-12)</a></li></ul>
    <p><a href="/a/2.html">关于2026年11月20日起实施新规的说明</a></p></body></html>"""
    assert findings_of(html)["site.latest_update"].value == "2026-11-12"
