"""Loopback server of the hostile corpus: one fictional site per 127.0.5.N address.

Each case of ``tests.hostile.cases.CASES`` gets its own address on one shared port, so the
crawler sees every case as a separate host (and a separate evaluation target). Answers are
written to the socket by hand: a case can lie about lengths, break the status line, stop in
the middle of a body or drip bytes past the crawler's timeout. ``/robots.txt`` is a plain 404
on every site unless a case answers it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

import yaml

from sandbox.server import stop_servers

NETWORK = "127.0.5."
# Host numbers 1..199 are the cases; landing hosts (where a case redirects) start here.
LANDING_BASE = 200


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    host: "Host"
    web: "HostileWeb"

    @property
    def cookies(self) -> dict[str, str]:
        out = {}
        for part in self.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name:
                out[name] = value
        return out

    def count(self, key: str = "") -> int:
        """How many times this host has been asked for this path (1 for the first)."""
        with self.host.lock:
            n = self.host.hits.get((self.path, key), 0) + 1
            self.host.hits[(self.path, key)] = n
            return n


@dataclass
class Host:
    name: str
    ip: str
    serve: Callable[[Request, socket.socket], None]
    hits: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def status_line(status: int, reason: str | None = None) -> bytes:
    if reason is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"HTTP/1.1 {status} {reason}".rstrip().encode("latin-1") + b"\r\n"


def send(sock: socket.socket, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None, *,
         content_type: str | None = "text/html; charset=utf-8", length: int | None = None,
         reason: str | None = None, head: bool = False) -> None:
    """Write a whole answer and leave the connection to be closed by the server."""
    lines = [status_line(status, reason)]
    names = {k.lower() for k, _ in headers or []}
    if content_type and "content-type" not in names:
        lines.append(f"Content-Type: {content_type}\r\n".encode("latin-1"))
    if "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body) if length is None else length}\r\n".encode())
    for name, value in headers or []:
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    lines.append(b"Server: nginx\r\nConnection: close\r\n\r\n")
    sock.sendall(b"".join(lines) + (b"" if head else body))


def not_found(req: Request, sock: socket.socket) -> None:
    send(sock, 404, b"<html><head><title>404</title></head><body><h1>404 Not Found</h1></body></html>",
         head=req.method == "HEAD")


class _Handler(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        try:
            method, target, _ = request_line.split(" ", 2)
        except ValueError:
            return
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        parts = urlsplit(target)
        host = self.server.host
        req = Request(method, unquote(parts.path) or "/", parts.query, headers, host, self.server.web)
        try:
            if req.path == "/robots.txt" and not getattr(host.serve, "answers_robots", False):
                not_found(req, sock)
            else:
                host.serve(req, sock)
        except OSError:
            pass  # the client gave up (timeout, reset): its business


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], host: Host, web: "HostileWeb") -> None:
        self.host = host
        self.web = web
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A case that raises (a bug in cases.py) would look like a closed connection, which is
        # what several cases are meant to produce: keep it for the tests to fail on.
        self.web.errors.append(f"{self.host.name}: {traceback.format_exc(limit=3)}")


class HostileWeb:
    """Serve every case on its own loopback address, all on one port."""

    def __init__(self, cases: dict[str, Any]) -> None:
        self.cases = cases
        self.hosts: dict[str, Host] = {}
        landing_number = LANDING_BASE
        for n, (name, case) in enumerate(cases.items(), start=1):
            self.hosts[name] = Host(name, f"{NETWORK}{n}", case.serve)
            for landing, serve in case.landing.items():
                key = f"{name}/{landing}"
                self.hosts[key] = Host(key, f"{NETWORK}{landing_number}", serve)
                landing_number += 1
        self.port: int | None = None
        self.stopping = threading.Event()
        self.errors: list[str] = []  # exceptions raised while serving a case
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> "HostileWeb":
        last: OSError | None = None
        for _ in range(20):
            try:
                hosts = list(self.hosts.values())
                first = _Server((hosts[0].ip, 0), hosts[0], self)
                self._servers = [first]
                port = first.server_address[1]
                for host in hosts[1:]:
                    self._servers.append(_Server((host.ip, port), host, self))
                self.port = port
                break
            except OSError as exc:
                last = exc
                for server in self._servers:
                    server.server_close()
                self._servers = []
        else:
            raise OSError(f"cannot bind the hostile corpus: {last}")
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        stop_servers(self._servers, self._threads)
        self._servers, self._threads = [], []

    def __enter__(self) -> "HostileWeb":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def origin(self, name: str) -> str:
        return f"http://{self.hosts[name].ip}:{self.port}"

    def url(self, name: str, path: str = "/") -> str:
        return self.origin(name) + path

    def landing_origin(self, case: str, landing: str) -> str:
        return self.origin(f"{case}/{landing}")

    def registry(self) -> dict[str, Any]:
        """One province-level target per case, its portal the case's site."""
        targets = []
        for n, (name, case) in enumerate(self.cases.items(), start=10):
            targets.append({"code": f"{n}0000", "name": f"{case.label or name}测试省", "level": "province",
                            "note": name, "sources": [{"kind": "portal", "url": self.url(name), "verified": True}]})
        return {"version": 1, "targets": targets}

    def code_of(self, name: str) -> str:
        return f"{list(self.cases).index(name) + 10}0000"

    def write_registry(self, path: Any) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(self.registry(), fh, allow_unicode=True, sort_keys=False)
