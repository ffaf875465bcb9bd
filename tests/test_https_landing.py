"""A registered ``http://`` portal that lands on ``https://``: the crawl goes on there, and every
HTTPS capture says what the server presented.

A plain loopback server answers the registered URL with a 301 to an HTTPS server on another
loopback address (a certificate the test makes, from a CA the crawl is not told about); the
HTTPS home page links to two inner pages. One real ``scrapy crawl`` follows them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Finding, PageCapture
from db.session import get_engine
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_crawl
from tests.test_tls import _cert

PLAIN_IP, TLS_IP = "127.0.6.1", "127.0.6.2"
HOME = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>迁站市人民政府</title></head>
<body><div class="nav"><a href="/zwgk/index.html">政务公开</a><a href="/hdjl/index.html">互动交流</a></div>
<p>网站标识码：9900000077</p><p>本网站已迁移至 HTTPS。</p></body></html>"""
INNER = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{path}</title></head>
<body><h1>{path}</h1><p><a href="/">返回首页</a></p></body></html>"""


def _serve(ip: str, handler: type, context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((ip, 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def landing_web(tmp_path_factory):
    folder = tmp_path_factory.mktemp("https-landing")
    root = _cert("Landing Test Root", None, ca=True)
    leaf, key = _cert(TLS_IP, root, ca=False, names=[x509.IPAddress(ipaddress.ip_address(TLS_IP))])
    pem = folder / "server.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
                    + leaf.public_bytes(serialization.Encoding.PEM) + root[0].public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)

    class Secure(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = (HOME if self.path == "/" else INNER.format(path=self.path)).encode("utf-8")
            status = 200 if self.path in ("/", "/zwgk/index.html", "/hdjl/index.html") else 404
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    secure = _serve(TLS_IP, Secure, context)
    secure_origin = f"https://{TLS_IP}:{secure.server_address[1]}"

    class Plain(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(301)
            self.send_header("Location", secure_origin + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    plain = _serve(PLAIN_IP, Plain)
    registry = folder / "registry.yaml"
    registry.write_text(yaml.safe_dump({"version": 1, "targets": [{
        "code": "990700", "name": "迁站市", "level": "city", "parent": "990000",
        "sources": [{"kind": "portal", "url": f"http://{PLAIN_IP}:{plain.server_address[1]}/", "verified": True}],
    }]}, allow_unicode=True), encoding="utf-8")
    chain = [leaf.public_bytes(serialization.Encoding.DER), root[0].public_bytes(serialization.Encoding.DER)]
    yield registry, secure_origin, hashlib.sha256(b"".join(chain)).hexdigest()
    for server in (plain, secure):
        server.shutdown()
        server.server_close()


def test_crawl_follows_the_site_to_https_and_records_what_it_presented(landing_web, tmp_path):
    registry, secure_origin, chain_digest = landing_web
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = scrapy_crawl("city_portals", args={"registry": str(registry)},
                          settings={**SANDBOX_SETTINGS, "GOVEVIDENCE_SCREENSHOTS": "False", "LOG_LEVEL": "INFO"},
                          env={"DATABASE_URL": url, "GOVEVIDENCE_DATA_DIR": str(tmp_path)}, capture=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with Session(get_engine(url)) as session:
        captures = session.execute(select(PageCapture).order_by(PageCapture.id)).scalars().all()
        reachable = session.execute(select(Finding).where(
            Finding.indicator == "site.reachable", Finding.scope == "page")).scalar_one()
    by_url = {c.final_url: c for c in captures}
    inner = {f"{secure_origin}/zwgk/index.html", f"{secure_origin}/hdjl/index.html"}
    # The home page landed on the HTTPS origin, and its links there were crawled.
    assert by_url[f"{secure_origin}/"].depth == 0
    assert inner <= set(by_url), sorted(by_url)
    assert reachable.details["landing_origin"] == secure_origin
    for capture in (by_url[u] for u in inner | {f"{secure_origin}/"}):
        assert capture.error_status == "ok"
        assert capture.ip_address == TLS_IP
        assert capture.tls_version in ("TLSv1.2", "TLSv1.3")
        assert capture.cert_chain_sha256 == chain_digest
        # The CA is not one the crawl trusts: collected all the same, and said so.
        assert capture.cert_valid is False and capture.cert_error
