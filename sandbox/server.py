"""Loopback web servers for the fictional government sites of the sandbox.

Every site described in ``sites.yaml`` is served by its own
``ThreadingHTTPServer`` bound to its own loopback address (127.0.0.N), all on
one shared port, so a crawler sees each site as a distinct host.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import html
import posixpath
import re
import socket
import socketserver
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from sandbox import dynamic

PACKAGE_DIR = Path(__file__).resolve().parent
SITES_DIR = PACKAGE_DIR / "sites"
TABLE_PATH = PACKAGE_DIR / "sites.yaml"

PLACEHOLDER_RE = re.compile(r"\{\{site:([A-Za-z0-9_.-]+)\}\}")
INCLUDE_RE = re.compile(r'<!--#include\s+virtual="([^"]+)"\s*-->')

# Keys a registry source or target may carry (the project's loader is strict).
TARGET_KEYS = ("code", "name", "level", "parent", "sources", "note")
SOURCE_KEYS = ("kind", "url", "name", "verified", "render", "obey_robots", "note")

CONTENT_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".shtml": "text/html",
    ".css": "text/css",
    ".js": "application/javascript",
    ".json": "application/json",
    ".txt": "text/plain",
    ".svg": "image/svg+xml",
    ".xml": "application/xml",
    ".csv": "text/csv",
}
TEXT_TYPES = {"text/html", "text/css", "application/javascript", "application/json",
              "text/plain", "image/svg+xml", "application/xml", "text/csv"}

DEFAULT_ROBOTS = "User-agent: *\nDisallow:\n"

# Like nginx's gzip module: text types are compressed when the client accepts it and the
# body is worth it; every answer that could be compressed says ``Vary: Accept-Encoding``.
COMPRESSIBLE_TYPES = TEXT_TYPES
COMPRESS_MIN_LENGTH = 256
CHUNK_SIZE = 8192


def parse_accept_encoding(header: str | None) -> dict[str, float]:
    """``Accept-Encoding`` as {coding: q}; a missing header accepts identity only."""
    out: dict[str, float] = {}
    for part in (header or "").split(","):
        coding, _, params = part.strip().partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        out[coding] = q
    return out


def choose_coding(header: str | None) -> str | None:
    """The content coding to answer with: gzip preferred, then deflate, else identity (None)."""
    accepted = parse_accept_encoding(header)

    def q_of(coding: str) -> float:
        if coding in accepted:
            return accepted[coding]
        if coding == "gzip" and "x-gzip" in accepted:
            return accepted["x-gzip"]
        return accepted.get("*", 0.0)

    best = max(("gzip", "deflate"), key=q_of)  # max keeps the first of equals: gzip
    return best if q_of(best) > 0 else None


def encode_body(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)  # mtime 0, like nginx: same bytes every time
    if coding == "deflate":
        return zlib.compress(body, 6)  # HTTP "deflate" is the zlib format
    raise ValueError(coding)

NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="{charset}"><title>404 页面不存在</title></head>
<body><div style="text-align:center;padding:60px 0;font-family:SimSun,serif">
<h1>404</h1><p>对不起，您访问的页面不存在或已被删除。</p>
<p><a href="/">返回首页</a></p></div></body></html>
"""

POST_ACK_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>提交成功</title></head>
<body><div style="text-align:center;padding:60px 0"><h2>提交成功</h2>
<p>您的信息已提交，我们将尽快处理。</p><p><a href="/">返回首页</a></p></div></body></html>
"""

ERROR_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="{charset}"><title>{status} 服务器错误</title></head>
<body><h1>{status} Internal Server Error</h1><p>服务器内部错误，请稍后再试。</p></body></html>
"""


