"""The address policy: unit tests, and a real crawl of a hostile site inside a network namespace.

The end-to-end test runs this file as a driver inside ``unshare -n -m``: a private network
(only ``lo``, carrying 127.0.0.x and the refused addresses 10.0.0.1, 169.254.169.254, …) and a
private ``/etc/hosts``. Trap listeners on the refused addresses record every connection; a
small hostile site on 127.0.0.x links, redirects and (in a rendered page) loads from them.
Nothing can leak: the namespace has no route out, and it disappears with the driver.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scrapy.exceptions import IgnoreRequest
from twisted.python.failure import Failure

from crawler.addresses import AddressPolicy, RefusedAddress, parse_networks
from crawler.errors import classify_failure

REPO_ROOT = Path(__file__).resolve().parent.parent

# --- the policy -----------------------------------------------------------------------

REFUSED = {
    "10.0.0.1": "private", "172.16.0.1": "private", "172.31.255.254": "private", "192.168.1.1": "private",
    "127.0.0.1": "loopback", "127.255.255.254": "loopback", "::1": "loopback",
    "169.254.169.254": "link-local", "fe80::1": "link-local", "fe80::1%2": "link-local",
    "224.0.0.1": "multicast", "239.255.255.250": "multicast", "ff02::1": "multicast",
    "0.0.0.0": "unspecified", "::": "unspecified", "0.1.2.3": "this network",
    "100.64.0.1": "CGNAT", "100.127.255.254": "CGNAT",
    "198.18.0.1": "benchmarking", "198.19.255.254": "benchmarking",
    "192.0.2.1": "documentation", "198.51.100.7": "documentation", "203.0.113.9": "documentation",
    "2001:db8::1": "documentation", "240.0.0.1": "reserved", "255.255.255.255": "reserved",
    "192.0.0.8": "IETF", "fd00::1": "unique local", "fc12:3456::1": "unique local", "fec0::1": "site-local",
    "::ffff:10.0.0.1": "embeds 10.0.0.1", "::ffff:127.0.0.1": "embeds 127.0.0.1",
    "::ffff:169.254.169.254": "embeds 169.254.169.254", "2002:a00:1::": "embeds 10.0.0.1",
    "64:ff9b::a9fe:a9fe": "embeds 169.254.169.254",
}
ALLOWED = ["8.8.8.8", "1.1.1.1", "114.114.114.114", "202.96.128.86", "100.128.0.1", "172.32.0.1",
           "2400:3200::1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address,why", sorted(REFUSED.items()))
def test_special_addresses_are_refused(address, why):
    reason = AddressPolicy().address_refusal(address)
    assert reason is not None and why.lower() in reason.lower(), (address, reason)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().address_refusal(address) is None


def test_allowed_networks_open_only_what_they_list():
    policy = AddressPolicy(parse_networks("127.0.0.0/8, 10.1.0.0/16"))
    assert policy.address_refusal("127.0.0.254") is None
    assert policy.address_refusal("::ffff:127.0.0.5") is None  # mapped form of an allowed address
    assert policy.address_refusal("10.1.2.3") is None
    assert policy.address_refusal("10.2.0.1") == "private"
    assert policy.address_refusal("::1") == "loopback"  # IPv6 loopback is not in 127.0.0.0/8
    assert policy.address_refusal("169.254.169.254") == "link-local"
    assert parse_networks(["fd00::/8"]) == (ipaddress.ip_network("fd00::/8"),)
    assert parse_networks("") == () and parse_networks(None) == ()
    with pytest.raises(ValueError, match="not a network"):
        parse_networks("10.0.0.0/8, intranet")


def test_a_name_is_refused_when_any_of_its_addresses_is():
    policy = AddressPolicy()
    refusal = policy.addresses_refusal("mixed.example", ["8.8.8.8", "10.0.0.1", "2400:3200::1"])
    assert refusal is not None and refusal.host == "mixed.example"
    assert "10.0.0.1 is private" in refusal.reason and "8.8.8.8" not in refusal.reason
    assert policy.addresses_refusal("v6.example", ["8.8.8.8", "fd12::1"]) is not None
    assert policy.addresses_refusal("public.example", ["8.8.8.8", "2400:3200::1"]) is None
    allowed = AddressPolicy(["127.0.0.0/8"])
    assert allowed.addresses_refusal("mixed.trap.test", ["127.0.0.21", "10.0.0.1"]) is not None
    assert allowed.addresses_refusal("site.test", ["127.0.0.21"]) is None


@pytest.mark.parametrize("url,refused", [
    ("http://10.0.0.1/", True), ("https://[::1]:8443/x", True), ("http://[::ffff:a9fe:a9fe]/", True),
    ("http://169.254.169.254/latest/meta-data/", True), ("ftp://8.8.8.8/", True), ("file:///etc/passwd", True),
    ("gopher://8.8.8.8/", True), ("http://gaia.invalid/", True), ("http:///nohost", True),
    ("http://8.8.8.8/", False), ("https://[2400:3200::1]/", False),
])
def test_url_checks_without_lookup(url, refused):
    answer = AddressPolicy().url_refusal(url)
    assert (answer not in (None, True)) is refused, answer
    if not refused:
        assert answer is None


def test_names_need_a_lookup():
    assert AddressPolicy().url_refusal("https://www.gov.cn/") is True


def test_refusal_is_recorded_as_private_address():
    refusal = AddressPolicy().addresses_refusal("intranet.example", ["10.0.0.1"])
    exc = RefusedAddress(refusal, "http://intranet.example/")
    assert isinstance(exc, IgnoreRequest)
    status, detail = classify_failure(Failure(exc))
    assert status == "private_address"
    assert "intranet.example" in detail and "10.0.0.1" in detail and "private" in detail


# --- end to end, inside a network namespace -------------------------------------------

TRAP_ADDRESSES = ["10.0.0.1", "169.254.169.254", "192.168.1.1", "172.16.0.1", "100.64.0.1"]
SITE = "127.0.0.20"      # the hostile portal, also www.hostile.test
RENDER = "127.0.0.21"    # the rendered page's site, also half of mixed.trap.test
TRAP_PORTS = [80, 443, 8080]
HOSTS = f"""127.0.0.1 localhost
{SITE} www.hostile.test
{RENDER} render.hostile.test
10.0.0.1 intranet.trap.test
192.168.1.1 data.trap.test
{RENDER} mixed.trap.test
10.0.0.1 mixed.trap.test
"""

PORTAL_HOME = """<!doctype html><html><head><meta charset="utf-8"><title>测试省人民政府门户网站</title></head>
<body><h1>测试省人民政府</h1>
<p>欢迎访问测试省人民政府门户网站。本站发布政务信息、政策文件、办事服务与互动交流内容。</p>
<ul>
<li><a href="http://10.0.0.1/">测试省政务服务网</a></li>
<li><a href="http://192.168.1.1/opendata/">测试省公共数据开放平台</a></li>
<li><a href="http://intranet.trap.test/">政务服务网（内网）</a></li>
<li><a href="http://data.trap.test/">数据开放</a></li>
<li><a href="http://mixed.trap.test/hudong/">互动交流 留言咨询</a></li>
<li><a href="http://169.254.169.254/latest/meta-data/">信息公开</a></li>
<li><a href="/go/metadata">通知公告</a></li>
<li><a href="/go/ten">政策文件</a></li>
<li><a href="/go/name">机构职能</a></li>
<li><a href="/about.html">关于本站</a></li>
</ul>
<p>主办：测试省人民政府办公厅 网站标识码：9900000001 京ICP备12345678号</p>
</body></html>"""

RENDER_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>测试省政务服务网</title>
<link rel="stylesheet" href="http://172.16.0.1/style.css">
<link rel="preconnect" href="http://192.168.1.1:8080">
<link rel="dns-prefetch" href="//intranet.trap.test">
</head><body><h1>测试省政务服务网</h1><p>个人办事 法人办事 部门服务 热门事项 办事指南</p>
<img src="/allowed.png" alt="allowed">
<img src="http://10.0.0.1/pixel.png">
<img src="http://mixed.trap.test/pixel.png">
<img src="/go/metadata-image">
<iframe src="http://169.254.169.254/latest/meta-data/"></iframe>
<iframe src="/go/frame"></iframe>
<script>
fetch("http://intranet.trap.test/api").catch(() => {});
fetch("http://100.64.0.1:8080/api", {mode: "no-cors"}).catch(() => {});
var x = new XMLHttpRequest(); x.open("GET", "http://192.168.1.1/xhr"); x.send();
try { new WebSocket("ws://10.0.0.1/socket"); } catch (e) {}
try { new WebSocket("ws://" + location.host + "/go/ws"); } catch (e) {}
navigator.sendBeacon("http://data.trap.test/beacon", "x");
navigator.sendBeacon("http://172.16.0.1:8080/beacon", "x");
if (navigator.serviceWorker) navigator.serviceWorker.register("/sw.js").catch(() => {});
</script></body></html>"""

