"""Pages generated at request time (spider trap, large page, search, registration look-ups).

Each function takes ``site``, ``path``, ``query`` (``parse_qs`` dict) and
``sandbox`` keywords and returns ``(status, html_text)`` or ``None`` for 404.
The text may hold ``{{site:ID}}`` placeholders; the server expands them.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as _dt
import html
import random

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="{charset}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{margin:0;font:14px/1.8 "Microsoft YaHei",SimSun,sans-serif;color:#333}}
.wrap{{width:1100px;margin:0 auto}}
.top{{background:#b5121b;color:#fff;padding:18px 0;font-size:24px}}
.crumb{{padding:10px 0;border-bottom:1px solid #ddd}}
table.cal{{border-collapse:collapse;margin:20px 0}}
table.cal td,table.cal th{{border:1px solid #ccc;width:60px;height:40px;text-align:center}}
ul.list li{{list-style:none;border-bottom:1px dashed #ddd;overflow:hidden}}
ul.list li span{{float:right;color:#999}}
.foot{{margin-top:30px;border-top:3px solid #b5121b;padding:15px 0;text-align:center;color:#666}}
</style>
</head>
<body>
<div class="top"><div class="wrap">{site_title}</div></div>
<div class="wrap">
<div class="crumb">当前位置：<a href="/">首页</a> &gt; {crumb}</div>
{body}
</div>
<div class="foot">主办：{site_title}　版权所有</div>
</body>
</html>
"""


def _page(site, title: str, crumb: str, body: str) -> str:
    return _PAGE.format(charset=site.encoding, title=html.escape(title), site_title=html.escape(site.title),
                        crumb=crumb, body=body)


def _first(query, key: str, default: str = "") -> str:
    values = query.get(key) or [default]
    return values[0]


def calendar(*, site, path, query, sandbox):
    """Activity calendar whose 下一月 link never ends (a spider trap)."""
    raw = _first(query, "month", "2026-11")
    try:
        year, month = (int(x) for x in raw.split("-", 1))
        first = _dt.date(year, month, 1)
    except (ValueError, TypeError):
        return None
    prev_month = (first - _dt.timedelta(days=1)).replace(day=1)
    next_month = (first + _dt.timedelta(days=32)).replace(day=1)
    rows = []
    for week in _calendar.Calendar(firstweekday=0).monthdayscalendar(year, month):
        cells = []
        for day in week:
            if day == 0:
                cells.append("<td></td>")
            elif day in (8, 18, 28):
                cells.append(f'<td><a href="{path}?month={year:04d}-{month:02d}&amp;day={day}">'
                             f'{day}</a><br><small>政务开放日</small></td>')
            else:
                cells.append(f"<td>{day}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = f"""
<h2>政务活动日历 · {year}年{month}月</h2>
<p class="nav">
<a class="prev" href="{path}?month={prev_month:%Y-%m}">上一月</a>　|　
<a class="next" href="{path}?month={next_month:%Y-%m}">下一月</a>
</p>
<table class="cal">
<tr><th>一</th><th>二</th><th>三</th><th>四</th><th>五</th><th>六</th><th>日</th></tr>
{''.join(rows)}
</table>
<p>每月8日、18日、28日为政府开放日，欢迎市民预约参观。</p>
"""
    return 200, _page(site, f"政务活动日历 {year}年{month}月", "政务活动日历", body)


_TITLE_PARTS = (
    ("关于印发", "关于公布", "关于做好", "关于开展", "关于进一步加强", "关于调整"),
    ("城乡居民基本医疗保险", "政务服务事项清单", "安全生产专项整治", "农村人居环境整治",
     "营商环境优化提升", "义务教育招生入学", "公共数据开放", "政务信息系统整合",
     "老旧小区改造", "防汛抗旱", "消费券发放", "重点项目建设"),
    ("工作方案的通知", "实施细则的通知", "有关事项的通知", "工作的意见", "情况的通报", "结果的公示"),
)


def large_list(*, site, path, query, sandbox):
    """About 2 MB of archive list items (信息公开历史归档)."""
    rng = random.Random(20261120)
    items = []
    day = _dt.date(2026, 11, 20)
    size = 0
    n = 0
    while size < 2_000_000:
        n += 1
        title = "".join(rng.choice(part) for part in _TITLE_PARTS)
        doc = f"{rng.choice(('政办发', '政发', '政办函'))}〔{day.year}〕{rng.randint(1, 120)}号"
        # Archived documents are listed without links (the archive is an index only).
        line = (f'<li id="d{n:06d}"><span class="t">{title}（{doc}）</span>'
                f'<span class="d">{day:%Y-%m-%d}</span></li>\n')
        items.append(line)
        size += len(line.encode("utf-8"))
        if n % 7 == 0:
            day -= _dt.timedelta(days=1)
    body = (f"<h2>政府信息公开历史归档（共 {n} 条）</h2>\n"
            f'<ul class="list">\n{"".join(items)}</ul>\n')
    return 200, _page(site, "政府信息公开历史归档", "信息公开 &gt; 历史归档", body)


def search(*, site, path, query, sandbox):
    """Site search: echoes the (escaped) query and finds nothing."""
    q = html.escape(_first(query, "q", "") or _first(query, "searchWord", ""))
    body = f"""
<form action="/search" method="get" class="search-box">
<input type="text" name="q" value="{q}" placeholder="请输入关键词"> <button type="submit">搜索</button>
</form>
<p>在 <b>{html.escape(site.title)}</b> 中搜索“{q}”，共找到 0 条结果。</p>
<p>建议：请检查输入的关键词是否有误，或尝试其他关键词。</p>
"""
    return 200, _page(site, "站内搜索", "站内搜索", body)


def conac_sitename(*, site, path, query, sandbox):
    """党政机关网站标识 look-up page (the emblem in portal footers links here)."""
    sid = _first(query, "id", "")
    holder = None
    for raw in sandbox.table["sites"]:
        if raw.get("conac_id") and raw["conac_id"] == sid:
            holder = raw
            break
    if holder is None:
        body = "<h2>党政机关网站标识查询</h2><p>未查询到该网站的开办信息，请核实。</p>"
        return 404, _page(site, "党政机关网站标识查询", "网站标识查询", body)
    body = f"""
<h2>党政机关网站标识查询</h2>
<table class="cal" style="width:700px">
<tr><th>网站名称</th><td>{html.escape(holder.get('title', ''))}</td></tr>
<tr><th>网站地址</th><td>{{{{site:{holder['id']}}}}}/</td></tr>
<tr><th>开办单位</th><td>{html.escape(holder.get('owner', holder.get('title', '')))}</td></tr>
<tr><th>网站标识码</th><td>{html.escape(holder.get('site_code', ''))}</td></tr>
<tr><th>标识状态</th><td>有效</td></tr>
</table>
"""
    return 200, _page(site, "党政机关网站标识查询", "网站标识查询", body)


def beian_record(*, site, path, query, sandbox):
    """ICP / 公安备案 record look-up."""
    code = html.escape(_first(query, "recordcode", "") or _first(query, "code", ""))
    body = f"""
<h2>备案信息查询</h2>
<p>备案号：{code or '（未提供）'}</p>
<p>网站类别：政府机关　　备案状态：已备案</p>
"""
    return 200, _page(site, "备案信息查询", "备案查询", body)