def load_table(path: Path = TABLE_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        table = yaml.safe_load(fh)
    ids = [s["id"] for s in table["sites"]]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate site id in sites.yaml")
    return table


class SiteConfig:
    """One site of the sandbox, as declared in ``sites.yaml``."""

    def __init__(self, raw: dict[str, Any]):
        self.id: str = raw["id"]
        self.ip: str = raw["ip"]
        self.title: str = raw.get("title", self.id)
        self.dead: bool = bool(raw.get("dead", False))
        self.slow: bool = bool(raw.get("slow", False))
        self.root: Path = SITES_DIR / raw.get("dir", self.id)
        self.encoding: str = raw.get("encoding", "utf-8")
        # header_charset: value of the charset parameter; null means "omit it".
        self.header_charset: str | None = raw.get("header_charset", self.encoding)
        self.redirects: dict[str, list] = raw.get("redirects") or {}
        self.errors: dict[str, int] = raw.get("errors") or {}
        self.dynamic: dict[str, str] = raw.get("dynamic") or {}
        self.pages: dict[str, dict[str, Any]] = raw.get("pages") or {}
        # compress: false serves every answer uncompressed whatever the client accepts.
        self.compress: bool = bool(raw.get("compress", True))

    def page_encoding(self, path: str) -> tuple[str, str | None]:
        override = self.pages.get(path) or {}
        enc = override.get("encoding", self.encoding)
        charset = override["header_charset"] if "header_charset" in override else (
            self.header_charset if "encoding" not in override else enc)
        return enc, charset


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address) -> None:
        # A client that gives up (a crawler's timeout, a cancelled oversized download)
        # resets the connection; that is the client's business, not a server fault.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() would call socket.getfqdn(), which may stall
        # on a resolver without network; the name is not needed here.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def __init__(self, addr, handler, site: SiteConfig, sandbox: "Sandbox"):
        self.site = site
        self.sandbox = sandbox
        super().__init__(addr, handler, bind_and_activate=False)
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise


