"""The hostile corpus, one entry per case: how the site answers and what must be recorded.

``expect`` is the recorded ``error_status`` of the home page's first capture (the fetch
without a browser); ``rendered`` that of the browser's capture when one must follow. Adding
a case is adding one entry to ``CASES``.
"""

from __future__ import annotations

import gzip
import random
import socket
import zlib
from dataclasses import dataclass, field
from typing import Callable

from tests.hostile.pages import control_page, simple_page
from tests.hostile.server import Request, not_found, send

Serve = Callable[[Request, socket.socket], None]


@dataclass
class Case:
    serve: Serve
    expect: str
    label: str = ""
    rendered: str | None = None  # status of the browser's home capture, when one must follow
    control: bool = False  # every page and finding must be there
    title: str | None = None  # expected title of the home capture
    final_path: str | None = None  # where the home capture ended up
    landing: dict[str, Serve] = field(default_factory=dict)  # other hosts the case sends the crawler to
    landing_pages: tuple[str, ...] = ()  # pages of the landing host that must be crawled
    max_pages: int | None = None  # at most this many captures for the source


def _head(req: Request) -> bool:
    return req.method == "HEAD"


def html_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


# --- building blocks ---------------------------------------------------------------------
def fixed(status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
          content_type: str | None = "text/html; charset=utf-8", home_only: bool = True) -> Serve:
    def serve(req: Request, sock: socket.socket) -> None:
        if home_only and req.path != "/":
            return not_found(req, sock)
        send(sock, status, body, headers, content_type=content_type, head=_head(req))
    return serve


def control(name: str, coding: str | None = None) -> Serve:
    """The control portal, encoded with ``coding`` (gzip, deflate, raw-deflate, br) or not."""
    def serve(req: Request, sock: socket.socket) -> None:
        page = control_page(req.path, name=name)
        if page is None:
            return not_found(req, sock)
        body = page.encode("utf-8")
        headers = [("Vary", "Accept-Encoding")]
        if coding:
            body = encode(body, coding)
            headers.append(("Content-Encoding", "deflate" if coding == "raw-deflate" else coding))
        send(sock, 200, body, headers, head=_head(req))
    return serve


def encode(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body, mtime=0)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "raw-deflate":
        raw = zlib.compressobj(wbits=-15)
        return raw.compress(body) + raw.flush()
    if coding == "br":
        import brotli

        return brotli.compress(body)
    raise ValueError(coding)


def redirect(status: int, location: str | None) -> Serve:
    headers = [("Location", location)] if location is not None else []
    return fixed(status, b"<html><body>moved</body></html>", headers)


def numbered_redirect(hops: int) -> Serve:
    """/ -> /r/1 -> /r/2 -> ... -> /r/hops (a page): a chain longer than the redirect limit."""
    def serve(req: Request, sock: socket.socket) -> None:
        n = 0 if req.path == "/" else int(req.path.rsplit("/", 1)[-1]) if req.path.startswith("/r/") else -1
        if n < 0:
            return not_found(req, sock)
        if n >= hops:
            return send(sock, 200, html_bytes(simple_page("终点", "<p>链条终点</p>")))
        send(sock, 302, b"", [("Location", f"/r/{n + 1}")])
    return serve


def redirect_loop(req: Request, sock: socket.socket) -> None:
    send(sock, 302, b"", [("Location", "/b" if req.path in ("/", "/a") else "/a")])


def flaky(name: str) -> Serve:
    """503 to the first request for a page, then the control portal."""
    inner = control(name)

    def serve(req: Request, sock: socket.socket) -> None:
        if req.path == "/" and req.count() == 1:
            return send(sock, 503, html_bytes(simple_page("503", "<h1>503 Service Unavailable</h1>")),
                        [("Retry-After", "0")])
        inner(req, sock)
    return serve


