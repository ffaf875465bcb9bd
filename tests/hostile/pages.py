"""HTML of the hostile corpus: the control portal's pages and small fragments."""

from __future__ import annotations

CONTROL_TITLE = "{name}人民政府门户网站"

_FOOT = """<div class="foot">
<p>主办：{name}人民政府办公厅　承办：{name}大数据中心　版权所有</p>
<p>网站标识码：{site_code}　{prefix}ICP备{icp}号　{prefix}公网安备 {psb}号</p>
<p>联系电话：0000-12345678　<a href="/wzdt/index.html">网站地图</a></p>
</div>"""

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<div class="top"><h1>{name}人民政府门户网站</h1>
<form action="/search" method="get" class="search"><input type="text" name="q" placeholder="请输入关键词">
<button type="submit">搜索</button></form></div>
<ul class="nav"><li><a href="/">首页</a></li><li><a href="/zwgk/index.html">政务公开</a></li>
<li><a href="/xwzx/index.html">新闻中心</a></li><li><a href="/hdjl/index.html">互动交流</a></li></ul>
<div class="main">{body}</div>
{foot}
</body></html>
"""

HOME_BODY = """<h2>政务要闻</h2><ul class="list">
<li><a href="/xwzx/t20261118_001.html">关于做好冬季安全生产工作的通知</a><span>2026-11-18</span></li>
<li><a href="/xwzx/t20261116_002.html">关于公布政务服务事项清单的通知</a><span>2026-11-16</span></li>
</ul>"""

# path -> (title, body); every control site serves these pages.
CONTROL_PAGES = {
    "/": ("{name}人民政府门户网站", HOME_BODY),
    "/zwgk/index.html": ("政务公开", "<h2>政府信息公开</h2><p>政府信息公开指南、公开目录与年度报告。</p>"),
    "/xwzx/index.html": ("新闻中心", '<h2>新闻中心</h2><p><a href="/xwzx/t20261118_001.html">冬季安全生产</a></p>'),
    "/hdjl/index.html": ("互动交流", "<h2>互动交流</h2><p>欢迎通过留言板反映问题。</p>"),
    "/xwzx/t20261118_001.html": ("关于做好冬季安全生产工作的通知",
                                 "<h2>关于做好冬季安全生产工作的通知</h2><p>发布时间：2026-11-18</p><p>各有关单位……</p>"),
    "/wzdt/index.html": ("网站地图", '<h2>网站地图</h2><p><a href="/zwgk/index.html">政务公开</a></p>'),
    "/xwzx/t20261116_002.html": ("关于公布政务服务事项清单的通知",
                                 "<h2>关于公布政务服务事项清单的通知</h2><p>发布时间：2026-11-16</p><p>现将清单公布如下。</p>"),
}


def control_page(path: str, *, name: str, site_code: str = "9900000001", prefix: str = "沙",
                 icp: str = "12345678", psb: str = "99010202000001") -> str | None:
    """A page of the control portal, or None when it has no such page."""
    if path not in CONTROL_PAGES:
        return None
    title, body = CONTROL_PAGES[path]
    foot = _FOOT.format(name=name, site_code=site_code, prefix=prefix, icp=icp, psb=psb)
    return _PAGE.format(title=title.format(name=name), name=name, body=body, foot=foot)


def simple_page(title: str, body: str, *, charset: str = "utf-8") -> str:
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="{charset}"><title>{title}</title></head>'
            f"<body>{body}</body></html>")