class SiteHandler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nginx"

    def version_string(self) -> str:
        return self.server_version
    protocol_version = "HTTP/1.1"

    # --- plumbing -------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.sandbox.verbose:
            super().log_message(format, *args)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        self._handle(head=False, post=True)

    # --- dispatch -------------------------------------------------------
    def _handle(self, head: bool, post: bool = False) -> None:
        site = self.server.site
        sb = self.server.sandbox
        if site.slow and sb.slow_seconds > 0:
            sb._stopping.wait(sb.slow_seconds)
        parts = urlsplit(self.path)
        path = unquote(parts.path) or "/"
        query = parse_qs(parts.query)

        if path in site.redirects:
            status, location = site.redirects[path]
            self._send_redirect(int(status), self._expand(location), head)
            return
        if path in site.errors:
            status = int(site.errors[path])
            self._send_text(status, ERROR_PAGE.format(status=status, charset="utf-8"),
                            "text/html", head)
            return
        if path in site.dynamic:
            func = getattr(dynamic, site.dynamic[path])
            result = func(site=site, path=path, query=query, sandbox=sb)
            if result is None:
                self._send_not_found(head)
                return
            status, body = result
            self._send_page(status, path, body, "text/html", head, chunked=True)
            return
        if path == "/search":  # every site has a site search
            body = dynamic.search(site=site, path=path, query=query, sandbox=sb)[1]
            self._send_page(200, path, body, "text/html", head, chunked=True)
            return

        file_path = self._resolve(path)
        if file_path is None:
            if path == "/robots.txt":
                self._send_text(200, DEFAULT_ROBOTS, "text/plain", head)
            elif post:  # form submissions (留言, 申请, 评价) are acknowledged, not stored
                self._send_text(200, POST_ACK_PAGE, "text/html", head)
            else:
                self._send_not_found(head)
            return
        if file_path.is_dir():
            # "/zwgk" -> "/zwgk/", as real servers do
            self._send_redirect(301, path + "/", head)
            return
        ctype = CONTENT_TYPES.get(file_path.suffix.lower(), "application/octet-stream")
        if ctype in TEXT_TYPES:
            text = file_path.read_text(encoding="utf-8")
            if ctype == "text/html":
                text = self._include(text, file_path)
            self._send_page(200, path, text, ctype, head,
                            last_modified=file_path.stat().st_mtime)
        else:
            self._send_bytes(200, file_path.read_bytes(), ctype, head,
                             last_modified=file_path.stat().st_mtime)

    def _resolve(self, path: str) -> Path | None:
        root = self.server.site.root
        norm = posixpath.normpath(path)
        if path.endswith("/") and norm != "/":
            norm += "/"
        rel = norm.lstrip("/")
        if any(part.startswith("_") or part == ".." for part in rel.split("/") if part):
            return None  # partials (_inc/...) and escapes are not served
        candidate = (root / rel) if rel else root
        try:
            candidate.resolve().relative_to(root.resolve())
        except ValueError:
            return None
        if candidate.is_dir():
            if not path.endswith("/"):
                return candidate
            for name in ("index.html", "index.shtml", "index.htm"):
                if (candidate / name).is_file():
                    return candidate / name
            return None
        return candidate if candidate.is_file() else None

    def _include(self, text: str, file_path: Path, depth: int = 0) -> str:
        """Expand SSI-style ``<!--#include virtual="/_inc/x.html" -->`` partials."""
        if depth > 4:
            return text
        root = self.server.site.root

        def repl(m: re.Match) -> str:
            target = (root / m.group(1).lstrip("/")).resolve()
            try:
                target.relative_to(root.resolve())
                inner = target.read_text(encoding="utf-8")
            except (ValueError, OSError):
                return ""
            return self._include(inner, target, depth + 1)

        return INCLUDE_RE.sub(repl, text)

    def _expand(self, text: str) -> str:
        return self.server.sandbox.expand(text)

    # --- responses ------------------------------------------------------
    def _common_headers(self, last_modified: float | None = None) -> None:
        # send_response() has already written Server and Date
        if last_modified is not None:
            self.send_header("Last-Modified", email.utils.formatdate(last_modified, usegmt=True))
        self.send_header("X-Frame-Options", "SAMEORIGIN")

    def _send_page(self, status: int, path: str, text: str, ctype: str, head: bool,
                   last_modified: float | None = None, chunked: bool = False) -> None:
        enc, charset = self.server.site.page_encoding(path)
        if ctype != "text/html":
            enc, charset = "utf-8", "utf-8"
        body = self._expand(text).encode(enc, errors="xmlcharrefreplace")
        header = f"{ctype}; charset={charset}" if charset else ctype
        self._send_bytes(status, body, header, head, last_modified=last_modified, chunked=chunked)

    def _send_text(self, status: int, text: str, ctype: str, head: bool) -> None:
        self._send_bytes(status, text.encode("utf-8"), f"{ctype}; charset=utf-8", head)

    def _send_bytes(self, status: int, body: bytes, ctype: str, head: bool,
                    last_modified: float | None = None, chunked: bool = False) -> None:
        """Send an answer the way nginx does: conditional GETs of static files, gzip or
        deflate when the client accepts it, chunked transfer for generated pages."""
        etag = None
        if status == 200 and last_modified is not None:  # a static file
            etag = '"%x-%s"' % (int(last_modified), hashlib.sha1(body).hexdigest()[:12])
            if self._not_modified(etag, last_modified):
                self.send_response(304)
                self.send_header("ETag", etag)
                self._common_headers(last_modified)
                self.end_headers()
                return
        mime = ctype.split(";", 1)[0].strip().lower()
        compressible = self.server.site.compress and mime in COMPRESSIBLE_TYPES
        coding = choose_coding(self.headers.get("Accept-Encoding")) if compressible and (
            len(body) >= COMPRESS_MIN_LENGTH) else None
        if coding:
            body = encode_body(body, coding)
            if etag:
                etag = "W/" + etag  # the compressed bytes are not the file's
        chunked = chunked and not head and self.request_version == "HTTP/1.1"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if compressible:
            self.send_header("Vary", "Accept-Encoding")
        if coding:
            self.send_header("Content-Encoding", coding)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self._common_headers(last_modified)
        self.end_headers()
        if head:
            return
        if not chunked:
            self.wfile.write(body)
            return
        for start in range(0, len(body), CHUNK_SIZE):
            piece = body[start:start + CHUNK_SIZE]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def _not_modified(self, etag: str, last_modified: float) -> bool:
        """RFC 9110 13.1: If-None-Match wins over If-Modified-Since (weak comparison)."""
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            if if_none_match.strip() == "*":
                return True
            wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return etag.removeprefix("W/") in wanted
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                stamp = email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
            return int(last_modified) <= int(stamp)
        return False

    def _send_redirect(self, status: int, location: str, head: bool) -> None:
        body = (f'<html><head><title>{status}</title></head><body>'
                f'<a href="{html.escape(location)}">{html.escape(location)}</a></body></html>')
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Location", location)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _send_not_found(self, head: bool) -> None:
        self._send_text(404, NOT_FOUND_PAGE.format(charset="utf-8"), "text/html", head)


def stop_servers(servers: list[socketserver.BaseServer], threads: list[threading.Thread]) -> None:
    """Stop many serving loops at once (``shutdown()`` blocks until its loop notices), close
    their sockets and wait for their threads."""
    stoppers = [threading.Thread(target=server.shutdown, daemon=True) for server in servers]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(timeout=5)
    for server in servers:
        server.server_close()
    for t in threads:
        t.join(timeout=5)


