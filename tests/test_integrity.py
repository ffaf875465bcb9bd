"""Integrity of the evidence: raw payload hashing, audit chaining of every row, RFC 3161 anchors,
recovery after a hard kill.

Everything runs for real on loopback: a small site that serves gzip (one page chunked as well)
and a gzip bomb — 5 GiB of zeros compressed to about 5 MB — crawled by ``scrapy crawl``; a
time-stamping authority built from ``openssl ts`` behind ``http.server``, with a CA and a TSA
certificate made in the test; the sandbox web for the crawl that is killed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

from db import audit
from db.models import AuditEntry, CrawlRun, Finding, PageCapture, ReviewDecision, RunAnchor, WarcRecord
from db.review import effective_verdict, record_decision
from db.session import get_engine
from govevidence import anchor
from govevidence.cli import main
from govevidence.crawl import SANDBOX_SETTINGS, scrapy_command, scrapy_crawl
from govevidence.manifest import verify_run

SETTINGS = {**SANDBOX_SETTINGS, "DOWNLOAD_TIMEOUT": "10", "LOG_LEVEL": "INFO", "GOVEVIDENCE_SCREENSHOTS": "False"}
BOMB_SIZE = 5 * 1024**3
BLOCK = 64 * 1024**2
RSS_LIMIT_MB = 300


# --- a gzip bomb, made by streaming zlib ---------------------------------------------------
def gzip_bomb(size: int = BOMB_SIZE) -> tuple[list[bytes], int]:
    """(parts, repeat): a valid gzip stream of ``size`` zero bytes is parts[0] + parts[1] + parts[2] * repeat
    + parts[3]. After a full flush the compressor is back in the same state, so every further
    block of zeros compresses to the same bytes; only they and the CRC need computing."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(BLOCK)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // BLOCK):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    tail = compressor.flush(zlib.Z_FINISH) + struct.pack("<II", crc, size & 0xFFFFFFFF)
    return [header + first, again, tail], size // BLOCK - 1


# --- a site that answers in gzip ------------------------------------------------------------
def _page(title: str, body: str) -> str:
    links = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in
                    (("/news.html", "政务要闻"), ("/chunked.html", "通知公告"), ("/bomb.html", "数据下载")))
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body><h1>{title}</h1><ul>{links}</ul><p>{body}</p>"
            f"<footer><p>主办：测试省人民政府办公厅</p><p>网站标识码：9900000001</p>"
            f'<p><a href="https://beian.miit.gov.cn/">测ICP备12345678号</a></p></footer></body></html>')


PAGES = {
    "/": _page("测试省人民政府门户网站", "欢迎访问。" * 40),
    "/news.html": _page("政务要闻", "测试省召开常务会议。" * 60),
    "/chunked.html": _page("通知公告", "关于开展评估工作的通知。" * 60),
}


