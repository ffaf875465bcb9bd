#!/usr/bin/env python
"""Crawl throughput: bare Scrapy against GovEvidence, without and with WARC, rendered with screenshots.

Serves a synthetic province portal on a loopback port (deterministic, seeded: ``--pages`` pages of
about ``--page-kb`` KB, each linking to about ten others), then crawls it in separate
``scrapy`` subprocesses:

  bare       a minimal Scrapy spider that only follows same-site links (this file, ``scrapy runspider``)
  plain      GovEvidence ``province_portals``, WARC off, screenshots off
  warc       GovEvidence, WARC on, screenshots off
  shots      GovEvidence, the portal marked ``render: true``, ``--shots`` pages, screenshots on (WARC on)
  render     the same rendered crawl with screenshots off

Each configuration runs ``--repeat`` times (fresh data folder and SQLite database each time) and
the median of each figure is printed, with the machine's load average (other work on the
machine slows the crawls; CPU milliseconds per page are less sensitive to it than seconds).
Pages and crawl seconds are Scrapy's own stats (``response_received_count``,
``elapsed_time_seconds``) read from the stats dump at the end of the crawl log. See
``benchmarks/README.md`` for what each column means.

Usage: ``python benchmarks/crawl_bench.py [--pages 300] [--page-kb 60] [--shots 20] [--repeat 2]``
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import html
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import scrapy

ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve()

SEED = 20261126
TARGET_CODE = "990000"
SITE_NAME = "云海省人民政府"
SITE_ID = "9900000001"


# ==========================================================================================
# The bare spider (run by ``scrapy runspider`` on this file, outside the project settings)
# ==========================================================================================
class BareSameSiteSpider(scrapy.Spider):
    """Follows every same-site ``<a href>``; no detectors, no items, no pipeline, no archive."""

    name = "bare_same_site"

    def __init__(self, start: str = "", *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.start_url = start
        self.site = urlsplit(start).netloc

    async def start(self):
        # Filtered like every other request, so a link back to the home page is not fetched twice.
        yield scrapy.Request(self.start_url, callback=self.parse)

    def parse(self, response):
        for href in response.css("a::attr(href)").getall():
            href = href.strip()
            if not href or href.startswith(("javascript:", "mailto:", "tel:", "#")):
                continue
            url = urldefrag(response.urljoin(href))[0]
            if url.startswith(("http://", "https://")) and urlsplit(url).netloc == self.site:
                yield scrapy.Request(url, callback=self.parse)


# ==========================================================================================
# The synthetic portal
# ==========================================================================================
COLUMNS = [  # (name, path, sub-columns)
    ("政务公开", "/zwgk/index.html", ["政府信息公开指南", "政府信息公开目录", "政府信息公开年报", "政策文件", "政策解读", "人事信息"]),
    ("政务服务", "/zwfw/index.html", ["个人办事", "法人办事", "高效办成一件事", "跨省通办", "便民服务", "办事指南"]),
    ("互动交流", "/hdjl/index.html", ["省长信箱", "在线访谈", "征集调查", "来信选登", "咨询投诉", "常见问题"]),
    ("数据开放", "/sjkf/index.html", ["数据目录", "数据发布", "统计数据", "数据解读", "接口服务", "数据需求"]),
    ("新闻中心", "/xwzx/index.html", ["云海要闻", "部门动态", "市县动态", "图片新闻", "视频新闻", "新闻发布会"]),
    ("走进云海", "/zjyh/index.html", ["省情概况", "历史沿革", "行政区划", "自然地理", "人口民族", "经济发展"]),
]
ABOUT_PATH = "/about/index.html"
SPECIAL = 2 + len(COLUMNS)  # home, columns, about; the rest are article pages
FANOUT = 5  # page i links to pages i*FANOUT+1 … i*FANOUT+FANOUT: every page is within a few hops

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


def _path(i: int, n: int) -> str:
    if i == 0:
        return "/"
    if i <= len(COLUMNS):
        return COLUMNS[i - 1][1]
    if i == len(COLUMNS) + 1:
        return ABOUT_PATH
    day = dt.date(2026, 11, 20) - dt.timedelta(days=(i * 7) % 600)
    return f"/art/{day.year}/{day.month}/{day.day}/art_{1000 + i % 37}_{50000 + i}.html"


def _date(i: int) -> str:
    return (dt.date(2026, 11, 20) - dt.timedelta(days=(i * 7) % 600)).isoformat()


def _title(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)}{rng.choice(VERBS)}{rng.choice(OBJECTS)}"


def _sentence(rng: random.Random) -> str:
    subject, other = rng.sample(SUBJECTS, 2)
    return rng.choice(SENTENCES).format(s=subject, s2=other, o=rng.choice(OBJECTS), y=rng.choice([2025, 2026, 2027]),
                                        m=rng.randint(1, 12), n=rng.randint(20, 900), p=rng.randint(80, 99),
                                        q=rng.randint(60, 95))


STYLE = """<style>
*{margin:0;padding:0;box-sizing:border-box}body{font:14px/1.8 "Microsoft YaHei","Noto Sans CJK SC",sans-serif;color:#333;background:#f5f5f5}
a{color:#333;text-decoration:none}a:hover{color:#0b4ea2}.w1200{width:1200px;margin:0 auto}.clearfix:after{content:"";display:block;clear:both}
.topbar{background:#eef3f9;height:34px;line-height:34px;font-size:12px}.topbar-r{float:right}.topbar-r a{margin-left:14px}
.header{background:linear-gradient(#0b4ea2,#2a77d6);height:130px}.logo{float:left;color:#fff;padding-top:30px;font-size:34px;font-weight:bold}
.search{float:right;padding-top:40px}.search-input{width:260px;height:34px;border:0;padding:0 10px}.search-btn{height:34px;width:70px;background:#ff9c00;border:0;color:#fff}
.nav{background:#073c80}.nav>ul{list-style:none;overflow:hidden}.nav>ul>li{float:left;width:14.28%;text-align:center;position:relative}
.nav>ul>li>a{color:#fff;font-size:17px;line-height:48px;display:block}.nav li.on>a{background:#0b4ea2}
.nav .sub{display:none;position:absolute;background:#fff;width:100%;z-index:9}.nav li:hover .sub{display:block}.nav .sub span{display:block;line-height:32px}
.main{background:#fff;margin-top:12px;padding:18px}.crumb{font-size:12px;color:#666;margin-bottom:12px}
.box{margin-bottom:16px}.box-hd{border-bottom:2px solid #0b4ea2;height:38px;line-height:38px;font-size:18px}
.news-list li{list-style:none;line-height:34px;border-bottom:1px dashed #e3e3e3;overflow:hidden}.news-list li span{float:right;color:#999}
.article h1{font-size:26px;text-align:center;color:#0b4ea2;margin:10px 0}.article .info{text-align:center;color:#888;font-size:13px;border-bottom:1px solid #ddd;padding-bottom:8px}
.article .content p{text-indent:2em;margin:12px 0;font-size:16px;line-height:2}
.links select{width:220px;height:30px;margin:0 8px}.footer{background:#0b4ea2;color:#dfe9f7;font-size:13px;padding:20px 0;margin-top:20px}
.footer a{color:#dfe9f7}.foot-text p{line-height:26px;text-align:center}
</style>"""

SCRIPT = """<script>
(function(){var d=new Date(),w="日一二三四五六";var el=document.getElementById("today");
if(el){el.innerHTML="今天是 "+d.getFullYear()+"年"+(d.getMonth()+1)+"月"+d.getDate()+"日 星期"+w.charAt(d.getDay());}
var fs=document.querySelectorAll(".fontsize a");for(var i=0;i<fs.length;i++){fs[i].onclick=function(){
document.querySelector(".content").style.fontSize=this.getAttribute("data-size");return false;};}})();
</script>"""

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="60" height="60"><circle cx="30" cy="30" r="28" fill="#c00"/></svg>'
ASSETS = {
    "/images/logo.svg": ("image/svg+xml", SVG),
    "/images/gaba.svg": ("image/svg+xml", SVG),
    "/css/common.css": ("text/css", b".share{display:none}\n"),
    "/js/common.js": ("application/javascript", b"window.siteCode='9900000001';\n"),
    "/robots.txt": ("text/plain", b"User-agent: *\nDisallow:\n"),
}


def _links_of(i: int, n: int, rng: random.Random) -> list[int]:
    """About ten other pages: the page's children in a FANOUT-ary tree, then random ones."""
    out = [c for c in range(i * FANOUT + 1, i * FANOUT + FANOUT + 1) if c < n]
    while len(out) < min(10, n - 1):
        c = rng.randrange(n)
        if c != i and c not in out:
            out.append(c)
    return out


def _page(i: int, n: int, target_bytes: int, titles: list[str]) -> bytes:
    rng = random.Random(SEED * 1000003 + i)
    title = SITE_NAME if i == 0 else titles[i]
    column = COLUMNS[(i - 1) % len(COLUMNS)] if i else None
    nav = ['<li class="on"><a href="/">首页</a></li>' if i == 0 else '<li><a href="/">首页</a></li>']
    for name, path, subs in COLUMNS:
        on = ' class="on"' if column and column[0] == name else ""
        nav.append(f'<li{on}><a href="{path}">{name}</a><div class="sub">'
                   + "".join(f"<span>{s}</span>" for s in subs) + "</div></li>")
    items = "\n".join(
        f'<li><a href="{_path(j, n)}" target="_blank" title="{html.escape(titles[j])}">{html.escape(titles[j])}</a>'
        f"<span>{_date(j)}</span></li>"
        for j in _links_of(i, n, rng)
    )
    options = "".join(f'<option value="#">{s}</option>' for s in SUBJECTS)
    head = f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="SiteName" content="{SITE_NAME}门户网站">
<meta name="SiteIDCode" content="{SITE_ID}">
<meta name="ColumnName" content="{column[0] if column else '首页'}">
<meta name="ArticleTitle" content="{html.escape(title)}">
<meta name="PubDate" content="{_date(i)} 10:30">
<title>{html.escape(title)}_{SITE_NAME}门户网站</title>
<link rel="stylesheet" href="/css/common.css">
{STYLE}
</head>
<body>
<div class="topbar"><div class="w1200"><span class="today" id="today">今天是 2026年11月26日 星期四</span>
<div class="topbar-r"><a href="javascript:void(0)" class="wza" title="无障碍浏览">无障碍</a>
<a href="javascript:void(0)" class="elder">长者模式</a><a href="javascript:void(0)">English</a></div></div></div>
<div class="header"><div class="w1200 clearfix">
<a class="logo" href="/"><img src="/images/logo.svg" alt="{SITE_NAME}门户网站" width="60" height="60"><span>{SITE_NAME}</span></a>
<div class="search"><form action="/search" method="get" target="_blank" name="searchform">
<input type="text" name="q" class="search-input" placeholder="请输入关键词" autocomplete="off">
<input type="hidden" name="siteCode" value="{SITE_ID}"><button type="submit" class="search-btn">搜索</button></form></div>
</div></div>
<div class="nav"><ul class="w1200">{''.join(nav)}</ul></div>
<div class="w1200 main clearfix">
<div class="crumb">当前位置：<a href="/">首页</a> &gt; {f'<a href="{column[1]}">{column[0]}</a>' if column else '首页'}</div>
"""
    body = [f'<div class="article"><h1>{html.escape(title)}</h1>'
            f'<div class="info">发布时间：{_date(i)} 10:30　来源：{rng.choice(SOURCES)}　'
            f'<span class="fontsize">字号：<a href="#" data-size="18px">大</a> <a href="#" data-size="16px">中</a> '
            f'<a href="#" data-size="14px">小</a></span></div><div class="content">']
    tail = f"""<div class="box"><div class="box-hd">相关信息</div><ul class="news-list">
{items}
</ul></div>
<div class="links"><span>部门网站</span><select onchange="if(this.value!='#')window.open(this.value)">{options}</select>
<span>市州政府</span><select>{options}</select></div>
</div>
<div class="footer"><div class="w1200 foot-text">
<p><a href="{ABOUT_PATH}">关于我们</a> | <a href="{ABOUT_PATH}#map">网站地图</a> | <a href="{ABOUT_PATH}#contact">联系我们</a></p>
<p>主办单位：{SITE_NAME}办公厅　　承办单位：云海省大数据发展管理局</p>
<p>网站标识码：{SITE_ID}　　<span>云ICP备12345678号-1</span></p>
<p><img src="/images/gaba.svg" alt="" width="16" height="16">云公网安备 99010202000123号</p>
<p>地址：云海省海州市人民大道1号　邮编：990001　　政务服务便民热线：12345</p>
</div></div>
<script src="/js/common.js"></script>
{SCRIPT}
</body>
</html>
"""
    # Visible text: an article of 1,500-3,500 characters (less when the page budget is small).
    size = len(head.encode()) + len(body[0].encode()) + len(tail.encode())
    text_budget = min(rng.randint(4500, 10500), max(0, target_bytes - size) // 3)
    while text_budget > 0:
        paragraph = "<p>" + "".join(_sentence(rng) for _ in range(rng.randint(3, 6))) + "</p>\n"
        body.append(paragraph)
        size += len(paragraph.encode())
        text_budget -= len(paragraph.encode())
    body.append("</div></div>\n")
    # The rest of the weight, as on real portals: a hidden drop-down menu of every column and an
    # inline script with the column tree (neither is a link).
    menu, entries = ['<div class="mega-menu" style="display:none">'], []
    half = size + max(0, target_bytes - size) // 2
    while size < half:
        subject = rng.choice(SUBJECTS)
        item = f'<dl class="col-{rng.randint(100, 999)}"><dt>{subject}</dt><dd><span>{rng.choice(OBJECTS)}</span>' \
               f'<span>{rng.choice(OBJECTS)}</span><span>{rng.choice(COLUMNS)[2][rng.randrange(6)]}</span></dd></dl>\n'
        menu.append(item)
        size += len(item.encode())
    menu.append("</div>\n<script>var columnTree=[")
    while size < target_bytes:
        entry = json.dumps({"id": rng.randint(10000, 99999), "name": rng.choice(OBJECTS), "date": _date(rng.randrange(600)),
                            "dept": rng.choice(SUBJECTS), "hits": rng.randint(0, 99999)}, ensure_ascii=False) + ",\n"
        entries.append(entry)
        size += len(entry.encode())
    body += menu + entries + ["{}];</script>\n"]
    return (head + "".join(body) + tail).encode("utf-8")


def build_site(pages: int, page_kb: float) -> dict[str, bytes]:
    rng = random.Random(SEED)
    titles = [SITE_NAME] + [name for name, _, _ in COLUMNS] + ["关于我们"] + [_title(rng) for _ in range(pages)]
    return {_path(i, pages): _page(i, pages, int(page_kb * 1024), titles) for i in range(pages)}


class SiteServer:
    """The synthetic portal on 127.0.0.1, a free port, in daemon threads."""

    def __init__(self, pages: dict[str, bytes]) -> None:
        site = pages

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "nginx"
            sys_version = ""

            def do_GET(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                if path in site:
                    content_type, body = "text/html; charset=utf-8", site[path]
                elif path in ASSETS:
                    content_type, body = ASSETS[path]
                else:
                    content_type, body = "text/html; charset=utf-8", "<html><body><h1>404</h1></body></html>".encode()
                self.send_response(200 if (path in site or path in ASSETS) else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "SiteServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_registry(path: Path, url: str, render: bool) -> None:
    source = {"kind": "portal", "url": url, "name": f"{SITE_NAME}门户网站（基准）", "render": render,
              "obey_robots": False}
    registry = {"version": 1, "targets": [{"code": TARGET_CODE, "name": "云海省", "level": "province",
                                           "sources": [source], "note": "synthetic benchmark portal"}]}
    path.write_text(json.dumps(registry, ensure_ascii=False, indent=1), encoding="utf-8")  # JSON is YAML


# ==========================================================================================
# Running and measuring one crawl
# ==========================================================================================
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Samples the summed PSS of a process and all its descendants; keeps the peak and the series."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.samples: list[int] = []
        self.stop = threading.Event()

    def quarters_mb(self) -> list[float]:
        """Summed PSS at 25, 50, 75 and 95 % of the run (the end is shutdown): flat figures mean no leak."""
        if not self.samples:
            return []
        n = len(self.samples)
        return [self.samples[min(n - 1, max(0, round(n * q) - 1))] / 1024 for q in (0.25, 0.5, 0.75, 0.95)]

    def run(self) -> None:
        while not self.stop.is_set():
            tree, pids, total = _children(), [self.pid], 0
            while pids:
                pid = pids.pop()
                total += _pss_kb(pid)
                pids.extend(tree.get(pid, []))
            self.peak_kb = max(self.peak_kb, total)
            if total:
                self.samples.append(total)
            self.stop.wait(self.interval)


_DATETIME = re.compile(r"datetime\.datetime\([^)]*\)")


def parse_stats(log: str) -> dict:
    """The dict Scrapy logs after 'Dumping Scrapy stats:' at the end of a crawl."""
    start = log.rfind("Dumping Scrapy stats:")
    if start < 0:
        return {}
    text = log[log.index("{", start):]
    depth = 0
    for end, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            break
    return ast.literal_eval(_DATETIME.sub("None", text[:end + 1]))


@dataclass
class Result:
    pages: int  # responses received (Scrapy's response_received_count)
    rendered: int  # pages opened in the browser (scrapy-playwright's playwright/page_count)
    seconds: float
    wall: float
    cpu: float  # user + system seconds of the crawl process and its waited-for descendants
    max_rss_mb: float
    tree_pss_mb: float
    warc_bytes: int = 0
    screenshots: int = 0
    pictures_failed: int = 0  # screenshot steps that failed or were given up (logged by crawler.screenshots)
    pss_quarters: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def run_crawl(argv: list[str], env: dict[str, str], cwd: Path, log_path: Path, timeout: float) -> Result:
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        sampler.join()
    wall = time.perf_counter() - started
    text = log_path.read_text(encoding="utf-8", errors="replace")
    stats = parse_stats(text)
    if proc.returncode != 0 or not stats:
        tail = "\n".join(text.splitlines()[-30:])
        raise RuntimeError(f"crawl failed (exit {proc.returncode}): {' '.join(argv[:6])} …\n{tail}")
    # ru_maxrss (KiB) of a waited-for child covers its own waited-for descendants too, but as the
    # largest single process, not their sum.
    return Result(pages=int(stats.get("response_received_count", 0)),
                  rendered=int(stats.get("playwright/page_count", 0)),
                  seconds=float(stats.get("elapsed_time_seconds", 0.0)), wall=wall,
                  cpu=usage.ru_utime + usage.ru_stime, max_rss_mb=usage.ru_maxrss / 1024,
                  tree_pss_mb=sampler.peak_kb / 1024, pss_quarters=sampler.quarters_mb(), extra=stats)


COMMON_SETTINGS = {
    "DOWNLOAD_DELAY": "0",
    "AUTOTHROTTLE_ENABLED": "False",
    "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
    "ROBOTSTXT_OBEY": "False",
    "LOG_LEVEL": "INFO",
    "TELNETCONSOLE_ENABLED": "False",
    "REMOTE_CONTROL_ENABLED": "False",
    # The synthetic portal is on loopback, which the address policy refuses by default.
    "GOVEVIDENCE_ALLOWED_NETWORKS": "127.0.0.0/8",
}


def _settings_argv(settings: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in settings.items():
        out += ["-s", f"{key}={value}"]
    return out


def run_bare(url: str, work: Path, timeout: float) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRAPY_")}
    # Run outside the project folder so Scrapy does not pick up its scrapy.cfg / settings.
    argv = [sys.executable, "-m", "scrapy", "runspider", str(THIS_FILE), "-a", f"start={url}",
            *_settings_argv(COMMON_SETTINGS)]
    return run_crawl(argv, env, work, work / "crawl.log", timeout)


def run_govevidence(registry: Path, work: Path, timeout: float, budget: int, *, warc: bool, screenshots: bool) -> Result:
    sys.path.insert(0, str(ROOT))
    from govevidence.crawl import scrapy_command

    data = work / "data"
    data.mkdir()
    settings = {
        **COMMON_SETTINGS,
        "GOVEVIDENCE_PORTAL_MAX_DEPTH": "100",
        "GOVEVIDENCE_MAX_PAGES_PER_SOURCE": str(budget),
        "GOVEVIDENCE_WARC_ENABLED": str(warc),
        "GOVEVIDENCE_SCREENSHOTS": str(screenshots),
    }
    env = {"GOVEVIDENCE_DATA_DIR": str(data), "DATABASE_URL": f"sqlite:///{data / 'govevidence.sqlite3'}"}
    argv, environment = scrapy_command("province_portals", args={"registry": str(registry), "targets": TARGET_CODE},
                                       settings=settings, env=env)
    result = run_crawl(argv, environment, ROOT, work / "crawl.log", timeout)
    result.warc_bytes = sum(p.stat().st_size for p in data.glob("warc/**/*.warc.gz"))
    result.screenshots = sum(1 for _ in data.glob("screenshots/**/*.png"))
    log = (work / "crawl.log").read_text(encoding="utf-8", errors="replace")
    result.pictures_failed = len(re.findall(r"\[crawler\.screenshots\] \w+: .*failed", log))
    return result


# ==========================================================================================
# Report
# ==========================================================================================
CONFIGS = {
    "bare": "bare Scrapy (follow links only)",
    "plain": "GovEvidence, WARC off",
    "warc": "GovEvidence, WARC on",
    "shots": "rendered + screenshots",
    "render": "rendered, no screenshots",
}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=300, help="pages of the synthetic portal (default 300)")
    parser.add_argument("--page-kb", type=float, default=60, help="approximate size of each page in KB (default 60)")
    parser.add_argument("--shots", type=int, default=20, help="page budget of the rendered crawls (default 20)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per configuration; medians are printed (default 2)")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated subset of {','.join(CONFIGS)} (default all)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a crawl is killed (default 900)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the uncounted warm-up crawls")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (logs, WARC, databases)")
    args = parser.parse_args(argv)
    if args.pages < SPECIAL + 2 or args.shots < 1 or args.repeat < 1:
        parser.error(f"--pages must be at least {SPECIAL + 2}; --shots and --repeat at least 1")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")

    load_before = os.getloadavg()[0]
    site = build_site(args.pages, args.page_kb)
    html_bytes = sum(len(b) for b in site.values())
    tmp = Path(tempfile.mkdtemp(prefix="govevidence-crawl-bench-"))
    results: dict[str, list[Result]] = {c: [] for c in configs}
    try:
        with SiteServer(site) as server:
            print(f"Synthetic portal {server.url}: {len(site)} pages, {html_bytes / len(site) / 1024:.1f} KB/page on "
                  f"average; {args.repeat} run(s) per configuration on {os.cpu_count()} CPU(s)", flush=True)
            registry = tmp / "registry.yaml"
            rendered_registry = tmp / "registry-rendered.yaml"
            write_registry(registry, server.url, render=False)
            write_registry(rendered_registry, server.url, render=True)

            def run(config: str, label: str, budget: int | None = None) -> Result:
                work = tmp / label
                work.mkdir()
                if config == "bare":
                    return run_bare(server.url, work, args.timeout)
                if config in ("plain", "warc"):
                    return run_govevidence(registry, work, args.timeout, budget or args.pages + 10,
                                           warc=config == "warc", screenshots=False)
                return run_govevidence(rendered_registry, work, args.timeout, budget or args.shots,
                                       warc=True, screenshots=config == "shots")

            if not args.no_warmup:
                # Not counted: the first crawl of a fresh machine pays for cold imports, bytecode
                # compilation and the first chromium start.
                print("  warming up (not counted)", flush=True)
                run("bare", "warmup-bare")
                run("warc", "warmup-warc", budget=10)
                if {"shots", "render"} & set(configs):
                    run("render", "warmup-render", budget=2)
            for repeat in range(args.repeat):
                for config in configs:
                    result = run(config, f"{config}-{repeat + 1}")
                    results[config].append(result)
                    print(f"  run {repeat + 1} {config:<6} {result.pages:>5} pages {result.seconds:7.2f} s crawl "
                          f"{result.wall:7.2f} s wall", flush=True)
    finally:
        if args.keep:
            print(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    med = {c: {k: _median([getattr(r, k) for r in rs]) for k in
               ("pages", "rendered", "seconds", "wall", "cpu", "max_rss_mb", "tree_pss_mb", "warc_bytes", "screenshots",
                "pictures_failed")}
           for c, rs in results.items()}
    for config, figures in med.items():
        # Rendered crawls are measured per page the browser drew (each is also fetched raw first).
        figures["unit"] = figures["rendered"] if config in ("shots", "render") else figures["pages"]
        figures["rate"] = figures["unit"] / figures["seconds"] if figures["seconds"] else float("nan")
    bare_rate = med.get("bare", {}).get("rate")

    header = ("configuration", "pages", "rendered", "crawl s", "pages/s", "vs bare", "s/page", "CPU ms/page", "wall s",
              "max RSS MB", "tree PSS MB", "WARC KB/page")
    rows = []
    for config, figures in med.items():
        unit = figures["unit"]
        rows.append((
            CONFIGS[config], f"{figures['pages']:.0f}", f"{figures['rendered']:.0f}" if figures["rendered"] else "-",
            f"{figures['seconds']:.2f}", f"{figures['rate']:.1f}",
            f"{figures['rate'] / bare_rate:.2f}" if bare_rate and config not in ("shots", "render") else "-",
            f"{figures['seconds'] / unit:.3f}" if unit else "-",
            f"{figures['cpu'] / unit * 1000:.0f}" if unit else "-",
            f"{figures['wall']:.1f}", f"{figures['max_rss_mb']:.0f}", f"{figures['tree_pss_mb']:.0f}",
            f"{figures['warc_bytes'] / unit / 1024:.1f}" if figures["warc_bytes"] and unit else "-",
        ))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print(f"Medians of {args.repeat} run(s); 1-minute load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after.\n"
          "pages/s, s/page and CPU ms/page of the rendered crawls count the pages the browser drew.\n"
          "max RSS: largest single process of the crawl's process tree (for rendered crawls, one chromium process);\n"
          "tree PSS: peak of the summed PSS of all its processes, sampled every 0.25 s.")

    summary = []
    if "plain" in med and "warc" in med:
        cost = (1 - med["warc"]["rate"] / med["plain"]["rate"]) * 100
        cpu = (med["warc"]["cpu"] / med["warc"]["unit"]) / (med["plain"]["cpu"] / med["plain"]["unit"]) * 100 - 100
        # Half the range of pages/s over the runs of one configuration, relative to its median.
        spreads = [(max(rates) - min(rates)) / 2 / statistics.median(rates) * 100
                   for rates in ([r.pages / r.seconds for r in results[c] if r.seconds] for c in ("plain", "warc"))
                   if len(rates) > 1]
        spread_text = f"run-to-run spread ±{max(spreads):.0f} %, " if spreads else ""
        summary.append(f"archiving costs {cost:.0f} % of throughput ({spread_text}{cpu:+.0f} % CPU per page)")
    if "bare" in med and "plain" in med:
        summary.append(f"GovEvidence without WARC runs at {med['plain']['rate'] / bare_rate * 100:.0f} % of bare Scrapy")
    if "shots" in med and med["shots"]["rendered"]:
        per_page = med["shots"]["seconds"] / med["shots"]["rendered"]
        text = f"rendered pages with screenshots {per_page:.2f} s/page"
        if "render" in med and med["render"]["rendered"]:
            render_only = med["render"]["seconds"] / med["render"]["rendered"]
            text += f" ({render_only:.2f} s rendering + {per_page - render_only:.2f} s screenshots)"
        summary.append(text)
    if "shots" in med and med["shots"]["rendered"]:
        summary.append(f"{med['shots']['screenshots'] / med['shots']['rendered']:.1f} PNGs and "
                       f"{med['shots']['pictures_failed'] / med['shots']['rendered']:.1f} failed screenshot steps "
                       "per rendered page")
    if summary:
        print("; ".join(summary))
    for config, rs in results.items():
        quarters = rs[-1].pss_quarters
        if quarters:
            print(f"{CONFIGS[config]}: tree PSS at 25/50/75/95 % of the last run: "
                  + " / ".join(f"{q:.0f}" for q in quarters) + " MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