REDIRECTS = {
    "/go/metadata": "http://169.254.169.254/latest/meta-data/",
    "/go/ten": "http://10.0.0.1/",
    "/go/name": "http://intranet.trap.test/",
    "/go/metadata-image": "http://169.254.169.254/latest/meta-data/iam.png",
    "/go/frame": "http://192.168.1.1/frame.html",
    "/go/ws": "http://10.0.0.1/socket",
}


class _Traps:
    """TCP listeners on the refused addresses; each records its connections and first line."""

    def __init__(self) -> None:
        self.hits: list[dict] = []
        self.servers: list[socketserver.ThreadingTCPServer] = []
        lock = threading.Lock()
        hits = self.hits

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(2)
                try:
                    line = self.request.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    line = ""
                with lock:
                    hits.append({"trap": "%s:%s" % self.server.server_address[:2], "from": self.client_address[0],
                                 "line": line})

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        for address in TRAP_ADDRESSES:
            for port in TRAP_PORTS:
                server = socketserver.ThreadingTCPServer((address, port), Handler)
                server.daemon_threads = True
                threading.Thread(target=server.serve_forever, daemon=True).start()
                self.servers.append(server)


def _site(address: str, pages: dict[str, str], log: list[str]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            log.append(f"{address}{self.path}")
            path = self.path.split("?")[0]
            if path in REDIRECTS:
                self.send_response(302)
                self.send_header("Location", REDIRECTS[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path == "/robots.txt":
                body, kind = b"User-agent: *\nAllow: /\n", "text/plain"
            elif path == "/allowed.png":
                body, kind = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
                              b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
                              b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"), "image/png"
            elif path in pages:
                body = pages[path].encode("utf-8")
                kind = "text/javascript" if path.endswith(".js") else "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((address, 80), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _registry(path: Path, sources: list[dict]) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"version": 1, "targets": [
        {"code": "990000", "name": "测试省", "level": "province", "sources": sources}]},
        allow_unicode=True, sort_keys=False), encoding="utf-8")