class GzipSite:
    """Pages sent gzip-encoded (one chunked as well) and a gzip bomb, on 127.0.0.1."""

    def __init__(self) -> None:
        self.bomb, self.repeat = gzip_bomb()
        self.bomb_length = len(self.bomb[0]) + len(self.bomb[1]) * self.repeat + len(self.bomb[2])
        digest = hashlib.sha256(self.bomb[0])
        for _ in range(self.repeat):
            digest.update(self.bomb[1])
        digest.update(self.bomb[2])
        self.bomb_sha256 = digest.hexdigest()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/robots.txt":
                    self._send(b"User-agent: *\nAllow: /\n", "text/plain")
                elif self.path == "/chunked.html":
                    data = gzip.compress(PAGES[self.path].encode("utf-8"), mtime=0)
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(data), 500):
                        piece = data[start:start + 500]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                elif self.path in PAGES:
                    self._send(gzip.compress(PAGES[self.path].encode("utf-8"), mtime=0), "text/html; charset=utf-8",
                               gzip=True)
                elif self.path == "/bomb.html":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Encoding", "gzip")
                    self.send_header("Content-Length", str(site.bomb_length))
                    self.end_headers()
                    self.wfile.write(site.bomb[0])
                    for _ in range(site.repeat):
                        self.wfile.write(site.bomb[1])
                    self.wfile.write(site.bomb[2])
                else:
                    self._send(b"not here", "text/plain", status=404)

            def _send(self, data: bytes, content_type: str, gzip: bool = False, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def write_registry(self, path: Path) -> Path:
        path.write_text(
            "version: 1\ntargets:\n"
            "  - code: '990000'\n    name: 测试省\n    level: province\n"
            f"    sources:\n      - kind: portal\n        url: {self.url}\n",
            encoding="utf-8")
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- a time-stamping authority: openssl ts behind http.server -------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(folder: Path, label: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(f"{label} CA")).issuer_name(_name(f"{label} CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = folder / f"{label.lower()}-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


class LocalTsa:
    """POST application/timestamp-query to /tsa: ``openssl ts -reply`` answers; /garbage answers HTML."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        ca_key, ca_cert, self.ca_file = make_ca(folder, "Test")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name("Test TSA")).issuer_name(ca_cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        (folder / "tsa.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / "tsa.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        (folder / "serial").write_text("01\n")
        self.config = folder / "tsa.cnf"
        self.config.write_text(
            "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\n"
            f"dir = {folder}\nserial = $dir/serial\ncrypto_device = builtin\n"
            "signer_cert = $dir/tsa.pem\ncerts = $dir/tsa.pem\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\n"
            "default_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\naccuracy = secs:1\n"
            "ordering = yes\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
            encoding="utf-8")
        self.requests = 0
        lock = threading.Lock()
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                query = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/garbage":
                    return self._answer(200, "text/html", b"<html><body>maintenance</body></html>")
                if self.path != "/tsa" or self.headers.get("Content-Type") != "application/timestamp-query":
                    return self._answer(415, "text/plain", b"timestamp queries only")
                with lock, tempfile.TemporaryDirectory() as tmp:
                    (Path(tmp) / "q.tsq").write_bytes(query)
                    done = subprocess.run(["openssl", "ts", "-reply", "-config", str(tsa.config), "-queryfile",
                                           str(Path(tmp) / "q.tsq"), "-out", str(Path(tmp) / "r.tsr")],
                                          capture_output=True)
                    if done.returncode != 0:
                        return self._answer(500, "text/plain", done.stderr[-500:])
                    tsa.requests += 1
                    self._answer(200, "application/timestamp-reply", (Path(tmp) / "r.tsr").read_bytes())

            def _answer(self, status: int, content_type: str, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url, self.garbage_url = f"{base}/tsa", f"{base}/garbage"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


# --- helpers ---------------------------------------------------------------------------------
def _env(folder: Path) -> dict[str, str]:
    return {"GOVEVIDENCE_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}"}


def _crawl(registry: Path, folder: Path, **extra: str) -> subprocess.CompletedProcess:
    result = scrapy_crawl("province_portals", args={"registry": str(registry)}, settings={**SETTINGS, **extra},
                          env=_env(folder), capture=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _session(folder: Path) -> Session:
    return Session(get_engine(f"sqlite:///{folder / 'db.sqlite3'}"))


def _measured(argv: list[str], folder: Path, env: dict[str, str]) -> tuple[int, float, str]:
    """Run a process; (exit code, peak RSS in MB, output) of that process alone."""
    out = folder.parent / f"out-{time.monotonic_ns()}.txt"
    with open(out, "w") as fh:
        process = subprocess.Popen(argv, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024, out.read_text(encoding="utf-8", errors="replace")


def _copy(folder: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    return copy


def _rechain(session: Session, start_id: int) -> None:
    """Recompute every hash from ``start_id`` on, as someone who rewrites history would."""
    prev = session.execute(select(AuditEntry.hash).where(AuditEntry.id < start_id)
                           .order_by(AuditEntry.id.desc()).limit(1)).scalar()
    for entry in session.execute(select(AuditEntry).where(AuditEntry.id >= start_id).order_by(AuditEntry.id)).scalars():
        entry.prev_hash = prev
        entry.hash = audit.entry_hash(prev, entry.at.isoformat(), entry.actor, entry.action, entry.entity,
                                      entry.entity_id, entry.data)
        prev = entry.hash
    session.flush()


@dataclass
class Sealed:
    folder: Path
    site: GzipSite
    tsa: LocalTsa
    registry: Path
    crawl_log: str


@pytest.fixture(scope="module")
def sealed(tmp_path_factory) -> Sealed:
    base = tmp_path_factory.mktemp("integrity")
    site, tsa = GzipSite(), LocalTsa(base / "tsa")
    registry = site.write_registry(base / "registry.yaml")
    folder = base / "data"
    folder.mkdir()
    result = _crawl(registry, folder, GOVEVIDENCE_TSA_URL=tsa.url, GOVEVIDENCE_TSA_CA_FILE=str(tsa.ca_file))
    yield Sealed(folder, site, tsa, registry, result.stderr)
    site.close()
    tsa.close()


def _response(session: Session, path: str) -> WarcRecord:
    return session.execute(select(WarcRecord).where(WarcRecord.run_id == 1, WarcRecord.record_type == "response",
                                                    WarcRecord.target_uri.endswith(path))).scalar_one()


# --- gzip payloads and the bomb ------------------------------------------------------------
def test_gzip_answers_are_archived_raw_and_verify(sealed):
    with _session(sealed.folder) as session:
        run = session.get(CrawlRun, 1)
        assert run.status == "finished"
        pages = {path: _response(session, path) for path in ("/", "/news.html", "/chunked.html", "/bomb.html")}
        assert verify_run(session, 1, sealed.folder, str(sealed.tsa.ca_file)) == []
    for path, row in pages.items():
        with open(sealed.folder / row.warc_file, "rb") as fh:
            fh.seek(row.offset)
            record = next(iter(ArchiveIterator(fh)))
            assert record.http_headers.get_header("Content-Encoding") == "gzip"
            raw = hashlib.sha256()
            for block in iter(lambda: record.raw_stream.read(1 << 20), b""):
                raw.update(block)
        sent = sealed.site.bomb_sha256 if path == "/bomb.html" else \
            hashlib.sha256(gzip.compress(PAGES[path].encode("utf-8"), mtime=0)).hexdigest()
        assert raw.hexdigest() == row.payload_sha256 == sent  # the bytes the server sent, not decoded
    assert pages["/bomb.html"].length < 10 * 1024**2  # stored compressed: about 5 MB


def test_verify_and_dead_run_check_of_a_bomb_stay_small(sealed):
    """``govevidence verify`` and what the next crawl runs over a dead run's files, as processes of their own."""
    env = {**_env(sealed.folder), "GOVEVIDENCE_TSA_CA_FILE": str(sealed.tsa.ca_file)}
    code, rss, out = _measured([sys.executable, "-m", "govevidence.cli", "verify", "1", "--archive-dir",
                                str(sealed.folder)], sealed.folder, env)
    print(f"verify of a run holding a 5 GiB gzip bomb: exit {code}, peak RSS {rss:.0f} MB")
    assert code == 0, out
    assert rss < RSS_LIMIT_MB
    script = ("import json, sys; from pathlib import Path; from govevidence.manifest import index_warc_file, "
              "verify_warc_file\nroot = Path(sys.argv[1]); out = {}\n"
              "for p in sorted(root.glob('warc/run-*/*.warc.gz')):\n"
              "    label = str(p.relative_to(root))\n"
              "    out[label] = [verify_warc_file(p, label), len(list(index_warc_file(p, label)))]\n"
              "print(json.dumps(out))")
    code, rss, out = _measured([sys.executable, "-c", script, str(sealed.folder)], sealed.folder, env)
    print(f"dead-run WARC check and re-index over the bomb: peak RSS {rss:.0f} MB")
    assert code == 0, out
    assert rss < RSS_LIMIT_MB
    result = json.loads(out.strip().splitlines()[-1])
    with _session(sealed.folder) as session:
        indexed = session.execute(select(WarcRecord.warc_file, WarcRecord.id).where(WarcRecord.run_id == 1)).all()
    for label, (problems, count) in result.items():
        assert problems == []
        assert count == sum(1 for f, _ in indexed if f == label)


def test_flipped_bytes_and_index_rows_are_named(sealed, tmp_path):
    folder = _copy(sealed.folder, tmp_path)
    with _session(folder) as session:
        news, chunked, home = (_response(session, p) for p in ("/news.html", "/chunked.html", "/"))
        request = session.execute(select(WarcRecord).where(WarcRecord.run_id == 1, WarcRecord.record_type == "request")
                                  .order_by(WarcRecord.id).limit(1)).scalar_one()
    data = bytearray((folder / news.warc_file).read_bytes())
    data[news.offset + news.length // 2] ^= 0x01
    (folder / news.warc_file).write_bytes(bytes(data))
    findings_file = folder / "runs/run-00001/findings.jsonl"
    text = bytearray(findings_file.read_bytes())
    text[len(text) // 2] ^= 0x01
    findings_file.write_bytes(bytes(text))
    with _session(folder) as session, session.begin():
        session.execute(update(WarcRecord).where(WarcRecord.id == chunked.id).values(offset=chunked.offset + 1))
        session.execute(delete(WarcRecord).where(WarcRecord.id == request.id))
        session.execute(insert(WarcRecord).values(
            run_id=1, warc_file=home.warc_file, record_id="<urn:uuid:00000000-0000-4000-8000-000000000000>",
            record_type="response", target_uri=home.target_uri + "x", warc_date=home.warc_date, offset=home.offset,
            length=home.length, payload_sha256=home.payload_sha256))
        inserted = session.execute(select(WarcRecord.id).order_by(WarcRecord.id.desc()).limit(1)).scalar_one()
    with _session(folder) as session:
        problems = "\n".join(verify_run(session, 1, folder, str(sealed.tsa.ca_file)))
    assert f"{news.warc_file}: file altered" in problems
    assert f"WARC record {news.record_id} ({news.warc_file} @ {news.offset})" in problems
    assert "runs/run-00001/findings.jsonl: file altered" in problems
    assert f"warc_records {chunked.id} ({chunked.record_id}): row altered" in problems
    assert f"warc_records {request.id}: row missing" in problems
    assert f"warc_records {inserted} (<urn:uuid:00000000-0000-4000-8000-000000000000>): row not in the audit log" \
        in problems


# --- review decisions --------------------------------------------------------------------------
def test_review_decisions_are_chained(sealed, tmp_path):
    folder = _copy(sealed.folder, tmp_path)
    with _session(folder) as session, session.begin():
        icp = session.execute(select(Finding).where(Finding.run_id == 1, Finding.scope == "target",
                                                    Finding.indicator == "site.icp_record")).scalar_one()
        other = session.execute(select(Finding).where(Finding.run_id == 1, Finding.scope == "page")
                                .order_by(Finding.id).limit(1)).scalar_one()
        assert effective_verdict(session, icp.id) == {"verdict": icp.verdict, "value": icp.value}
        first = record_decision(session, icp.id, "张审核", "confirmed", comment="与页面一致")
        assert effective_verdict(session, icp.id) == {"verdict": icp.verdict, "value": icp.value}
        second = record_decision(session, icp.id, "李复核", "rejected", verdict="present", value="测ICP备87654321号")
        assert effective_verdict(session, icp.id) == {"verdict": "present", "value": "测ICP备87654321号"}
        third = record_decision(session, other.id, "张审核", "rejected")
        assert effective_verdict(session, other.id)["verdict"] == "unknown"  # never a false absent
        with pytest.raises(ValueError):
            record_decision(session, icp.id, "张审核", "corrected")
        with pytest.raises(ValueError):
            record_decision(session, icp.id, "", "confirmed")
        with pytest.raises(ValueError):
            record_decision(session, 10**9, "张审核", "confirmed")
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "review.decision",
                                                         AuditEntry.entity_id == second.id)).scalar_one()
        assert entry.actor == "李复核"
        assert entry.data["before"] == {"verdict": icp.verdict, "value": icp.value}
        assert entry.data["after"] == {"verdict": "present", "value": "测ICP备87654321号"}
        first, second, third, icp, other = (first.id, second.id, third.id, icp.id, other.id)
    with _session(folder) as session:
        assert verify_run(session, 1, folder, str(sealed.tsa.ca_file)) == []
    with _session(folder) as session, session.begin():
        session.execute(update(ReviewDecision).where(ReviewDecision.id == second).values(value="测ICP备00000000号"))
        session.execute(delete(ReviewDecision).where(ReviewDecision.id == first))
        session.execute(insert(ReviewDecision).values(finding_id=icp, reviewer="无名", decision="rejected",
                                                      decided_at=dt.datetime.now(dt.timezone.utc)))
        slipped = session.execute(select(ReviewDecision.id).order_by(ReviewDecision.id.desc()).limit(1)).scalar_one()
    with _session(folder) as session:
        problems = verify_run(session, 1, folder, str(sealed.tsa.ca_file))
    assert f"review_decisions {second} (finding {icp}): row altered" in problems
    assert f"review_decisions {first} (finding {icp}): row missing" in problems
    assert f"review_decisions {slipped} (finding {icp}): row not in the audit log" in problems
    assert not any(p.startswith(f"review_decisions {third} ") for p in problems)  # untouched


# --- RFC 3161 anchors ----------------------------------------------------------------------------
def test_sealed_run_carries_a_verified_token(sealed, tmp_path):
    token_file = sealed.folder / "runs/run-00001/anchor.tsr"
    with _session(sealed.folder) as session:
        run = session.get(CrawlRun, 1)
        row = session.execute(select(RunAnchor).where(RunAnchor.run_id == 1)).scalar_one()
        head = anchor.manifest_entry(session, 1)
    assert run.stats["anchor"].startswith("rfc3161 runs/run-00001/anchor.tsr"), run.stats["anchor"]
    assert token_file.read_bytes() == row.token and row.token_file == "runs/run-00001/anchor.tsr"
    assert (row.audit_entry_id, row.audit_hash) == (head.id, head.hash)
    document = anchor.imprint_document(1, row.manifest_sha256, head.id, head.hash)
    reply = anchor.decode_timestamp_response(token_file.read_bytes())
    assert reply.tst_info.message_imprint.message == hashlib.sha256(document).digest()
    anchor.check_signature(reply, hashlib.sha256(document).digest(), sealed.tsa.ca_file)
    # openssl's own verifier agrees
    check = subprocess.run(["openssl", "ts", "-verify", "-in", str(token_file), "-digest",
                            hashlib.sha256(document).hexdigest(), "-CAfile", str(sealed.tsa.ca_file),
                            "-untrusted", str(sealed.tsa.folder / "tsa.pem")], capture_output=True, text=True)
    assert check.returncode == 0 and "Verification: OK" in check.stdout, check.stdout + check.stderr
    # Another CA does not vouch for this TSA.
    _, _, stranger = make_ca(tmp_path, "Stranger")
    with _session(sealed.folder) as session:
        problems = verify_run(session, 1, sealed.folder, str(stranger))
    assert any(p.startswith("run_anchors 1: signature or certificate chain does not verify") for p in problems), problems


def test_rewritten_chain_fails_against_the_timestamp(sealed, tmp_path):
    folder = _copy(sealed.folder, tmp_path)
    ca = str(sealed.tsa.ca_file)
    with _session(folder) as session, session.begin():
        finding = session.execute(select(Finding).where(Finding.run_id == 1, Finding.scope == "page",
                                                        Finding.indicator == "site.icp_record")).scalars().first()
        entry = next(e for e in session.execute(
            select(AuditEntry).where(AuditEntry.action == "findings.add")).scalars()
            if str(finding.id) in e.data.get("findings", {}))
        finding.value = "测ICP备00000000号"
        session.flush()
        entry.data = {**entry.data, "findings": {**entry.data["findings"],
                                                 str(finding.id): audit.row_digest(Finding.__table__, finding)}}
        session.flush()
        _rechain(session, entry.id)
        row = session.execute(select(RunAnchor).where(RunAnchor.run_id == 1)).scalar_one()
        witnessed = row.audit_entry_id
    with _session(folder) as session:
        assert audit.verify_chain(session) == []  # the chain alone is satisfied
        problems = verify_run(session, 1, folder, ca)
    assert not any("row altered" in p for p in problems), problems
    assert f"audit_log {witnessed}: hash differs from the time-stamped one" in "\n".join(problems)
    assert any("does not match the run's manifest and audit chain as they are now" in p for p in problems)
    # Also rewriting the anchor row to the new chain head does not help: the TSA signed the old one.
    with _session(folder) as session, session.begin():
        head = anchor.manifest_entry(session, 1)
        session.execute(update(RunAnchor).where(RunAnchor.run_id == 1).values(audit_hash=head.hash))
    with _session(folder) as session:
        problems = verify_run(session, 1, folder, ca)
    assert "run_anchors 1: row does not match the imprint its token time-stamps" in problems
    assert any("does not match the run's manifest and audit chain as they are now" in p for p in problems)


def test_anchor_file_and_row_are_checked(sealed, tmp_path):
    folder = _copy(sealed.folder, tmp_path)
    with _session(folder) as session, session.begin():
        session.execute(delete(RunAnchor).where(RunAnchor.run_id == 1))
    with _session(folder) as session:
        problems = verify_run(session, 1, folder, str(sealed.tsa.ca_file))
    assert problems == ["runs/run-00001/anchor.tsr: time-stamp token that no run_anchors row lists"]
    (folder / "runs/run-00001/anchor.tsr").write_bytes(b"\x30\x03\x02\x01\x00")
    with _session(folder) as session:
        problems = verify_run(session, 1, folder, str(sealed.tsa.ca_file))
    assert any(p.startswith("runs/run-00001/anchor.tsr: not a readable time-stamp token") for p in problems)


def test_anchor_command_and_failing_tsa(sealed, tmp_path, capsys):
    folder = _copy(sealed.folder, tmp_path)
    before = dict(os.environ)
    try:
        os.environ.update(_env(folder))
        assert main(["anchor", "1", "--archive-dir", str(folder), "--tsa-url", closed_port_url()]) == 1
        assert "TSA unreachable" in capsys.readouterr().err
        assert main(["anchor", "1", "--archive-dir", str(folder), "--tsa-url", sealed.tsa.garbage_url]) == 1
        assert "not a time-stamp response" in capsys.readouterr().err
        assert main(["anchor", "1", "--archive-dir", str(folder), "--tsa-url", sealed.tsa.url,
                     "--ca-file", str(sealed.tsa.ca_file)]) == 0
        assert "anchor-2.tsr" in capsys.readouterr().out
    finally:
        os.environ.clear()
        os.environ.update(before)
    assert (folder / "runs/run-00001/anchor-2.tsr").exists()
    with _session(folder) as session:
        assert len(session.execute(select(RunAnchor)).scalars().all()) == 2
        assert verify_run(session, 1, folder, str(sealed.tsa.ca_file)) == []


# --- kill -9 ---------------------------------------------------------------------------------
def _readable_records(path: Path) -> set[str]:
    """Record ids of a WARC's complete records, read by warcio alone (a torn last one left out)."""
    ids: list[str] = []
    try:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, check_digests=True):
                for _ in iter(lambda: record.raw_stream.read(1 << 16), b""):
                    pass
                if record.rec_type != "warcinfo" and record.digest_checker.passed is not False:
                    ids.append(record.rec_headers.get_header("WARC-Record-ID"))
    except Exception:
        pass
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (EOFError, OSError, zlib.error):
        ids = ids[:-1]  # the torn last member
    return set(ids)


def _page_responses(path: Path) -> dict[str, dt.datetime]:
    """Ids of response records of pages (robots.txt and redirects left out), with their WARC-Date."""
    ids = {}
    try:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                uri = record.rec_headers.get_header("WARC-Target-URI") or ""
                if record.rec_type in ("response", "revisit") and not uri.endswith("/robots.txt"):
                    if not 300 <= int(record.http_headers.get_statuscode() or 0) < 400:
                        date = record.rec_headers.get_header("WARC-Date").replace("Z", "+00:00")
                        ids[record.rec_headers.get_header("WARC-Record-ID")] = dt.datetime.fromisoformat(date)
    except Exception:
        pass
    return ids


@pytest.mark.slow
def test_kill_9_loses_little_and_the_next_crawl_reindexes(sandbox_registry, sealed, tmp_path):
    command, env = scrapy_command(
        "province_portals", args={"registry": str(sandbox_registry)},
        # About ten pages a second (a polite crawl of real sites is slower); page records are written
        # every second (the default), the WARC index lags far behind so that the files must fill it.
        settings={**SETTINGS, "DOWNLOAD_DELAY": "0.1", "CONCURRENT_REQUESTS": "2", "CONCURRENT_REQUESTS_PER_DOMAIN": "1",
                  "GOVEVIDENCE_INDEX_FLUSH_INTERVAL": "30"},
        env=_env(tmp_path))
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if sum(p.stat().st_size for p in tmp_path.glob("warc/run-*/*.warc.gz")) >= 40000:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    killed_at = dt.datetime.now(dt.timezone.utc)
    process.wait(timeout=30)
    files = sorted(tmp_path.glob("warc/run-00001/*.warc.gz"))
    readable = set().union(*(_readable_records(p) for p in files))
    archived = {k: v for p in files for k, v in _page_responses(p).items() if k in readable}
    pages = set(archived)
    with _session(tmp_path) as session:
        indexed_before = set(session.execute(select(WarcRecord.record_id).where(WarcRecord.run_id == 1)).scalars())
        captured = set(session.execute(select(PageCapture.warc_record_id).where(PageCapture.run_id == 1)).scalars())
    assert len(readable) > 20
    lost_pages = len(pages - captured)
    print(f"kill -9: {len(readable)} readable WARC records, {len(indexed_before)} indexed at the kill; "
          f"{len(pages)} page responses archived, {len(pages & captured)} with a capture row, {lost_pages} lost")
    # What is lost is only what arrived in the last moments (written every second; a page
    # downloaded shortly before may still wait to be parsed): nothing older than a few seconds.
    ages = sorted((killed_at - archived[i]).total_seconds() for i in pages - captured)
    print(f"ages of the lost pages at the kill (s): {ages}")
    assert all(age <= 6 for age in ages), ages

    result = _crawl(sealed.registry, tmp_path, GOVEVIDENCE_TSA_URL=sealed.tsa.garbage_url)  # the next crawl
    with _session(tmp_path) as session:
        dead = session.get(CrawlRun, 1)
        indexed = set(session.execute(select(WarcRecord.record_id).where(WarcRecord.run_id == 1)).scalars())
        assert dead.status == "interrupted" and dead.finish_reason == "killed"
        assert readable <= indexed, sorted(readable - indexed)[:5]
        assert dead.stats["recovered_warc_records"] == len(indexed - indexed_before) > 0
        problems = verify_run(session, 1, tmp_path)
        # The re-indexed rows are chained and open at their offsets: only the missing manifest remains.
        assert [p for p in problems if "no manifest" not in p and "truncated" not in p] == [], problems
        second = session.get(CrawlRun, 2)
        # A TSA answering garbage: the run still finishes, says why it has no anchor, and warns.
        assert second.status == "finished"
        assert second.stats["anchor"].startswith("failed (TSA reply is not a time-stamp response"), second.stats
        assert session.execute(select(RunAnchor).where(RunAnchor.run_id == 2)).first() is None
    assert "anchor failed (TSA reply is not a time-stamp response" in result.stderr


# --- on every database backend ---------------------------------------------------------------
def test_review_and_index_rows_chain_on_each_backend(engine, tmp_path):
    """record_decision, effective_verdict and the chained WARC index on SQLite and (when enabled) PostgreSQL."""
    from crawler.archive import index_rows
    from db.models import Target
    from db.session import ensure_schema

    ensure_schema(engine)
    with Session(engine) as session, session.begin():
        target = Target(code="990000", name="测试省", level="province")
        run = CrawlRun(spider="province_portals")
        session.add_all([target, run])
        session.flush()
        finding = Finding(run_id=run.id, target_id=target.id, scope="target", indicator="site.id_code",
                          verdict="absent", checked="3 pages")
        session.add(finding)
        session.flush()
        audit.append(session, "crawler", "findings.rollup", "crawl_runs", run.id,
                     {"run": run.id, "findings": {str(finding.id): audit.row_digest(Finding.__table__, finding)}})
        ids = index_rows(session, run.id, [
            {"warc_file": "warc/x.warc.gz", "record_id": f"<urn:uuid:{i:08d}-0000-4000-8000-000000000000>",
             "record_type": "response", "target_uri": f"http://127.0.0.1/{i}", "warc_date": "2026-12-01T00:00:00Z",
             "offset": i * 100, "length": 100, "payload_sha256": "0" * 64, "refers_to": None} for i in range(3)])
        decision = record_decision(session, finding.id, "王审核", "rejected", comment="页脚有标识码",
                                   verdict="present", value="9900000001")
        run_id, finding_id, decision_id = run.id, finding.id, decision.id
    with Session(engine) as session:
        assert audit.verify_chain(session) == []
        assert effective_verdict(session, finding_id) == {"verdict": "present", "value": "9900000001"}
        entries = {e.action: e for e in session.execute(select(AuditEntry)).scalars()}
        assert set(entries["warc.index"].data["records"]) == {str(i) for i in ids}
        for record in session.execute(select(WarcRecord)).scalars():
            assert entries["warc.index"].data["records"][str(record.id)] == audit.row_digest(WarcRecord.__table__, record)
        stored = session.get(ReviewDecision, decision_id)
        assert entries["review.decision"].data["sha256"] == audit.row_digest(ReviewDecision.__table__, stored)
        assert entries["review.decision"].data["before"] == {"verdict": "absent", "value": None}
        problems = verify_run(session, run_id, tmp_path)
    # No manifest and no WARC file here: only those are missing, every row is accounted for.
    assert [p for p in problems if "row" in p] == [], problems
