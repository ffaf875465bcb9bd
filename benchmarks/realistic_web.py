"""A realistic fictional government portal on loopback, for crawl benchmarks.

Deterministic from a seed: ``pages`` pages of about ``page_kb`` KB, built the way real Chinese
government portals are, so that what the crawler and the detectors do per page is what they do
on real sites:

* every page carries the whole navigation: seven columns, each with six sub-columns, some with a
  third level, hidden by classes of a stylesheet (``.nav .sub{display:none}`` and ``:hover``),
  never by inline styles; with the top bar, quick entries, news lists and footer every page has
  well over 80 links;
* column pages hold news lists of 20–40 dated items behind tabs, article pages an article and a
  list of related items; inline scripts and a ``<select>`` of department sites as real pages do;
* the footer shows what real portals show: 网站标识码, ``京ICP备…号``, ``京公网安备…号``, the
  党政机关 emblem link, 网站地图, 无障碍, 关于我们, 联系我们 and 政务服务 / 互动交流 / 数据开放
  entries;
* half the pages are GBK (``Content-Type: text/html; charset=gbk`` and a ``<meta>``), half UTF-8;
* every page is reachable from the home page within :attr:`RealisticWeb.max_depth` hops (the
  navigation reaches every column page in one; each page lists its children in a 20-way tree).

:class:`WebServer` serves it on ``127.0.0.1`` (a free port): gzip when the client accepts it (the
compressed bodies are made once, at start, and kept in a spool file, so a 20,000-page site costs
little memory), ``ETag`` and ``Last-Modified`` with ``304`` answers to conditional requests, a
``robots.txt`` and the few style, script and image files pages load. Links that leave the site go
only to the ICP, public-security and emblem registries, which no crawler here follows; the
service, open-data and interaction entries are columns of the site itself, and the department and
city sites of the drop-down lists are paths of it too (a crawler never fetches them: they are
``<option>`` values, not links), so nothing is fetched from another host.

Text is drawn from word lists; nothing is taken from real pages.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import hashlib
import html
import os
import random
import tempfile
import threading
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

SEED = 20261203
SITE_NAME = "云海省人民政府"
SITE_ID = "9900000001"
ICP = "京ICP备05071234号-2"
PSB_CODE = "11010502030419"
TODAY = dt.date(2026, 11, 20)
ON = ' class="on"'
FANOUT = 20  # children a page lists (its news list), so depth grows as log20(pages)

# (name, slug, [(sub-column name, slug, [third-level names])])
COLUMNS: list[tuple[str, str, list[tuple[str, str, list[str]]]]] = [
    ("政务公开", "zwgk", [
        ("政府信息公开指南", "zn", []), ("政府信息公开目录", "ml", ["法定主动公开内容", "部门信息公开", "市县信息公开"]),
        ("政府信息公开年报", "nb", []), ("政策文件", "zcwj", ["省政府文件", "省政府办公厅文件", "规范性文件"]),
        ("政策解读", "zcjd", ["文字解读", "图片解读"]), ("人事信息", "rsxx", [])]),
    ("政务服务", "zwfw", [
        ("个人办事", "grbs", ["生育收养", "户籍办理", "社会保障"]), ("法人办事", "frbs", ["设立变更", "准营准办"]),
        ("高效办成一件事", "yjs", []), ("跨省通办", "kstb", []), ("便民服务", "bmfw", ["教育", "医疗", "交通出行"]),
        ("办事指南", "bszn", [])]),
    ("互动交流", "hdjl", [
        ("省长信箱", "szxx", ["我要写信", "信件查询", "来信选登"]), ("在线访谈", "zxft", []), ("征集调查", "zjdc", []),
        ("咨询投诉", "zxts", []), ("常见问题", "cjwt", []), ("12345热线", "rx", [])]),
    ("数据开放", "sjkf", [
        ("数据目录", "sjml", ["数据集", "数据接口"]), ("数据发布", "sjfb", []), ("统计数据", "tjsj", ["统计公报", "统计年鉴"]),
        ("数据解读", "sjjd", []), ("接口服务", "jkfw", []), ("数据需求", "sjxq", [])]),
    ("新闻中心", "xwzx", [
        ("云海要闻", "yhyw", []), ("部门动态", "bmdt", []), ("市县动态", "sxdt", ["海州市", "临江市", "东港市"]),
        ("图片新闻", "tpxw", []), ("视频新闻", "spxw", []), ("新闻发布会", "xwfbh", [])]),
    ("走进云海", "zjyh", [
        ("省情概况", "sqgk", []), ("历史沿革", "lsyg", []), ("行政区划", "xzqh", []), ("自然地理", "zrdl", []),
        ("人口民族", "rkmz", []), ("经济发展", "jjfz", [])]),
    ("专题专栏", "ztzl", [
        ("优化营商环境", "yshj", []), ("数字政府建设", "szzf", []), ("乡村振兴", "xczx", []), ("安全生产", "aqsc", []),
        ("生态环境保护", "sthj", []), ("民生实事", "mssx", [])]),
]
FOOTER_PAGES = [("网站地图", "wzdt"), ("关于我们", "gywm"), ("联系我们", "lxwm"), ("网站声明", "wzsm"), ("无障碍服务", "wza")]

SUBJECTS = ["省政府常务会议", "省政府办公厅", "省发展改革委", "省财政厅", "省教育厅", "省卫生健康委", "省生态环境厅",
            "省市场监管局", "省大数据局", "省人力资源社会保障厅", "省住房城乡建设厅", "省交通运输厅", "省农业农村厅",
            "省商务厅", "省应急管理厅", "省统计局", "省医保局", "海州市", "临江市", "东港市", "青川市", "云台市"]
VERBS = ["召开", "研究部署", "扎实推进", "全面启动", "印发", "发布", "专题调研", "督导检查", "深入开展", "持续优化"]
OBJECTS = ["优化营商环境工作", "政务服务“一网通办”改革", "今冬明春能源保供工作", "公共数据授权运营试点",
           "高效办成一件事重点事项清单", "城乡居民医疗保险参保工作", "安全生产专项整治三年行动", "义务教育优质均衡发展",
           "数字政府建设实施方案", "政府网站与政务新媒体检查", "乡村振兴重点帮扶工作", "重大项目建设推进会",
           "稳就业促增长若干措施", "生态环境保护督察整改", "老旧小区改造计划", "科技创新引领产业升级",
           "12345政务服务便民热线运行情况", "营商环境评价指标体系", "政府信息公开工作年度报告", "防汛抗旱应急预案"]
SENTENCES = ["会议强调，要坚持以人民为中心的发展思想，把{o}作为一项重要政治任务抓紧抓实。",
             "{s}有关负责同志表示，下一步将进一步完善工作机制，推动{o}取得更大成效。",
             "据统计，截至{y}年{m}月底，全省累计完成{n}项重点任务，完成率达到{p}%。",
             "各地各部门要压实责任、细化措施，确保{o}各项要求落到实处，切实增强人民群众的获得感、幸福感、安全感。",
             "{s}将会同有关部门加强统筹协调，定期调度工作进展，及时研究解决{o}中遇到的困难和问题。",
             "文件明确，到{y}年，全省政务服务事项网上可办率稳定在{p}%以上，“跑一次”事项占比超过{q}%。",
             "会上，{s}、{s2}分别汇报了{o}有关情况，与会人员进行了认真讨论。",
             "下一步，全省将聚焦企业和群众关切，持续深化“放管服”改革，以{o}为抓手推动高质量发展。"]
SOURCES = ["云海省人民政府办公厅", "云海日报", "省政府新闻办公室", "省大数据发展管理局", "新华网云海频道"]
DEPARTMENTS = ["省发展和改革委员会", "省教育厅", "省科学技术厅", "省工业和信息化厅", "省民族宗教事务委员会", "省公安厅",
               "省民政厅", "省司法厅", "省财政厅", "省人力资源和社会保障厅", "省自然资源厅", "省生态环境厅",
               "省住房和城乡建设厅", "省交通运输厅", "省水利厅", "省农业农村厅", "省商务厅", "省文化和旅游厅",
               "省卫生健康委员会", "省退役军人事务厅", "省应急管理厅", "省审计厅", "省市场监督管理局", "省统计局",
               "省医疗保障局", "省大数据发展管理局", "省林业局", "省体育局"]
CITIES = ["海州市", "临江市", "东港市", "青川市", "云台市", "白石市", "南屏市", "北原市", "西岭市", "金沙市"]

STYLESHEET = b"""*{margin:0;padding:0;box-sizing:border-box}body{font:14px/1.8 "Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:#333}
a{color:#333;text-decoration:none}a:hover{color:#0b4ea2}ul{list-style:none}.w1200{width:1200px;margin:0 auto}
.clearfix:after{content:"";display:block;clear:both}.fl{float:left}.fr{float:right}.hide{display:none}
.topbar{background:#eef3f9;height:34px;line-height:34px;font-size:12px}.topbar .fr a{margin-left:14px}
.header{background:#0b4ea2;height:130px}.logo{float:left;color:#fff;padding-top:30px;font-size:34px}
.search{float:right;padding-top:40px}.search input{height:34px}.nav{background:#073c80;position:relative;z-index:20}
.nav .nav-list>li{float:left;width:12.5%;text-align:center;position:relative}.nav .nav-list>li>a{color:#fff;line-height:48px;display:block}
.nav .sub{display:none;position:absolute;left:0;top:48px;width:220px;background:#fff;box-shadow:0 2px 6px #999}
.nav .nav-list>li:hover .sub{display:block}.nav .sub li{position:relative;text-align:left;padding-left:14px}
.nav .sub3{display:none;position:absolute;left:220px;top:0;width:180px;background:#f4f7fb}.nav .sub li:hover .sub3{display:block}
.quick{margin:12px auto}.quick a{display:inline-block;width:16%;text-align:center;line-height:60px;background:#f0f5fb;margin-right:0.5%}
.tab-hd span{display:inline-block;padding:0 16px;cursor:pointer}.tab-hd span.on{border-bottom:2px solid #0b4ea2}
.news-list li{line-height:34px;border-bottom:1px dashed #e3e3e3;overflow:hidden}.news-list li span.date{float:right;color:#999}
.article h1{font-size:26px;text-align:center;color:#0b4ea2}.article .content p{text-indent:2em;margin:12px 0}
.side{width:300px}.main-l{width:860px}.page-nav a{margin:0 4px}.links select{width:220px;height:30px}
.footer{background:#0b4ea2;color:#dfe9f7;font-size:13px;padding:20px 0;margin-top:20px}.footer a{color:#dfe9f7}
.footer p{text-align:center;line-height:26px}.conac{float:left;margin:10px 30px}
"""
ASSETS: dict[str, tuple[str, bytes]] = {
    "/css/main.css": ("text/css", STYLESHEET),
    "/js/jquery.min.js": ("application/javascript", b"/*! jQuery stand-in */window.jQuery=window.$=function(){return{on:function(){}}};\n"),
    "/js/common.js": ("application/javascript",
                      b"(function(){var t=document.querySelectorAll('.tab-hd span');for(var i=0;i<t.length;i++){"
                      b"t[i].onmouseover=function(){var s=this.parentNode.children,b=this.parentNode.nextElementSibling.children;"
                      b"for(var j=0;j<s.length;j++){s[j].className=s[j]===this?'on':'';b[j].className=s[j]===this?'news-list':'news-list hide';}};}})();\n"),
    "/js/jiucuo.js": ("application/javascript", b"/* error-report widget */\n"),
    "/images/logo.svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="60" height="60"><circle cx="30" cy="30" r="28" fill="#c00"/></svg>'),
    "/images/red.svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="110" height="55"><rect width="110" height="55" fill="#d00"/></svg>'),
    "/images/gaba.svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><circle cx="8" cy="8" r="7" fill="#c90"/></svg>'),
    "/favicon.ico": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"/>'),
    "/robots.txt": ("text/plain", b"User-agent: *\nDisallow: /search\n"),
}


@dataclass
class Section:
    """A page of the navigation tree (home, column, sub-column, third level) or of the footer."""

    name: str
    path: str
    level: int  # 0 home, 1 column, 2 sub-column, 3 third level, 9 footer page
    parent: int | None = None
    subs: list[int] = field(default_factory=list)


def _sections() -> list[Section]:
    """Home, the columns, their sub-columns and third levels (breadth first), the footer pages."""
    out = [Section("首页", "/", 0)]
    column_ids = []
    for name, slug, _ in COLUMNS:
        out.append(Section(name, f"/{slug}/index.html", 1, 0))
        column_ids.append(len(out) - 1)
    thirds: list[tuple[int, str, str]] = []
    for column_id, (_, slug, subs) in zip(column_ids, COLUMNS):
        for sub_name, sub_slug, third in subs:
            out.append(Section(sub_name, f"/{slug}/{sub_slug}/index.html", 2, column_id))
            out[column_id].subs.append(len(out) - 1)
            thirds += [(len(out) - 1, t, f"/{slug}/{sub_slug}/{k + 1:02d}/index.html") for k, t in enumerate(third)]
    for parent, name, path in thirds:
        out.append(Section(name, path, 3, parent))
        out[parent].subs.append(len(out) - 1)
    for name, slug in FOOTER_PAGES:
        out.append(Section(name, f"/{slug}/index.html", 9, 0))
    return out


class RealisticWeb:
    """The page graph and the bytes of each page; pages are made on demand, deterministically."""

    def __init__(self, pages: int, page_kb: float = 60, seed: int = SEED) -> None:
        if pages < 10:
            raise ValueError("a realistic web needs at least 10 pages")
        self.pages, self.target_bytes, self.seed = pages, int(page_kb * 1024), seed
        sections = _sections()
        # Small sites keep a third of their pages for articles; the navigation of a section that
        # does not exist points at the nearest ancestor that does.
        self.section_count = min(len(sections), max(8, pages // 3))
        self.sections = sections[:self.section_count]
        self._all_sections = sections
        rng = random.Random(seed)
        self.articles = pages - self.section_count
        self.titles = [s.name for s in self.sections] + [self._title(rng) for _ in range(self.articles)]
        self.paths = [s.path for s in self.sections] + [self._article_path(i) for i in range(self.section_count, pages)]
        self.index = {p: i for i, p in enumerate(self.paths)}
        self.max_depth = self._depth()

    # --- graph ------------------------------------------------------------------------
    def charset(self, i: int) -> str:
        return "gbk" if i % 2 else "utf-8"

    def date(self, i: int) -> dt.date:
        if i < self.section_count:
            return TODAY
        # Newer articles have smaller numbers: a list sorted by date is sorted by number.
        return TODAY - dt.timedelta(days=(i - self.section_count) * 700 // max(1, self.articles))

    def _article_path(self, i: int) -> str:
        day = self.date(i)
        column = COLUMNS[i % len(COLUMNS)][1]
        return f"/{column}/{day.year}{day.month:02d}/t{day.year}{day.month:02d}{day.day:02d}_{100000 + i}.html"

    def children(self, i: int) -> list[int]:
        """The pages page ``i`` lists as its own (a FANOUT-way tree over the articles)."""
        first = self.section_count + i * FANOUT
        return list(range(first, min(self.pages, first + FANOUT)))

    def href(self, path: str) -> str:
        """The link to a section given by its path in the full tree (its nearest existing ancestor)."""
        k = next(n for n, section in enumerate(self._all_sections) if section.path == path)
        return self.paths[self.section_link(k)]

    def section_link(self, k: int) -> int:
        """The page a navigation entry of section ``k`` (of the full tree) links to."""
        while k >= self.section_count:
            k = self._all_sections[k].parent or 0
        return k

    def _depth(self) -> int:
        depth = {0: 0}
        queue = deque([0])
        while queue:
            i = queue.popleft()
            for j in self.links(i):
                if j not in depth:
                    depth[j] = depth[i] + 1
                    queue.append(j)
        if len(depth) != self.pages:
            raise AssertionError(f"{self.pages - len(depth)} page(s) unreachable")  # a generator bug
        return max(depth.values())

    def links(self, i: int) -> set[int]:
        """Pages that page ``i`` links to (the navigation, its lists and the footer)."""
        out = {self.section_link(k) for k in range(len(self._all_sections))}
        out.update(self._list_items(i, random.Random(self._page_seed(i))))
        return out

    def _page_seed(self, i: int) -> int:
        return self.seed * 1000003 + i

    def _list_items(self, i: int, rng: random.Random) -> list[int]:
        """20–40 items: the page's children, then other articles; newest first."""
        items = self.children(i)
        want = rng.randint(20, 40)
        if self.articles:
            tries = 0
            while len(items) < min(want, self.articles) and tries < 400:
                j = self.section_count + int(rng.random() ** 2 * self.articles)  # newer ones more often
                tries += 1
                if j != i and j not in items:
                    items.append(j)
        return sorted(items)

    # --- text -------------------------------------------------------------------------
    @staticmethod
    def _title(rng: random.Random) -> str:
        return f"{rng.choice(SUBJECTS)}{rng.choice(VERBS)}{rng.choice(OBJECTS)}"

    @staticmethod
    def _sentence(rng: random.Random) -> str:
        subject, other = rng.sample(SUBJECTS, 2)
        return rng.choice(SENTENCES).format(s=subject, s2=other, o=rng.choice(OBJECTS), y=rng.choice([2025, 2026, 2027]),
                                            m=rng.randint(1, 12), n=rng.randint(20, 900), p=rng.randint(80, 99),
                                            q=rng.randint(60, 95))

    # --- HTML -------------------------------------------------------------------------
    def _nav(self, current: int) -> str:
        top_of = current
        while top_of < self.section_count and self.sections[top_of].level > 1:
            top_of = self.sections[top_of].parent or 0
        on = ' class="on"' if current == 0 else ""
        parts = [f'<li{on}><a href="/" class="nav-a">首页</a></li>']
        sections = self._all_sections
        for k, column in enumerate(sections):
            if column.level != 1:
                continue
            on = ' class="on"' if k == top_of else ""
            subs = []
            for s in column.subs:
                third = "".join(
                    f'<li><a href="{self.paths[self.section_link(t)]}" title="{sections[t].name}">{sections[t].name}</a></li>'
                    for t in sections[s].subs)
                third = f'<ul class="sub3">{third}</ul>' if third else ""
                subs.append(f'<li><a href="{self.paths[self.section_link(s)]}" title="{sections[s].name}">'
                            f'<span>{sections[s].name}</span></a>{third}</li>')
            parts.append(f'<li{on}><a href="{self.paths[self.section_link(k)]}" class="nav-a">{column.name}</a>'
                         f'<div class="sub"><ul>{"".join(subs)}</ul></div></li>\n')
        return f'<div class="nav"><ul class="nav-list w1200 clearfix">{"".join(parts)}</ul></div>\n'

    def _item(self, j: int, with_date: bool = True) -> str:
        title = html.escape(self.titles[j])
        date = f'<span class="date">{self.date(j).isoformat()}</span>' if with_date else ""
        return f'<li><a href="{self.paths[j]}" target="_blank" title="{title}">{title}</a>{date}</li>'

    def _lists(self, i: int, rng: random.Random) -> str:
        items = self._list_items(i, rng)
        if i < self.section_count:
            # Section pages: the list behind tabs (one panel shown, the others hidden by class).
            names = ["最新发布", "通知公告", "政策解读"] if i else ["云海要闻", "通知公告", "政策文件"]
            panels, per = [], max(1, -(-len(items) // len(names)))
            for n in range(len(names)):
                chunk = items[n * per:(n + 1) * per]
                klass = "news-list" if n == 0 else "news-list hide"
                panels.append(f'<ul class="{klass}">' + "\n".join(self._item(j) for j in chunk) + "</ul>")
            tabs = "".join(f'<span{ON if n == 0 else ""}>{name}</span>' for n, name in enumerate(names))
            pager = (f'<div class="page-nav">共{max(1, len(items) // 20)}页　<a href="{self.paths[i]}">首页</a>'
                     '<a href="javascript:void(0)">上一页</a><a href="javascript:void(0)">下一页</a>'
                     f'<a href="{self.paths[i]}">尾页</a></div>')
            return (f'<div class="box"><div class="tab-hd">{tabs}</div><div class="tab-bd">{"".join(panels)}</div>'
                    f"{pager}</div>\n")
        return ('<div class="box related"><div class="box-hd">相关阅读</div><ul class="news-list">'
                + "\n".join(self._item(j) for j in items) + "</ul></div>\n")

    def _head(self, i: int, charset: str, title: str, column: str) -> str:
        return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta http-equiv="Content-Type" content="text/html; charset={charset}">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<meta name="SiteName" content="{SITE_NAME}门户网站">
<meta name="SiteDomain" content="www.yunhai.gov.cn">
<meta name="SiteIDCode" content="{SITE_ID}">
<meta name="ColumnName" content="{column}">
<meta name="ArticleTitle" content="{html.escape(title)}">
<meta name="PubDate" content="{self.date(i).isoformat()} 10:30">
<meta name="keywords" content="{SITE_NAME},{column},政务公开,政务服务">
<title>{html.escape(title)}_{SITE_NAME}门户网站</title>
<link rel="shortcut icon" href="/favicon.ico">
<link rel="stylesheet" href="/css/main.css">
<style>.share-box{{margin-top:20px}}.share-box a{{margin-right:8px}}.side .hot li{{line-height:30px}}</style>
<script src="/js/jquery.min.js"></script>
<script>var siteConfig={{siteCode:"{SITE_ID}",columnName:"{column}",pageId:{i},searchUrl:"/search"}};</script>
</head>
<body>
<div class="topbar"><div class="w1200 clearfix"><span class="fl" id="today">今天是 {TODAY.year}年{TODAY.month}月{TODAY.day}日</span>
<div class="fr"><a href="{self.href('/wza/index.html')}" class="wza" title="无障碍浏览">无障碍</a><a href="javascript:void(0)" class="elder">长者模式</a>
<a href="javascript:void(0)">繁体</a><a href="javascript:void(0)">English</a><a href="javascript:void(0)">登录</a><a href="javascript:void(0)">注册</a>
<a href="{self.href('/zjyh/index.html')}">走进云海</a></div></div></div>
<div class="header"><div class="w1200 clearfix">
<a class="logo" href="/"><img src="/images/logo.svg" alt="{SITE_NAME}门户网站" width="60" height="60"><span>{SITE_NAME}</span></a>
<div class="search"><form action="/search" method="get" target="_blank" name="searchform">
<input type="text" name="q" class="search-input" placeholder="请输入关键词" autocomplete="off">
<input type="hidden" name="siteCode" value="{SITE_ID}"><button type="submit" class="search-btn">搜索</button></form>
<div class="hot-words">热词：<a href="{self.href('/zwfw/yjs/index.html')}">高效办成一件事</a> <a href="{self.href('/zwfw/kstb/index.html')}">跨省通办</a> <a href="{self.href('/hdjl/rx/index.html')}">12345</a></div></div>
</div></div>
"""

    def _quick(self) -> str:
        entries = [("政务服务", 1), ("互动交流", 3), ("数据开放", 4), ("政府信息公开", 1), ("新闻中心", 5), ("专题专栏", 7)]
        links = []
        for name, column_no in entries:
            k = next(n for n, s in enumerate(self._all_sections) if s.level == 1 and s.name == COLUMNS[column_no - 1][0])
            links.append(f'<a href="{self.paths[self.section_link(k)]}"><i class="icon icon-{column_no}"></i>{name}</a>')
        return f'<div class="quick w1200">{"".join(links)}</div>\n'

    def _side(self, rng: random.Random) -> str:
        hot = "".join(self._item(self.section_count + int(rng.random() ** 3 * self.articles), with_date=False)
                      for _ in range(10)) if self.articles else ""
        return (f'<div class="side fr"><div class="box"><div class="box-hd">热点排行</div><ul class="hot">{hot}</ul></div>'
                '<div class="box"><div class="box-hd">政务新媒体</div><p><img src="/images/logo.svg" alt="云海发布微信公众号" width="100">'
                '云海发布微信</p><p><img src="/images/logo.svg" alt="云海发布微博" width="100">云海发布微博</p></div></div>\n')

    def _footer(self) -> str:
        footer_links = " | ".join(
            f'<a href="{self.paths[self.section_link(k)]}">{s.name}</a>' for k, s in enumerate(self._all_sections) if s.level == 9)
        options = "".join(f'<option value="/bmwz/{n:02d}/index.html">{d}</option>' for n, d in enumerate(DEPARTMENTS))
        cities = "".join(f'<option value="/sxzf/{n:02d}/index.html">{c}人民政府</option>' for n, c in enumerate(CITIES))
        return f"""<div class="links w1200"><span>部门网站</span><select onchange="if(this.value)window.open(this.value)">
<option value="">请选择</option>{options}</select><span>市州政府</span><select onchange="if(this.value)window.open(this.value)">
<option value="">请选择</option>{cities}</select></div>
<div class="footer"><div class="w1200 clearfix">
<div class="conac"><a href="https://bszs.conac.cn/sitename?method=show&amp;id=0A1B2C3D4E5F6A7B" target="_blank"><img src="/images/red.svg" alt="党政机关" title="党政机关网站标识" width="55"></a></div>
<p>{footer_links}</p>
<p>主办单位：{SITE_NAME}办公厅　　承办单位：云海省大数据发展管理局　　<a href="{self.href('/zwfw/index.html')}">政务服务</a> | <a href="{self.href('/hdjl/index.html')}">互动交流</a> | <a href="{self.href('/sjkf/index.html')}">数据开放</a></p>
<p>网站标识码：{SITE_ID}　　<a href="https://beian.miit.gov.cn/" target="_blank">{ICP}</a>　　
<a href="http://www.beian.gov.cn/portal/registerSystemInfo?recordcode={PSB_CODE}" target="_blank"><img src="/images/gaba.svg" alt="" width="16" height="16">京公网安备{PSB_CODE}号</a></p>
<p>地址：云海省海州市人民大道1号　邮编：990001　　政务服务便民热线：12345　　建议使用1366×768分辨率浏览</p>
</div></div>
<script src="/js/common.js"></script>
<script src="/js/jiucuo.js" id="_jiucuo_" sitecode="{SITE_ID}"></script>
<script>var _hmt=_hmt||[];(function(){{var hm=document.createElement("script");hm.src="/js/jiucuo.js?stat=1";document.body.appendChild(hm);}})();</script>
</body>
</html>
"""

    def page(self, i: int) -> bytes:
        """The bytes of page ``i`` as served, in its charset (about ``page_kb`` KB)."""
        rng = random.Random(self._page_seed(i))
        charset = self.charset(i)
        title = SITE_NAME if i == 0 else self.titles[i]
        column = self.sections[i].name if i < self.section_count else COLUMNS[i % len(COLUMNS)][0]
        head = self._head(i, charset, title, column) + self._nav(i) + (self._quick() if i == 0 else "")
        up = self.section_link(1 + i % len(COLUMNS)) if i >= self.section_count else (self.sections[i].parent or 0)
        crumb = f'<div class="crumb">当前位置：<a href="/">首页</a> &gt; <a href="{self.paths[up]}">{column}</a></div>\n'
        lists = self._lists(i, rng)
        side = self._side(rng)
        tail = self._footer()
        body: list[str] = [f'<div class="w1200 main clearfix">{crumb}<div class="main-l fl">']
        if i >= self.section_count:
            body.append(f'<div class="article"><h1>{html.escape(title)}</h1><div class="info">发布时间：{self.date(i).isoformat()} 10:30　'
                        f'来源：{rng.choice(SOURCES)}　<span class="fontsize">字号：<a href="javascript:void(0)">大</a> '
                        '<a href="javascript:void(0)">中</a> <a href="javascript:void(0)">小</a></span></div><div class="content">')
        size = len("".join([head, *body, lists, side, tail]).encode(charset)) + 400  # + the closing parts
        # The rest of the weight: the article's text (articles), then, as on real pages, more
        # blocks of dated links with a line of summary each, until the page has its size.
        if i >= self.section_count:
            text_end = size + min(rng.randint(6000, 14000), max(0, self.target_bytes - size))
            while size < text_end:
                chunk = "<p>" + "".join(self._sentence(rng) for _ in range(rng.randint(3, 6))) + "</p>\n"
                body.append(chunk)
                size += len(chunk.encode(charset))
            body.append("</div></div>\n")
            size += 12
        while size < self.target_bytes - 200:
            if rng.random() < 0.5 and self.articles:
                k = self.section_link(rng.randrange(1, len(self._all_sections)))
                items = "\n".join(self._item(self.section_count + rng.randrange(self.articles)) for _ in range(8))
                chunk = (f'<div class="box col-{rng.randint(100, 999)}"><div class="box-hd"><a href="{self.paths[k]}" '
                         f'class="more fr">更多&gt;&gt;</a><span>{self.titles[k]}</span></div>'
                         f'<ul class="news-list">{items}</ul></div>\n')
            else:
                chunk = '<p class="summary">' + "".join(self._sentence(rng) for _ in range(2)) + "</p>\n"
            body.append(chunk)
            size += len(chunk.encode(charset))
        if i >= self.section_count:
            body.append('<div class="share-box">分享到：<a href="javascript:void(0)">微信</a><a href="javascript:void(0)">微博</a>'
                        '<a href="javascript:window.print()">打印</a><a href="javascript:window.close()">关闭</a></div>\n')
        body.append(lists + "</div>\n" + side + "</div>\n")
        return (head + "".join(body) + tail).encode(charset)


# ==========================================================================================
# Serving
# ==========================================================================================
@dataclass(frozen=True)
class Entry:
    offset: int
    length: int  # gzip-compressed length in the spool file
    raw_length: int
    charset: str
    etag: str
    last_modified: str
    mtime: float


class WebServer:
    """Serves a :class:`RealisticWeb` on 127.0.0.1 from a spool file of gzip bodies."""

    def __init__(self, web: RealisticWeb, folder: Path | None = None) -> None:
        self.web = web
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="realistic-web-")
        folder = Path(folder or self._tmp.name)
        self.spool_path = folder / "pages.gz.bin"
        self.entries: dict[str, Entry] = {}
        self.raw_bytes = 0
        with open(self.spool_path, "wb") as spool:
            for i, path in enumerate(web.paths):
                raw = web.page(i)
                packed = gzip.compress(raw, compresslevel=6, mtime=0)
                day = web.date(i)
                stamp = dt.datetime(day.year, day.month, day.day, 2, 30, tzinfo=dt.timezone.utc).timestamp()
                self.entries[path] = Entry(spool.tell(), len(packed), len(raw), web.charset(i),
                                           '"' + hashlib.sha1(raw).hexdigest()[:20] + '"',
                                           email.utils.formatdate(stamp, usegmt=True), stamp)
                spool.write(packed)
                self.raw_bytes += len(raw)
        self._fd = os.open(self.spool_path, os.O_RDONLY)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def body(self, path: str) -> bytes:
        """The uncompressed bytes served for ``path`` (a page of the web)."""
        entry = self.entries[path]
        return gzip.decompress(os.pread(self._fd, entry.length, entry.offset))

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "nginx"
            sys_version = ""

            def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head and body:
                    self.wfile.write(body)

            def _serve(self, head: bool) -> None:
                path = urlsplit(self.path).path
                accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
                entry = server.entries.get(path)
                if entry is None:
                    if path in ASSETS:
                        content_type, body = ASSETS[path]
                        self._send(200, {"Content-Type": content_type, "Cache-Control": "max-age=86400"}, body, head)
                    else:
                        self._send(404, {"Content-Type": "text/html; charset=utf-8"},
                                   "<html><body><h1>404 Not Found</h1></body></html>".encode(), head)
                    return
                headers = {"Content-Type": f"text/html; charset={entry.charset}", "ETag": entry.etag,
                           "Last-Modified": entry.last_modified, "Vary": "Accept-Encoding",
                           "Cache-Control": "max-age=600"}
                if self._not_modified(entry):
                    self._send(304, {k: v for k, v in headers.items() if k != "Content-Type"}, b"", True)
                    return
                packed = os.pread(server._fd, entry.length, entry.offset)
                if accepts_gzip:
                    headers["Content-Encoding"] = "gzip"
                    body = packed
                else:
                    body = zlib.decompress(packed, 16 + zlib.MAX_WBITS)
                self._send(200, headers, body, head)

            def _not_modified(self, entry: Entry) -> bool:
                tags = self.headers.get("If-None-Match")
                if tags is not None:
                    return entry.etag in [t.strip() for t in tags.split(",")] or tags.strip() == "*"
                since = self.headers.get("If-Modified-Since")
                if since:
                    try:
                        return email.utils.parsedate_to_datetime(since).timestamp() >= entry.mtime
                    except (TypeError, ValueError):
                        return False
                return False

            def do_GET(self) -> None:  # noqa: N802
                self._serve(head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve(head=True)

            def log_message(self, *args) -> None:
                pass

        return Handler

    def __enter__(self) -> "WebServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        os.close(self._fd)
        if self._tmp is not None:
            self._tmp.cleanup()