def truncated_gzip(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    page = control_page("/", name="截断省") + "<!--" + "填充" * 4000 + "-->"
    full = gzip.compress(page.encode("utf-8"), mtime=0)
    send(sock, 200, full[: len(full) // 2], [("Content-Encoding", "gzip")])


def gzip_lying_length(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    body = gzip.compress(control_page("/", name="谎长省").encode("utf-8"), mtime=0)
    send(sock, 200, body, [("Content-Encoding", "gzip")], length=len(body) + 5000)


def decompression_bomb(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    send(sock, 200, BOMB, [("Content-Encoding", "gzip")])


def _bomb() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"<p>" + b" " * (1 << 20) + b"</p>"
    parts = [compressor.compress(b"<html><body>")]
    parts += [compressor.compress(block) for _ in range(40)]  # about 40 MB once decompressed
    parts.append(compressor.flush())
    return b"".join(parts)


BOMB = _bomb()


def challenge(status: int, cookie: str, script: str, passes: bool, name: str) -> Serve:
    """An anti-bot interstitial. ``passes``: with the cookie a browser sets, the page is served."""
    inner = control(name)
    page = html_bytes(f"<html><head><meta charset=\"utf-8\"></head><body><script>{script}</script></body></html>")

    def serve(req: Request, sock: socket.socket) -> None:
        if passes and cookie in req.cookies:
            return inner(req, sock)
        if req.path != "/" and passes:
            return inner(req, sock)
        send(sock, status, page, head=_head(req))
    return serve


def reset_mid_body(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    body = control_page("/", name="重置省").encode("utf-8")
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                 + f"Content-Length: {len(body) * 2}\r\n\r\n".encode() + body[: len(body) // 2])
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close


def slow_drip(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 100000\r\n\r\n<html>")
    for _ in range(120):  # a byte every 0.25 s, far past the crawler's timeout
        if req.web.stopping.wait(0.25):
            return
        sock.sendall(b" ")


def garbage_status_line(req: Request, sock: socket.socket) -> None:
    sock.sendall(b"HTPT/9.9 OKAY maybe\r\nContent-Type: text/html\r\n\r\n<html><body>hi</body></html>")


def huge_headers(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    headers = [(f"X-Padding-{i}", "x" * 1000) for i in range(100)]  # 100 KB of headers
    send(sock, 200, control_page("/", name="巨头省").encode("utf-8"), headers)


def wrong_charset(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    body = simple_page("错码省人民政府门户网站", "<p>网站标识码：9900000002</p>", charset="gbk").encode("gbk")
    send(sock, 200, body, content_type="text/html; charset=utf-8")


def bom_conflict(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    body = b"\xef\xbb\xbf" + simple_page("字节序省人民政府门户网站", "<p>欢迎</p>", charset="gbk").encode("utf-8")
    send(sock, 200, body, content_type="text/html; charset=gbk")


def many_links(req: Request, sock: socket.socket) -> None:
    if req.path == "/":
        links = "".join(f'<li><a href="/p/{i}.html">第{i}条</a></li>' for i in range(10_000))
        return send(sock, 200, html_bytes(simple_page("万链省人民政府门户网站", f"<ul>{links}</ul>")), head=_head(req))
    if req.path.startswith("/p/"):
        return send(sock, 200, html_bytes(simple_page("文章", "<p>正文</p>")), head=_head(req))
    not_found(req, sock)


def deep_nesting(req: Request, sock: socket.socket) -> None:
    if req.path != "/":
        return not_found(req, sock)
    body = "<div>" * 5000 + "深" + "</div>" * 5000 + "<p>网站标识码：9900000003 沙ICP备00000003号</p>"
    send(sock, 200, html_bytes(simple_page("深层省人民政府门户网站", body)), head=_head(req))


def frameset(req: Request, sock: socket.socket) -> None:
    if req.path == "/":
        body = ('<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Frameset//EN"><html><head><meta charset="utf-8">'
                '<title>框架省人民政府门户网站</title></head><frameset rows="100,*">'
                '<frame src="/top.html" name="top"><frame src="/main/" name="main"></frameset></html>')
        return send(sock, 200, html_bytes(body))
    if req.path == "/top.html":
        return send(sock, 200, html_bytes(simple_page("页头", "<h1>框架省人民政府</h1>")))
    if req.path == "/main/":
        return send(sock, 200, control_page("/", name="框架省").encode("utf-8"))
    not_found(req, sock)


def no_content_type(req: Request, sock: socket.socket) -> None:
    """The control portal without a Content-Type header."""
    page = control_page(req.path, name="无类型省")
    if page is None:
        return not_found(req, sock)
    send(sock, 200, page.encode("utf-8"), content_type=None, head=_head(req))


def meta_refresh(req: Request, sock: socket.socket) -> None:
    if req.path == "/":
        body = ('<html><head><meta http-equiv="refresh" content="0; url=/main.html"><title>跳转</title></head>'
                '<body>正在跳转</body></html>')
        return send(sock, 200, html_bytes(body))
    if req.path == "/main.html":
        return send(sock, 200, control_page("/", name="刷新省").encode("utf-8"))
    not_found(req, sock)


def js_redirect(req: Request, sock: socket.socket) -> None:
    if req.path == "/":
        body = '<html><head><title>跳转</title></head><body><script>window.location.href="/main.html";</script></body></html>'
        return send(sock, 200, html_bytes(body))
    if req.path == "/main.html":
        return send(sock, 200, control_page("/", name="脚本省").encode("utf-8"))
    not_found(req, sock)


def moved_home(req: Request, sock: socket.socket) -> None:
    """The registered home page redirects to another host (a moved site)."""
    send(sock, 301, b"", [("Location", req.web.landing_origin("moved_site", "new") + "/")])


def moved_landing(req: Request, sock: socket.socket) -> None:
    pages = {
        "/": simple_page("迁址省人民政府门户网站", '<a href="/zwgk/index.html">政务公开</a> <a href="/xwzx/index.html">新闻</a>'
                         "<p>网站标识码：9900000009</p>"),
        "/zwgk/index.html": simple_page("政务公开", '<a href="/zwgk/deep.html">深层页面</a>'),
        "/xwzx/index.html": simple_page("新闻", "<p>新闻</p>"),
        "/zwgk/deep.html": simple_page("深层页面", "<p>沙ICP备99999999号</p>"),
    }
    if req.path not in pages:
        return not_found(req, sock)
    send(sock, 200, html_bytes(pages[req.path]), head=_head(req))


RANDOM = random.Random(20261120).randbytes(20_000)
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
JSL = ('document.cookie=("__jsl_clearance=1581440000.123|0|"+"abc")+";path=/";'
       "location.href=location.pathname+location.search")
RUISHU = ('$_ts=window["$_ts"];if(!$_ts)$_ts={};$_ts.nsd=84120;'
          'if(document.cookie.indexOf("gv412=")<0){document.cookie="gv412=1; path=/";location.reload();}')
CLEARANCE = 'document.cookie="gv_clearance=ok; path=/";location.reload();'


def _brotli_available() -> bool:
    try:
        import brotli  # noqa: F401
    except ImportError:
        return False
    return True


CASES: dict[str, Case] = {
    # controls: everything must be there
    "control_plain": Case(control("对照甲省"), "ok", "对照甲", control=True),
    "control_gzip": Case(control("对照乙省", "gzip"), "ok", "对照乙", control=True),
    "control_deflate": Case(control("对照丙省", "deflate"), "ok", "对照丙", control=True),
    # nothing to look at
    "empty_200": Case(fixed(200, b""), "empty", "空白"),
    "whitespace_200": Case(fixed(200, b" \r\n\t \n"), "empty", "空格"),
    "no_content_204": Case(fixed(204, b"", content_type=None), "empty", "无内容"),
    "unsolicited_304": Case(fixed(304, b"", content_type=None), "not_modified", "未修改"),
    "redirect_to_file": Case(redirect(302, "file:///etc/passwd"), "refused_redirect", "文件跳转"),
    "redirect_to_data": Case(redirect(302, "data:text/html,<h1>hi</h1>"), "refused_redirect", "数据跳转"),
    "redirect_no_location": Case(redirect(302, None), "refused_redirect", "无址跳转"),
    "multiple_choices_300": Case(redirect(300, "/a"), "refused_redirect", "多选"),
    "random_bytes_as_html": Case(fixed(200, RANDOM), "unreadable", "乱码"),
    "nul_filled": Case(fixed(200, b"\x00" * 8192), "unreadable", "空字符"),
    "png_as_html": Case(fixed(200, PNG), "unreadable", "图片"),
    "gzip_not_declared": Case(fixed(200, gzip.compress(control_page("/", name="未声明省").encode(), mtime=0)),
                              "unreadable", "未声明压缩"),
    "plain_text_no_markup": Case(fixed(200, "系统维护中，请稍后访问".encode("utf-8")), "unreadable", "纯文本"),
    "deep_nesting_5000": Case(deep_nesting, "unreadable", "深层"),
    "truncated_gzip": Case(truncated_gzip, "truncated", "截断"),
    # anti-bot challenges
    "challenge_412": Case(challenge(412, "gv412", RUISHU, False, "瑞数省"), "challenge", "瑞数", rendered="challenge"),
    "challenge_jsl_521": Case(challenge(521, "__jsl_clearance", JSL, True, "加速省"), "challenge", "加速乐",
                              rendered="ok"),
    "challenge_cookie_reload": Case(challenge(200, "gv_clearance", CLEARANCE, True, "验证省"), "challenge", "验证",
                                    rendered="ok"),
    # compression
    "raw_deflate": Case(control("原始压缩省", "raw-deflate"), "ok", "原始压缩"),
    "gzip_lying_length": Case(gzip_lying_length, "truncated", "谎长"),
    "decompression_bomb": Case(decompression_bomb, "too_large", "炸弹"),
    # charsets and markup
    "wrong_charset": Case(wrong_charset, "ok", "错码", title="错码省人民政府门户网站"),
    "bom_conflict": Case(bom_conflict, "ok", "字节序", title="字节序省人民政府门户网站"),
    "many_links_10000": Case(many_links, "ok", "万链", max_pages=8),
    "frameset": Case(frameset, "ok", "框架"),
    "meta_refresh": Case(meta_refresh, "ok", "刷新", final_path="/main.html"),
    "js_location_redirect": Case(js_redirect, "ok", "脚本跳转", rendered="ok"),
    "no_content_type": Case(no_content_type, "ok", "无类型"),
    "html_as_octet_stream": Case(fixed(200, control_page("/", name="八位省").encode(),
                                       content_type="application/octet-stream"), "not_html", "八位"),
    # redirects
    "redirect_loop": Case(redirect_loop, "redirect_loop", "循环"),
    "redirect_chain_12": Case(numbered_redirect(12), "redirect_loop", "长链"),
    "moved_site": Case(moved_home, "ok", "迁址", landing={"new": moved_landing},
                       landing_pages=("/", "/zwgk/index.html", "/xwzx/index.html", "/zwgk/deep.html")),
    # refusals and failures
    "http_401": Case(fixed(401, html_bytes(simple_page("401", "<h1>401</h1>")), [("WWW-Authenticate", 'Basic realm="x"')]),
                     "blocked", "认证"),
    "http_403": Case(fixed(403, html_bytes(simple_page("403", "<h1>403 Forbidden</h1>"))), "blocked", "禁止"),
    "http_429_retry_after": Case(fixed(429, html_bytes(simple_page("429", "<h1>Too Many Requests</h1>")),
                                       [("Retry-After", "3600")]), "blocked", "限流"),
    "flaky_503_then_200": Case(flaky("抖动省"), "ok", "抖动"),
    "reset_mid_body": Case(reset_mid_body, "truncated", "重置"),
    "slow_drip": Case(slow_drip, "timeout", "滴漏"),
    "garbage_status_line": Case(garbage_status_line, "unreachable", "乱状态"),
    "headers_100kb": Case(huge_headers, "ok", "巨头"),
}

if _brotli_available():
    CASES["brotli"] = Case(control("布罗省", "br"), "ok", "布罗")