class Sandbox:
    """Serve every fictional site of the sandbox on loopback.

    ``port=0`` picks one free port usable on all of the sandbox's addresses.
    Requests to sites marked ``slow`` wait ``slow_seconds`` before answering.
    """

    def __init__(self, port: int = 0, slow_seconds: float = 20.0, verbose: bool = False,
                 table_path: Path | str | None = None):
        self.requested_port = int(port)
        self.port: int | None = None
        self.slow_seconds = float(slow_seconds)
        self.verbose = verbose
        self.table = load_table(Path(table_path) if table_path else TABLE_PATH)
        self.sites: dict[str, SiteConfig] = {
            raw["id"]: SiteConfig(raw) for raw in self.table["sites"]}
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # --- lifecycle ------------------------------------------------------
    def start(self) -> "Sandbox":
        if self._servers:
            raise RuntimeError("sandbox already started")
        self._stopping.clear()
        attempts = 50 if self.requested_port == 0 else 1
        last_error: Exception | None = None
        for _ in range(attempts):
            try:
                self._bind_all(self.requested_port)
                break
            except OSError as exc:
                last_error = exc
                self._close_all()
        else:
            raise OSError(f"cannot bind the sandbox sites: {last_error}")
        for server in self._servers:
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                 name=f"sandbox-{server.site.id}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _live_sites(self) -> list[SiteConfig]:
        return [s for s in self.sites.values() if not s.dead]

    def _bind_all(self, port: int) -> None:
        live = self._live_sites()
        first = _Server((live[0].ip, port), SiteHandler, live[0], self)
        self._servers.append(first)
        port = first.server_address[1]
        for site in live[1:]:
            self._servers.append(_Server((site.ip, port), SiteHandler, site, self))
        # dead hosts must refuse connections on this port
        for site in self.sites.values():
            if site.dead and _is_listening(site.ip, port):
                raise OSError(f"something listens on dead host {site.ip}:{port}")
        self.port = port

    def _close_all(self) -> None:
        for server in self._servers:
            server.server_close()
        self._servers = []

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping on the slow host
        stop_servers(self._servers, self._threads)
        self._servers = []
        self._threads = []

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- addresses ------------------------------------------------------
    def base_url(self, site_id: str) -> str:
        """Base URL of a site, with trailing slash (``http://127.0.0.10:8600/``)."""
        return self._origin(site_id) + "/"

    def url(self, site_id: str, path: str = "/") -> str:
        """Absolute URL of ``path`` on a site: ``url("t910000-portal", "/zwgk/")``."""
        return self._origin(site_id) + "/" + path.lstrip("/")

    def _origin(self, site_id: str) -> str:
        if self.port is None:
            raise RuntimeError("sandbox not started")
        return f"http://{self.sites[site_id].ip}:{self.port}"

    def expand(self, text: str) -> str:
        """Replace ``{{site:ID}}`` placeholders by site origins (no trailing slash)."""
        def repl(m: re.Match) -> str:
            if m.group(1) in self.sites:
                return self._origin(m.group(1))
            return m.group(0)
        return PLACEHOLDER_RE.sub(repl, text)

    def site_ids(self) -> list[str]:
        return list(self.sites)

    # --- registry -------------------------------------------------------
    def registry(self, include_hidden: bool = False) -> dict[str, Any]:
        """Target registry (the project's ``targets.yaml`` format) with real URLs.

        Sources marked ``registry: false`` in ``sites.yaml`` are left out so the
        crawler has to discover them; ``include_hidden=True`` lists them too.
        """
        targets = []
        for raw_t in self.table["targets"]:
            t: dict[str, Any] = {"code": str(raw_t["code"]), "name": raw_t["name"],
                                 "level": raw_t["level"]}
            if raw_t.get("parent"):
                t["parent"] = str(raw_t["parent"])
            sources = []
            for raw_s in raw_t["sources"]:
                if raw_s.get("registry", True) is False and not include_hidden:
                    continue
                s: dict[str, Any] = {"kind": raw_s["kind"],
                                     "url": self.expand(raw_s.get("url", "{{site:%s}}/" % raw_s["site"]))}
                for key in SOURCE_KEYS[2:]:
                    if key in raw_s:
                        s[key] = raw_s[key]
                s.setdefault("verified", True)
                sources.append(s)
            t["sources"] = sources
            if raw_t.get("note"):
                t["note"] = raw_t["note"]
            targets.append({k: t[k] for k in TARGET_KEYS if k in t})
        return {"version": 1, "targets": targets}

    def write_registry(self, path: Path | str) -> None:
        header = "# GovEvidence sandbox registry (fictional sites on loopback; regenerated on start)\n"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(header)
            yaml.safe_dump(self.registry(), fh, allow_unicode=True, sort_keys=False)


def _is_listening(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        try:
            s.connect((ip, port))
        except OSError:
            return False
        return True
