"""The sandbox of fictional government sites behaves as its README promises."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest
import yaml

from sandbox import Sandbox
from sandbox.server import PLACEHOLDER_RE, SITES_DIR, SOURCE_KEYS, TARGET_KEYS

SLOW = 0.6
ROOT = Path(__file__).resolve().parents[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_raw_opener = urllib.request.build_opener(_NoRedirect)


def fetch(url: str, follow: bool = False, method: str = "GET", timeout: float = 5.0):
    """Return (status, headers, body) without raising on HTTP errors."""
    req = urllib.request.Request(quote(url, safe=":/?&=%#"), method=method)
    opener = urllib.request.build_opener() if follow else _raw_opener
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def sb():
    box = Sandbox(port=0, slow_seconds=SLOW)
    box.start()
    yield box
    box.stop()


def url(sb: Sandbox, site_id: str, path: str = "") -> str:
    return sb.url(site_id, path)


# --------------------------------------------------------------- registry

def test_registry_format(sb):
    reg = sb.registry()
    assert reg["version"] == 1
    codes = [t["code"] for t in reg["targets"]]
    assert {"910000", "920000", "910100", "920100", "910200"} <= set(codes)
    kinds = set()
    for target in reg["targets"]:
        assert set(target) <= set(TARGET_KEYS)
        assert isinstance(target["code"], str)
        assert target["level"] in ("province", "city")
        if target["level"] == "city":
            assert target["parent"] in codes
        portals = [s for s in target["sources"] if s["kind"] == "portal"]
        assert len(portals) == 1 and target["sources"][0]["kind"] == "portal"
        for source in target["sources"]:
            assert set(source) <= set(SOURCE_KEYS)
            assert source["url"].startswith("http://127.") and source["url"].endswith("/")
            assert "{{" not in source["url"]
            kinds.add(source["kind"])
    assert kinds == {"portal", "service", "opendata", "interaction", "department", "newmedia"}
    by_code = {t["code"]: t for t in reg["targets"]}
    service = by_code["910000"]["sources"][1]
    assert service["kind"] == "service" and service["render"] is True
    assert service["url"] == sb.base_url("t910000-service")
    # left out on purpose: to be discovered from the 海州市 portal
    hz_urls = {s["url"] for s in by_code["910100"]["sources"]}
    assert sb.base_url("t910100-interaction") not in hz_urls
    assert sb.base_url("t910100-dept-jyj") not in hz_urls
    assert by_code["910200"]["sources"][0]["url"] == f"http://127.0.0.254:{sb.port}/"


def test_write_registry_roundtrip(sb, tmp_path):
    path = tmp_path / "registry.yaml"
    sb.write_registry(path)
    text = path.read_text(encoding="utf-8")
    assert "东海省" in text  # allow_unicode
    assert yaml.safe_load(text) == sb.registry()


def test_registry_urls_answer(sb):
    dead = {sb.base_url(i) for i, s in sb.sites.items() if s.dead}
    slow = {sb.base_url(i) for i, s in sb.sites.items() if s.slow}
    for target in sb.registry()["targets"]:
        for source in target["sources"]:
            if source["url"] in dead or source["url"] in slow:
                continue
            status, headers, _ = fetch(source["url"])
            if source["url"] == sb.base_url("t910000-portal"):
                assert status == 302 and headers["Location"] == "/index.html"
            else:
                assert status == 200, source["url"]


# ------------------------------------------------------------ placeholders

def test_stored_placeholders_name_known_sites(sb):
    unknown = set()
    for path in SITES_DIR.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js", ".css", ".txt"):
            for site_id in PLACEHOLDER_RE.findall(path.read_text(encoding="utf-8")):
                if site_id not in sb.sites:
                    unknown.add((path.name, site_id))
    assert not unknown


def _decode(headers, body: bytes) -> str:
    ctype = headers.get("Content-Type", "")
    if "charset=utf-8" in ctype:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return body.decode("gb18030")


def test_served_pages_substituted_and_portals_have_depth(sb):
    """Crawl every live site to depth 2: no placeholder survives; portals have pages."""
    skip = ("/zwgk/lsgd/all.html", "/zwhd/calendar")
    for site_id, site in sb.sites.items():
        if site.dead or site.slow:
            continue
        origin = sb.base_url(site_id).rstrip("/")
        seen: set[str] = set()
        pages = 0
        queue = deque([(origin + "/", 0)])
        while queue:
            page, depth = queue.popleft()
            page = page.split("#", 1)[0]
            if page in seen or any(s in page for s in skip):
                continue
            seen.add(page)
            status, headers, body = fetch(page, follow=True)
            if status != 200 or "html" not in headers.get("Content-Type", "html"):
                continue
            assert b"{{site:" not in body, page
            pages += 1
            if depth >= 2:
                continue
            for href in re.findall(r'href="([^"#][^"]*)"', _decode(headers, body)):
                full = urljoin(page, href.replace("&amp;", "&"))
                if full.startswith(origin + "/"):
                    queue.append((full, depth + 1))
        if site_id.endswith("-portal"):
            assert pages >= 6, (site_id, pages)


# --------------------------------------------------------------- encodings

def test_gbk_site(sb):
    status, headers, body = fetch(url(sb, "t920000-portal"))
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=gbk"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("gbk")
    assert "西岭省人民政府" in text and "&#" not in text
    assert "网站标识码：<span>9200</span><span>000001</span>" in text


def test_gb18030_page_labelled_gb2312(sb):
    status, headers, body = fetch(url(sb, "t920000-portal", "/xxgk/gb18030.html"))
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=gb2312"
    with pytest.raises(UnicodeDecodeError):
        body.decode("gb2312")
    text = body.decode("gb18030")
    assert 'charset=gb2312' in text and "王\U00020BB7" in text


def test_gbk_page_without_header_charset(sb):
    status, headers, body = fetch(url(sb, "t920000-portal", "/xwzx/nocharset.html"))
    assert status == 200 and headers["Content-Type"] == "text/html"
    text = body.decode("gbk")
    assert 'charset=gbk' in text and "常务会议" in text


def test_wrong_charset_declaration(sb):
    status, headers, body = fetch(url(sb, "t920000-portal", "/xwzx/wrongcharset.html"))
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    text = body.decode("gbk")
    assert 'charset=gbk' in text and "森林草原防灭火" in text


# -------------------------------------------------- widgets and traps

def test_js_only_evaluation_widget(sb):
    _, _, body = fetch(url(sb, "t910000-service"))
    text = body.decode("utf-8")
    assert '<div id="hcp-widget"></div>' in text
    assert "好差评" not in text and "/js/hcp.js" in text
    _, _, script = fetch(url(sb, "t910000-service", "/js/hcp.js"))
    script_text = script.decode("utf-8")
    assert "好差评" in script_text and "DOMContentLoaded" in script_text


def test_published_evaluation_statistics(sb):
    _, _, body = fetch(url(sb, "t920000-service"))
    text = body.decode("utf-8")
    assert "99.82%" in text and "12,345" in text and "差评整改率" in text


def test_negative_traps(sb):
    _, _, body = fetch(url(sb, "t910000-portal", "/index.html"))
    text = body.decode("utf-8")
    assert '我省召开政务服务"好差评"工作推进会' in text
    assert "hcp" not in text  # the portal itself has no evaluation entry

    _, _, body = fetch(url(sb, "t920100-portal"))
    text = body.decode("utf-8")
    visible = re.sub(r"<script.*?</script>|<!--.*?-->", "", text, flags=re.S)
    assert "网站标识码" in text and "网站标识码" not in visible
    assert "西ICP备" in text and "ICP备" not in visible
    hidden = re.search(r'<div class="g-assist" style="display:none">(.*?)</div>', text, re.S)
    assert hidden and "长者模式" in hidden.group(1)


# ------------------------------------------------------ special behaviours

def test_dead_host_refuses(sb):
    with pytest.raises(urllib.error.URLError) as info:
        urllib.request.urlopen(f"http://127.0.0.254:{sb.port}/", timeout=3)
    assert isinstance(info.value.reason, ConnectionRefusedError)


def test_slow_host(sb):
    start = time.monotonic()
    status, _, _ = fetch(url(sb, "t910200-service"), timeout=SLOW + 5)
    assert status == 200
    assert time.monotonic() - start >= SLOW


def test_redirects(sb):
    status, headers, _ = fetch(url(sb, "t910000-portal"))
    assert (status, headers["Location"]) == (302, "/index.html")
    status, headers, _ = fetch(url(sb, "t910000-portal", "/zwgk/old/"))
    assert (status, headers["Location"]) == (301, "/zwgk/tzgg/")
    status, _, _ = fetch(url(sb, "t910000-portal", "/zwgk/tzgg/"))
    assert status == 200
    status, headers, _ = fetch(url(sb, "t910000-portal", "/loop/a"))
    assert (status, headers["Location"]) == (302, "/loop/b")
    status, headers, _ = fetch(url(sb, "t910000-portal", "/loop/b"))
    assert (status, headers["Location"]) == (302, "/loop/a")
    status, _, _ = fetch(url(sb, "t910000-portal", "/loop/a"), follow=True)
    assert status in (301, 302)  # urllib gives up on the loop


def test_broken_links(sb):
    _, _, body = fetch(url(sb, "t910000-portal", "/index.html"))
    text = body.decode("utf-8")
    for path in ("/zwgk/tzgg/2025/t20250108_4012.html", "/bmwz/kjt.html", "/bmwz/gat.html"):
        assert f'href="{path}"' in text
        assert fetch(url(sb, "t910000-portal", path))[0] == 404
    assert 'href="/zwgk/zcjd/2026/broken.html"' in text
    assert fetch(url(sb, "t910000-portal", "/zwgk/zcjd/2026/broken.html"))[0] == 500


def test_unknown_paths_404(sb):
    for site_id, site in sb.sites.items():
        if site.dead or site.slow:
            continue
        assert fetch(url(sb, site_id, "/no/such/page-20261120.html"))[0] == 404, site_id
        assert fetch(url(sb, site_id, "/_inc/header.html"))[0] == 404


def test_robots(sb):
    for site_id, site in sb.sites.items():
        if site.dead or site.slow:
            continue
        status, headers, body = fetch(url(sb, site_id, "/robots.txt"))
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        if site_id == "t910100-portal":
            assert "Disallow: /private/" in body.decode("utf-8")
    _, _, body = fetch(url(sb, "t910100-portal"))
    assert 'href="/private/"' in body.decode("utf-8")
    assert fetch(url(sb, "t910100-portal", "/private/"))[0] == 200


def test_spider_trap_calendar(sb):
    _, _, body = fetch(url(sb, "t910100-portal", "/zwhd/calendar?month=2026-12"))
    assert 'href="/zwhd/calendar?month=2027-01">下一月' in body.decode("utf-8")
    _, _, body = fetch(url(sb, "t910100-portal", "/zwhd/calendar?month=2099-12"))
    assert "month=2100-01" in body.decode("utf-8")
    assert fetch(url(sb, "t910100-portal", "/zwhd/calendar?month=bad"))[0] == 404


def test_large_page(sb):
    _, _, body = fetch(url(sb, "t920100-portal", "/zwgk/lsgd/"))
    assert 'href="/zwgk/lsgd/all.html"' in body.decode("utf-8")
    status, _, body = fetch(url(sb, "t920100-portal", "/zwgk/lsgd/all.html"))
    assert status == 200 and len(body) >= 2_000_000


def test_head_request(sb):
    status, headers, body = fetch(url(sb, "t910000-portal", "/index.html"), method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 3000


def test_registration_lookups(sb):
    _, _, body = fetch(url(sb, "t910000-portal", "/index.html"))
    link = re.search(r'href="(http://[^"]+/sitename\?[^"]+)"', body.decode("utf-8")).group(1)
    status, _, page = fetch(link.replace("&amp;", "&"))
    assert status == 200 and "9100000001" in page.decode("utf-8")


@pytest.mark.browser
def test_widget_appears_in_a_browser(sb):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(sb.url("t910000-service"))
            text = page.inner_text("#hcp-widget")
        finally:
            browser.close()
    assert "好差评" in text and "本月好评率" in text


# ------------------------------------------------------------- lifecycle

def test_stop_frees_port():
    box = Sandbox(port=0, slow_seconds=0.1)
    with box:
        port = box.port
        ips = [s.ip for s in box.sites.values() if not s.dead]
        assert fetch(box.base_url("t920000-portal"))[0] == 200
    for ip in ips:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((ip, port))
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{ips[0]}:{port}/", timeout=2)


def test_main_module(tmp_path):
    reg = tmp_path / "reg.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--slow-seconds", "0.1",
         "--write-registry", str(reg)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("serving"):
                break
        out = "".join(lines)
        assert "t910000-portal" in out and "dead host" in out
        assert yaml.safe_load(reg.read_text(encoding="utf-8"))["version"] == 1
        portal = re.search(r"t910000-portal\s+(\S+)", out).group(1)
        assert urlsplit(portal).hostname == "127.0.0.10"
        assert fetch(portal + "index.html")[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=5)


# ------------------------------------------------------------- compression

def _raw(url: str, headers: dict[str, str]):
    """(status, headers, raw body as sent) of a GET with the given request headers."""
    req = urllib.request.Request(url, headers=headers)
    try:
        with _raw_opener.open(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_pages_are_compressed_when_the_client_accepts_it(sb):
    import gzip
    import zlib

    page = url(sb, "t910000-portal", "/index.html")
    _, _, plain = fetch(page)
    status, headers, body = _raw(page, {"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == plain and int(headers["Content-Length"]) == len(body) < len(plain)
    assert _raw(page, {"Accept-Encoding": "gzip"})[2] == body  # the same bytes every time
    status, headers, body = _raw(page, {"Accept-Encoding": "deflate"})
    assert headers["Content-Encoding"] == "deflate" and zlib.decompress(body) == plain
    status, headers, body = _raw(page, {"Accept-Encoding": "gzip;q=0, deflate;q=0"})
    assert "Content-Encoding" not in headers and body == plain
    # without Accept-Encoding (urllib's default) nothing is compressed
    assert "Content-Encoding" not in fetch(page)[1]


def test_some_sites_never_compress(sb):
    uncompressed = [i for i, s in sb.sites.items() if not s.compress and not s.dead]
    assert uncompressed and len(uncompressed) < len(sb.sites) / 2
    status, headers, body = _raw(sb.base_url(uncompressed[0]), {"Accept-Encoding": "gzip"})
    assert status == 200 and "Content-Encoding" not in headers and b"<html" in body.lower()


def test_generated_pages_are_chunked(sb):
    import gzip

    status, headers, body = _raw(url(sb, "t910100-portal", "/zwhd/calendar?month=2026-12"), {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    assert "政务活动日历" in gzip.decompress(body).decode("utf-8")  # urllib removed the chunk framing
    status, headers, body = _raw(url(sb, "t910000-portal", "/search?q=x"), {})
    assert headers["Transfer-Encoding"] == "chunked" and "站内搜索" in body.decode("utf-8")


def test_conditional_requests(sb):
    page = url(sb, "t910000-portal", "/index.html")
    _, headers, _ = fetch(page)
    etag, modified = headers["ETag"], headers["Last-Modified"]
    assert _raw(page, {"If-None-Match": etag})[0] == 304
    status, headers_304, body = _raw(page, {"If-Modified-Since": modified})
    assert status == 304 and body == b"" and headers_304["ETag"] == etag
    assert _raw(page, {"If-None-Match": '"other"', "If-Modified-Since": modified})[0] == 200  # ETag wins
    assert _raw(page, {"If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"})[0] == 200
    _, gz_headers, _ = _raw(page, {"Accept-Encoding": "gzip"})
    assert gz_headers["ETag"] == "W/" + etag
    assert _raw(page, {"Accept-Encoding": "gzip", "If-None-Match": gz_headers["ETag"]})[0] == 304