def _crawl(work: Path, name: str, registry: Path, **settings: str) -> dict:
    from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl

    data = work / name
    data.mkdir()
    log = data / "crawl.log"
    result = scrapy_crawl("province_portals", args={"registry": str(registry)},
                          settings={**SANDBOX_SETTINGS, "LOG_LEVEL": "INFO", "LOG_FILE": str(log),
                                    "GOVEVIDENCE_ALLOWED_NETWORKS": "127.0.0.0/8", **settings},
                          env={"DATABASE_URL": f"sqlite:///{data / 'db.sqlite3'}", "GOVEVIDENCE_DATA_DIR": str(data)},
                          capture=True, timeout=240)
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    stats = {key: int(value) for key, value in re.findall(r"'(govevidence/[\w/]+|playwright/[\w/]+)': (\d+)", text)}
    captures: list[dict] = []
    findings: list[dict] = []
    if result.returncode == 0:
        with sqlite3.connect(data / "db.sqlite3") as db:
            captures = [dict(zip(("url", "status", "detail", "rendered", "depth"), row)) for row in db.execute(
                "select requested_url, error_status, error_detail, rendered, depth from page_captures")]
            findings = [dict(zip(("indicator", "verdict", "url"), row)) for row in db.execute(
                "select f.indicator, f.verdict, c.requested_url from findings f"
                " join page_captures c on c.id = f.capture_id")]
    return {"returncode": result.returncode, "stderr": (result.stderr + text)[-3000:], "stats": stats,
            "captures": captures, "findings": findings,
            "log_refusals": re.findall(r"(?:Refused|refused) [^\n]*", text)[:80]}


def _driver(work: Path) -> dict:
    """Inside the namespace: traps, the hostile site, two crawls; returns what was seen."""
    traps = _Traps()
    site_log: list[str] = []
    _site(SITE, {"/": PORTAL_HOME, "/about.html": PORTAL_HOME.replace("测试省人民政府门户网站", "关于本站")}, site_log)
    _site(RENDER, {"/service/": RENDER_PAGE, "/": RENDER_PAGE,
                   "/sw.js": "self.addEventListener('fetch', () => {});"}, site_log)
    resolved = {name: sorted({i[4][0] for i in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)})
                for name in ("www.hostile.test", "mixed.trap.test", "intranet.trap.test")}
    registry = work / "hostile.yaml"
    _registry(registry, [
        {"kind": "portal", "url": "http://www.hostile.test/"},
        {"kind": "service", "url": f"http://{RENDER}/service/", "render": True},
        {"kind": "department", "url": "http://mixed.trap.test/dept/"},
        {"kind": "opendata", "url": "http://172.16.0.1/"},
    ])
    full = _crawl(work, "full", registry)
    # Without the middleware, the resolver alone must keep Scrapy away from the traps.
    resolver_registry = work / "resolver.yaml"
    _registry(resolver_registry, [{"kind": "portal", "url": "http://intranet.trap.test/"},
                                  {"kind": "service", "url": "http://10.0.0.1/"}])
    from crawler import settings as project

    middlewares = json.dumps({**project.DOWNLOADER_MIDDLEWARES, "crawler.addresses.AddressPolicyMiddleware": None})
    resolver_only = _crawl(work, "resolver", resolver_registry, DOWNLOADER_MIDDLEWARES=middlewares,
                           GOVEVIDENCE_SCREENSHOTS="False", GOVEVIDENCE_AUTO_RENDER="False")
    return {"traps": traps.hits, "site_log": site_log, "resolved": resolved, "full": full,
            "resolver_only": resolver_only}


def _namespace_usable() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    for tool in ("unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "-n", "-m", "sh", "-c", "ip link set lo up && ip addr add 10.0.0.1/32 dev lo"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -n -m is not permitted here: {probe.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def hostile_crawl():
    reason = _namespace_usable()
    if reason:
        pytest.skip(reason)
    with tempfile.TemporaryDirectory(prefix="govevidence-ssrf-") as folder:
        work = Path(folder)
        hosts = work / "hosts"
        hosts.write_text(HOSTS)
        setup = ["ip link set lo up"] + [f"ip addr add {a}/32 dev lo" for a in TRAP_ADDRESSES] + [
            f"mount --bind {hosts} /etc/hosts",
            f"exec {sys.executable} {Path(__file__).resolve()} driver {work}",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        result = subprocess.run(["unshare", "-n", "-m", "sh", "-c", " && ".join(setup)], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=540, env=env)
        assert result.returncode == 0, result.stderr[-4000:]
        yield json.loads((work / "result.json").read_text())


@pytest.mark.slow
def test_hostile_site_reaches_no_refused_address(hostile_crawl):
    full = hostile_crawl["full"]
    assert set(hostile_crawl["resolved"]["mixed.trap.test"]) == {RENDER, "10.0.0.1"}
    assert full["returncode"] == 0, full["stderr"]
    # Nothing, from Scrapy or from chromium, reached a trap.
    assert hostile_crawl["traps"] == [], hostile_crawl["traps"]
    captures = full["captures"]
    refused = {c["url"]: c for c in captures if c["status"] == "private_address"}
    for url in ("http://10.0.0.1/", "http://192.168.1.1/opendata/", "http://intranet.trap.test/",
                "http://data.trap.test/", "http://mixed.trap.test/dept/", "http://172.16.0.1/"):
        assert url in refused, (url, sorted(refused))
    assert "10.0.0.1" in refused["http://intranet.trap.test/"]["detail"]
    assert "10.0.0.1" in refused["http://mixed.trap.test/dept/"]["detail"]
    # Redirect hops are refused too; the capture names the URL that was asked for.
    for hop, target in (("/go/metadata", "169.254.169.254"), ("/go/ten", "10.0.0.1"), ("/go/name", "intranet.trap.test")):
        capture = refused.get(f"http://www.hostile.test{hop}")
        assert capture is not None and target in capture["detail"], (hop, sorted(refused))
    # The portal itself was looked at: its findings exist.
    home = [f for f in full["findings"] if f["url"] == "http://www.hostile.test/"]
    assert any(f["indicator"] == "site.reachable" and f["verdict"] == "present" for f in home), home
    assert len(home) > 5
    # The browser rendered the service page, refused its hostile requests and loaded its own image.
    assert any(c["url"] == f"http://{RENDER}/service/" and c["rendered"] and c["status"] == "ok" for c in captures), captures
    assert f"{RENDER}/allowed.png" in hostile_crawl["site_log"], hostile_crawl["site_log"]
    assert f"{RENDER}/sw.js" not in hostile_crawl["site_log"]  # service workers are blocked
    assert full["stats"].get("govevidence/refused_browser_requests", 0) > 0, full["stats"]
    # Redirect hops of subresources and WebSockets are never intercepted: the proxy refused them.
    assert full["stats"].get("govevidence/refused_browser_requests/proxy", 0) > 0, full["stats"]
    assert full["stats"].get("govevidence/refused_browser_requests/intercepted", 0) >= 8, full["stats"]
    assert full["stats"].get("govevidence/refused_requests", 0) >= 10, full["stats"]


@pytest.mark.slow
def test_resolver_alone_refuses_private_answers(hostile_crawl):
    crawl = hostile_crawl["resolver_only"]
    assert crawl["returncode"] == 0, crawl["stderr"]
    assert hostile_crawl["traps"] == []
    statuses = {c["url"]: c["status"] for c in crawl["captures"]}
    assert statuses.get("http://intranet.trap.test/") == "dns_error", statuses
    assert statuses.get("http://10.0.0.1/") == "dns_error", statuses
    assert any("intranet.trap.test -> 10.0.0.1: 10.0.0.1 is private" in line for line in crawl["log_refusals"]), crawl
    assert "govevidence/refused_requests" not in crawl["stats"]  # the middleware was off


if __name__ == "__main__" and sys.argv[1:2] == ["driver"]:
    out = Path(sys.argv[2])
    (out / "result.json").write_text(json.dumps(_driver(out), ensure_ascii=False, indent=1))
