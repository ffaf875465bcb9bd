"""Exports of a crawl run: a WACZ web archive for replay, and a zip evidence pack per target.

``export_wacz`` packages the run's WARC files (plus whatever holds the originals of its
revisit records) with a page list, using the ``wacz`` package, so ReplayWeb.page or pywb
can open it.

``export_pack`` gathers what a reviewer needs to check one target's findings without the
database: the findings as CSV (for Excel) and JSON, the screenshots they reference, the WARC
records they cite — each a byte-for-byte copy of its gzip member in the original file — in
one small ``evidence.warc.gz``, the map from finding to original record, the run manifest,
a ``SHA256SUMS`` over everything and a README in Chinese.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

import govevidence
from db.findings import of_judgement
from db.models import CrawlRun, Finding, PageCapture, Source, Target, WarcRecord

logger = logging.getLogger(__name__)

VERDICT_NAMES = {"present": "有", "absent": "无", "unknown": "无法判断"}
SCOPE_NAMES = {"page": "页面", "source": "来源汇总", "target": "对象汇总"}
SCOPE_ORDER = {"target": 0, "source": 1, "page": 2}
KIND_NAMES = {
    "portal": "门户网站",
    "service": "政务服务平台",
    "opendata": "公共数据开放平台",
    "interaction": "互动交流平台",
    "department": "部门网站",
    "newmedia": "政务新媒体",
}
STATUS_NAMES = {
    "ok": "正常",
    "timeout": "超时",
    "unreachable": "无法连接",
    "dns_error": "域名解析失败",
    "blocked": "访问被拒绝",
    "blocked_by_robots": "robots.txt 禁止抓取",
    "http_error": "HTTP 错误",
    "server_error": "服务器错误",
    "redirect_loop": "重定向循环",
    "too_large": "页面过大",
    "not_html": "不是网页",
    "error": "其他错误",
}
ROLE_NAMES = {
    "capture": "页面记录",
    "revisit_original": "重复内容的原始记录",
    "request": "请求记录",
    "screenshot": "整页截图",
    "evidence_image": "证据截图",
}

FINDINGS_COLUMNS = [
    "编号", "范围", "评估对象代码", "评估对象名称", "来源类型", "来源网址", "指标代码", "指标名称", "结论", "值",
    "页面网址", "链接目标", "元素定位", "证据摘录", "已检查内容", "详情", "检测器版本", "页面截图", "证据截图",
    "页面采集编号", "抓取时间（UTC）", "HTTP 状态", "抓取状态", "页面 SHA-256", "WARC 文件", "WARC 记录 ID",
    "WARC 偏移", "载荷 SHA-256",
]
RECORDS_COLUMNS = [
    "发现编号", "指标代码", "记录角色", "原 WARC 文件", "记录 ID", "偏移", "长度", "记录类型", "目标 URI",
    "WARC 日期", "载荷 SHA-256", "引用的原始记录 ID",
]


class ExportError(ValueError):
    """An export cannot be made: unknown run or target, or archived data missing or inconsistent."""


# --- shared look-ups ---------------------------------------------------------------------
def _get_run(session: Session, run_id: int) -> CrawlRun:
    run = session.get(CrawlRun, run_id)
    if run is None:
        raise ExportError(f"run {run_id} does not exist")
    return run


def _resolve(root: Path, relative: str) -> Path:
    """A path stored in the database, under the data root; refuses anything escaping it."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ExportError(f"stored path {relative!r} points outside the data folder {root}")
    return path


def _read_member(root: Path, record: WarcRecord) -> bytes:
    """The gzip member of one record, exactly as stored, checked to hold that record."""
    path = _resolve(root, record.warc_file)
    try:
        with open(path, "rb") as fh:
            fh.seek(record.offset)
            data = fh.read(record.length)
    except OSError as exc:
        raise ExportError(f"cannot read {record.warc_file}: {exc}") from None
    if len(data) != record.length or data[:2] != b"\x1f\x8b":
        raise ExportError(f"{record.warc_file} at offset {record.offset}: not a gzip member of "
                          f"{record.length} bytes (record {record.record_id})")
    headers = _parse_member(data)
    if headers.get("WARC-Record-ID") != record.record_id:
        raise ExportError(f"{record.warc_file} at offset {record.offset} holds "
                          f"{headers.get('WARC-Record-ID')}, not {record.record_id} as indexed")
    return data


def _parse_member(data: bytes) -> dict[str, str]:
    from warcio.archiveiterator import ArchiveIterator

    for rec in ArchiveIterator(io.BytesIO(data)):
        return dict(rec.rec_headers.headers)
    return {}


def _first_member(path: Path) -> bytes | None:
    """The first gzip member of a WARC file (its warcinfo record), byte for byte."""
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        for rec in it:
            if rec.rec_type != "warcinfo":
                return None
            rec.raw_stream.read()
            it.read_to_end(rec)
            length = it.get_record_length()
            fh.seek(0)
            return fh.read(length)
    return None


def _records_by_id(session: Session, record_ids: Iterable[str]) -> dict[str, WarcRecord]:
    ids = sorted({r for r in record_ids if r})
    out: dict[str, WarcRecord] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out.update({r.record_id: r for r in session.execute(
            select(WarcRecord).where(WarcRecord.record_id.in_(chunk))).scalars()})
    return out


def _request_for(session: Session, root: Path, response: WarcRecord) -> WarcRecord | None:
    """The request record of a response or revisit: its WARC-Concurrent-To names the response.

    The writer puts the request right after its response; that position is tried first, then
    any request for the same URI in the same run.
    """
    candidates = list(session.execute(
        select(WarcRecord).where(WarcRecord.record_type == "request", WarcRecord.warc_file == response.warc_file,
                                 WarcRecord.offset == response.offset + response.length)).scalars())
    candidates += [r for r in session.execute(
        select(WarcRecord).where(WarcRecord.record_type == "request", WarcRecord.run_id == response.run_id,
                                 WarcRecord.target_uri == response.target_uri).order_by(WarcRecord.id)).scalars()
        if r not in candidates]
    for candidate in candidates:
        try:
            headers = _parse_member(_read_member(root, candidate))
        except ExportError:
            continue
        if headers.get("WARC-Concurrent-To") == response.record_id:
            return candidate
    return None


def _warc_stem(run_id: int) -> str:
    return f"GOVEVIDENCE-{run_id:05d}"


def _info(run: CrawlRun, description: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        "software": f"GovEvidence/{govevidence.__version__} (export)",
        "format": "WARC File Format 1.1",
        "conformsTo": "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "isPartOf": f"govevidence-run-{run.id}",
        "description": description,
        **(extra or {}),
    }


def _write_copy_warc(path: Path, info: dict[str, str], members: Iterable[bytes]) -> None:
    """A new WARC file: a warcinfo record of its own, then the given gzip members unchanged."""
    from crawler.warc import Sha256WARCWriter

    with open(path, "wb") as fh:
        writer = Sha256WARCWriter(fh, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, info))
        for member in members:
            fh.write(member)


# --- WACZ --------------------------------------------------------------------------------
def export_wacz(session: Session, run_id: int, root: Path, output: Path, *,
                revisit_originals: Literal["files", "records"] = "files") -> Path:
    """Write a WACZ of one run to ``output`` and return its path.

    Pages are the run's successful captures, at the URL and time of their HTTP response
    record. Revisit records need their originals for replay: ``files`` (default) adds every
    WARC file holding one, unchanged, so each file in the WACZ is one a run manifest lists;
    ``records`` copies only the original records, byte for byte, into one extra WARC file.
    """
    from wacz.main import main as wacz_main

    root = Path(root)
    output = Path(output)
    run = _get_run(session, run_id)
    rows = session.execute(
        select(WarcRecord).where(WarcRecord.run_id == run_id).order_by(WarcRecord.id)).scalars().all()
    if not rows:
        raise ExportError(f"run {run_id} archived no WARC records (no page was fetched, or archiving was off)")
    files = list(dict.fromkeys(r.warc_file for r in sorted(rows, key=lambda r: (r.warc_file, r.offset))))

    referred = _records_by_id(session, (r.refers_to for r in rows if r.refers_to))
    missing = sorted({r.refers_to for r in rows if r.refers_to} - referred.keys())
    if missing:
        raise ExportError(f"run {run_id}: revisit records refer to records not in the index: "
                          f"{', '.join(missing[:5])}")
    elsewhere = [o for o in sorted(referred.values(), key=lambda o: (o.warc_file, o.offset))
                 if o.warc_file not in files]

    pages = _wacz_pages(session, run_id, rows)
    with tempfile.TemporaryDirectory(prefix="govevidence-wacz-") as tmp:
        work = Path(tmp)
        inputs = [_resolve(root, f) for f in files]
        if elsewhere and revisit_originals == "files":
            inputs += [_resolve(root, f) for f in dict.fromkeys(o.warc_file for o in elsewhere)]
        elif elsewhere:
            extra = work / f"{_warc_stem(run_id)}-revisit-originals.warc.gz"
            _write_copy_warc(extra, _info(run, f"Original records of revisits in run {run_id}, copied byte for byte",
                                          {"source-files": ", ".join(sorted({o.warc_file for o in elsewhere}))}),
                             (_read_member(root, o) for o in elsewhere))
            inputs.append(extra)
        for path in inputs:
            if not path.is_file():
                raise ExportError(f"WARC file missing: {path}")
        names = [p.name for p in inputs]
        if len(set(names)) != len(names):
            raise ExportError(f"two WARC files share a name: {names}")

        pages_file = work / "pages.jsonl"
        with open(pages_file, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"format": "json-pages-1.0", "id": "pages",
                                 "title": f"运行 {run_id} 的页面"}, ensure_ascii=False) + "\n")
            for page in pages:
                fh.write(json.dumps(page, ensure_ascii=False) + "\n")

        built = work / "run.wacz"
        args = ["create", "-o", str(built), "--hash-type", "sha256", "-p", str(pages_file),
                "--title", f"GovEvidence 运行 {run_id}（{run.spider}）",
                "--desc", f"GovEvidence 运行 {run_id}（{run.spider}）的网页存档，"
                          f"开始于 {run.started_at.isoformat()} (UTC)",
                *map(str, inputs)]
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            code = wacz_main(args)
        if code != 0 or not built.is_file():
            raise ExportError(f"wacz create failed ({code}): {log.getvalue()[-2000:]}")
        unmatched = [line for line in log.getvalue().splitlines() if line.startswith("Invalid passed page")]
        if unmatched:
            logger.warning("WACZ of run %s: %d pages not found in the WARC files: %s", run_id, len(unmatched),
                           unmatched[:3])
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(built), output)
    return output


def _wacz_pages(session: Session, run_id: int, rows: list[WarcRecord]) -> list[dict[str, Any]]:
    """One page per successful capture: the URL and WARC-Date of its HTTP response (or revisit).

    A capture rendered in the browser points at a ``urn:rendered:`` resource, which a replay
    tool cannot open at the page's URL; it is listed at the run's HTTP record of the same URL
    when there is one, and left out otherwise.
    """
    by_id = {r.record_id: r for r in rows}
    http_by_uri: dict[str, WarcRecord] = {}
    for r in rows:
        if r.record_type in ("response", "revisit"):
            http_by_uri.setdefault(r.target_uri, r)
    captures = session.execute(
        select(PageCapture).where(PageCapture.run_id == run_id, PageCapture.error_status == "ok")
        .order_by(PageCapture.fetched_at, PageCapture.id)).scalars()
    pages: dict[str, dict[str, Any]] = {}
    skipped = 0
    for capture in captures:
        record = by_id.get(capture.warc_record_id or "")
        if record is None or record.record_type not in ("response", "revisit"):
            record = http_by_uri.get(capture.final_url or capture.requested_url)
        if record is None:
            skipped += 1
            continue
        key = f"{record.warc_date}/{record.target_uri}"
        page = pages.setdefault(key, {"id": f"capture-{capture.id}", "url": record.target_uri, "ts": record.warc_date,
                                      "title": capture.title or record.target_uri})
        if capture.title and page["title"] == record.target_uri:
            page["title"] = capture.title
    if skipped:
        logger.info("WACZ of run %s: %d browser-only captures have no HTTP record to list as a page", run_id, skipped)
    return list(pages.values())


# --- evidence pack -----------------------------------------------------------------------
@dataclass
class _Cited:
    record: WarcRecord
    member: bytes
    citations: list[tuple[int, str, str]] = field(default_factory=list)  # (finding id, indicator, role)


class _PackRecords:
    """The WARC records a target's findings cite, each read once from its original file."""

    def __init__(self, session: Session, root: Path) -> None:
        self.session = session
        self.root = root
        self.cited: dict[str, _Cited] = {}
        self._requests: dict[str, WarcRecord | None] = {}

    def cite(self, record: WarcRecord, finding: Finding, role: str) -> dict[str, Any]:
        entry = self.cited.get(record.record_id)
        if entry is None:
            entry = self.cited[record.record_id] = _Cited(record, _read_member(self.root, record))
        citation = (finding.id, finding.indicator, role)
        if citation not in entry.citations:
            entry.citations.append(citation)
        return {"role": role, "record_id": record.record_id}

    def request_for(self, record: WarcRecord) -> WarcRecord | None:
        if record.record_id not in self._requests:
            self._requests[record.record_id] = _request_for(self.session, self.root, record)
        return self._requests[record.record_id]

    def ordered(self) -> list[_Cited]:
        return sorted(self.cited.values(), key=lambda c: (c.record.warc_file, c.record.offset))


def _record_dict(record: WarcRecord) -> dict[str, Any]:
    return {"warc_file": record.warc_file, "record_id": record.record_id, "offset": record.offset,
            "length": record.length, "record_type": record.record_type, "target_uri": record.target_uri,
            "warc_date": record.warc_date, "payload_sha256": record.payload_sha256, "refers_to": record.refers_to}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


def _indicator_names() -> dict[str, str]:
    try:
        from evidence.catalogue import load_catalogue

        return {i.id: i.name for i in load_catalogue().indicators}
    except Exception:  # the pack must not depend on the catalogue loading
        return {}


def _screenshot_record(session: Session, run_id: int, url: str | None, sha256: str, kind: str) -> WarcRecord | None:
    query = select(WarcRecord).where(WarcRecord.record_type == "resource", WarcRecord.payload_sha256 == sha256,
                                     WarcRecord.target_uri.like("urn:screenshot:%"))
    rows = session.execute(query.order_by(WarcRecord.id)).scalars().all()

    def rank(r: WarcRecord) -> tuple[int, int, int]:
        uri_matches = url is not None and (
            r.target_uri == f"urn:screenshot:{url}" if kind == "screenshot"
            else r.target_uri.startswith(f"urn:screenshot:{url}#locator="))
        return (r.run_id != run_id, not uri_matches, r.id)

    return min(rows, key=rank) if rows else None


def export_pack(session: Session, run_id: int, target_code: str, root: Path, output: Path, *,
                judgement: int | str | None = None) -> Path:
    """Write the evidence pack (zip) of one target in one run to ``output`` and return its path.

    The findings are those of the run's newest finished judgement (``govevidence judge``), or
    the crawl's own when it has none; ``judgement`` picks a judgement's id, or ``"crawl"``."""
    from govevidence.reports import JudgementError, chosen_judgement

    run = _get_run(session, run_id)
    try:
        chosen = chosen_judgement(session, run_id, judgement)
    except JudgementError as exc:
        raise ExportError(str(exc)) from None
    same_judgement = of_judgement(chosen)
    root = Path(root)
    output = Path(output)
    target = session.execute(select(Target).where(Target.code == target_code)).scalar_one_or_none()
    if target is None:
        raise ExportError(f"target {target_code} is not in the database")
    in_run = session.execute(select(
        exists().where(Finding.run_id == run_id, Finding.target_id == target.id)
        | exists().where(PageCapture.run_id == run_id, PageCapture.source_id == Source.id,
                         Source.target_id == target.id)
    )).scalar()
    if not in_run:
        raise ExportError(f"target {target_code} ({target.name}) was not crawled in run {run_id}")

    rows = session.execute(
        select(Finding, Source).outerjoin(Source, Source.id == Finding.source_id)
        .where(Finding.run_id == run_id, Finding.target_id == target.id, same_judgement)
    ).all()
    rows.sort(key=lambda fs: (SCOPE_ORDER.get(fs[0].scope, 9), fs[1].kind if fs[1] else "", fs[1].url if fs[1] else "",
                              fs[0].indicator, fs[0].id))
    capture_ids = {f.capture_id for f, _ in rows if f.capture_id}
    captures = {c.id: c for c in session.execute(
        select(PageCapture).where(PageCapture.id.in_(capture_ids))).scalars()} if capture_ids else {}
    pointers = _records_by_id(session, (c.warc_record_id for c in captures.values()))
    originals = _records_by_id(session, (r.refers_to for r in pointers.values() if r.refers_to))
    names = _indicator_names()

    cited = _PackRecords(session, root)
    files: dict[str, bytes] = {}  # path inside the pack -> content
    missing: list[str] = []
    shots: dict[str, str] = {}  # stored screenshot path -> sha256 of its bytes
    shot_records: dict[tuple[str, str | None, str], WarcRecord | None] = {}
    findings_json: list[dict[str, Any]] = []
    csv_rows: list[list[Any]] = []

    for finding, source in rows:
        capture = captures.get(finding.capture_id) if finding.capture_id else None
        records: list[dict[str, Any]] = []
        pointer = pointers.get(capture.warc_record_id) if capture and capture.warc_record_id else None
        if pointer is not None:
            records.append(cited.cite(pointer, finding, "capture"))
            if pointer.refers_to:
                original = originals.get(pointer.refers_to)
                if original is None:
                    raise ExportError(f"revisit {pointer.record_id} refers to {pointer.refers_to}, not in the index")
                records.append(cited.cite(original, finding, "revisit_original"))
            if pointer.record_type in ("response", "revisit"):
                request = cited.request_for(pointer)
                if request is not None:
                    records.append(cited.cite(request, finding, "request"))
        for role, stored in (("screenshot", finding.screenshot), ("evidence_image", finding.evidence_image)):
            if not stored:
                continue
            if stored not in shots:
                shots[stored] = _add_screenshot(session, root, run_id, stored, files, missing)
            digest = shots[stored]
            if digest:
                url = finding.url or (capture.final_url if capture else None)
                if (digest, url, role) not in shot_records:
                    shot_records[digest, url, role] = _screenshot_record(session, run_id, url, digest, role)
                shot = shot_records[digest, url, role]
                if shot is not None:
                    records.append(cited.cite(shot, finding, role))

        entry = {
            "id": finding.id, "scope": finding.scope, "indicator": finding.indicator,
            "indicator_name": names.get(finding.indicator), "verdict": finding.verdict,
            "verdict_name": VERDICT_NAMES.get(finding.verdict, finding.verdict), "value": finding.value,
            "url": finding.url, "href": finding.href, "locator": finding.locator, "snippet": finding.snippet,
            "checked": finding.checked, "details": finding.details, "detector_version": finding.detector_version,
            "created_at": _iso(finding.created_at), "screenshot": finding.screenshot,
            "evidence_image": finding.evidence_image,
            "source": {"id": source.id, "kind": source.kind, "url": source.url, "name": source.name,
                       "origin": source.origin} if source else None,
            "capture": {
                "id": capture.id, "requested_url": capture.requested_url, "final_url": capture.final_url,
                "http_status": capture.http_status, "fetched_at": _iso(capture.fetched_at),
                "content_type": capture.content_type, "size": capture.size, "sha256": capture.sha256,
                "title": capture.title, "rendered": capture.rendered, "error_status": capture.error_status,
                "error_detail": capture.error_detail, "screenshot": capture.screenshot,
            } if capture else None,
            "records": records,
        }
        findings_json.append(entry)
        main = _record_dict(pointer) if pointer is not None else None
        csv_rows.append([
            finding.id, SCOPE_NAMES.get(finding.scope, finding.scope), target.code, target.name,
            KIND_NAMES.get(source.kind, source.kind) if source else "", source.url if source else "",
            finding.indicator, names.get(finding.indicator, ""), VERDICT_NAMES.get(finding.verdict, finding.verdict),
            finding.value, finding.url, finding.href, finding.locator, finding.snippet, finding.checked,
            json.dumps(finding.details, ensure_ascii=False) if finding.details else "", finding.detector_version,
            finding.screenshot, finding.evidence_image,
            capture.id if capture else "", _iso(capture.fetched_at) if capture else "",
            capture.http_status if capture else "",
            STATUS_NAMES.get(capture.error_status, capture.error_status) if capture else "",
            capture.sha256 if capture else "",
            main["warc_file"] if main else "", main["record_id"] if main else "",
            main["offset"] if main else "", main["payload_sha256"] if main else "",
        ])

    ordered = cited.ordered()
    record_rows: list[list[Any]] = []
    for item in ordered:
        r = item.record
        for finding_id, indicator, role in item.citations:
            record_rows.append([finding_id, indicator, ROLE_NAMES[role], r.warc_file, r.record_id, r.offset, r.length,
                                r.record_type, r.target_uri, r.warc_date, r.payload_sha256, r.refers_to or ""])
    record_rows.sort(key=lambda row: (row[0], list(ROLE_NAMES.values()).index(row[2])))

    exported_at = dt.datetime.now(dt.timezone.utc)
    files["findings.csv"] = _csv(FINDINGS_COLUMNS, csv_rows)
    files["records.csv"] = _csv(RECORDS_COLUMNS, record_rows)
    meta = {
        "format": "govevidence-evidence-pack/1",
        "software": f"GovEvidence {govevidence.__version__}",
        "exported_at": exported_at.isoformat(),
        "run": {"id": run.id, "spider": run.spider, "status": run.status, "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at), "software_version": run.software_version},
        "target": {"code": target.code, "name": target.name, "level": target.level,
                   "parent_code": target.parent_code},
        "judgement": chosen,  # None: the findings made during the crawl
        "missing_files": missing,
        "findings": findings_json,
        # in the order of evidence.warc.gz (after its warcinfo records); findings cite them by record_id
        "records": [_record_dict(c.record) for c in ordered],
    }
    files["findings.json"] = json.dumps(meta, ensure_ascii=False, indent=2, default=str).encode("utf-8") + b"\n"
    files["evidence.warc.gz"] = _evidence_warc(root, run, target, ordered)
    manifest = root / "runs" / f"run-{run_id:05d}" / "manifest.json"
    if manifest.is_file():
        files["manifest.json"] = manifest.read_bytes()
    files["README.txt"] = _readme(run, target, len(rows), len(ordered), "manifest.json" in files, missing,
                                  exported_at).encode("utf-8-sig").replace(b"\n", b"\r\n")
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode("utf-8")

    folder = f"govevidence-run-{run_id:05d}-{target.code}"
    stamp = exported_at.timetuple()[:6]
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as zf:
            for name in _pack_order(files):
                info = zipfile.ZipInfo(f"{folder}/{name}", stamp)
                info.compress_type = zipfile.ZIP_STORED if name.endswith((".gz", ".png")) else zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, files[name])
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return output


def _pack_order(files: dict[str, bytes]) -> list[str]:
    first = ["README.txt", "SHA256SUMS", "findings.csv", "findings.json", "records.csv", "evidence.warc.gz",
             "manifest.json"]
    return [n for n in first if n in files] + sorted(n for n in files if n not in first)


def _add_screenshot(session: Session, root: Path, run_id: int, stored: str, files: dict[str, bytes],
                    missing: list[str]) -> str:
    """Put a screenshot in the pack under its stored path; from the WARC if the file is gone."""
    name = PurePosixPath(stored)
    if name.is_absolute() or ".." in name.parts:
        missing.append(stored)
        return ""
    data: bytes | None = None
    try:
        data = _resolve(root, stored).read_bytes()
    except (OSError, ExportError):
        prefix = name.stem  # files are named by the first 32 hex digits of their SHA-256
        record = session.execute(
            select(WarcRecord).where(WarcRecord.record_type == "resource", WarcRecord.payload_sha256.like(f"{prefix}%"),
                                     WarcRecord.target_uri.like("urn:screenshot:%")).limit(1)).scalar_one_or_none()
        if record is not None:
            from warcio.archiveiterator import ArchiveIterator

            for rec in ArchiveIterator(io.BytesIO(_read_member(root, record))):
                data = rec.raw_stream.read()
                break
    if data is None:
        missing.append(stored)
        return ""
    path = str(name) if name.parts[0] == "screenshots" else str(PurePosixPath("screenshots", *name.parts))
    files[path] = data
    return hashlib.sha256(data).hexdigest()


def _excel_cell(value: Any) -> Any:
    """A cell Excel shows as text: page text starting like a formula gets a leading apostrophe.

    Text comes from the crawled sites; ``=HYPERLINK(...)`` in a snippet must not become a live
    formula in a reviewer's spreadsheet. findings.json keeps every value unchanged.
    """
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _csv(columns: list[str], rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_excel_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def _evidence_warc(root: Path, run: CrawlRun, target: Target, cited: list[_Cited]) -> bytes:
    """warcinfo of the pack, the source files' own warcinfo records, then the cited records, all gzip members."""
    sources = list(dict.fromkeys(c.record.warc_file for c in cited))
    with tempfile.TemporaryDirectory(prefix="govevidence-pack-") as tmp:
        path = Path(tmp) / "evidence.warc.gz"
        members: list[bytes] = []
        for source in sources:
            first = _first_member(_resolve(root, source))
            if first is not None:
                members.append(first)
        members += [c.member for c in cited]
        _write_copy_warc(path, _info(run, f"Evidence pack of target {target.code} in run {run.id}: the records its "
                                          f"findings cite, copied byte for byte from the original WARC files "
                                          f"(preceded by those files' own warcinfo records); see records.csv",
                                     {"target": target.code, "source-files": ", ".join(sources)}), members)
        data = path.read_bytes()
    gzip.decompress(data)  # every member must still be a complete gzip stream
    return data


def _readme(run: CrawlRun, target: Target, n_findings: int, n_records: int, has_manifest: bool,
            missing: list[str], exported_at: dt.datetime) -> str:
    lines = [
        f"GovEvidence 证据包：{target.name}（{target.code}），抓取运行 {run.id}",
        "=" * 40,
        "",
        f"抓取运行：{run.id}（爬虫 {run.spider}），开始于 {_iso(run.started_at)}，结束于 {_iso(run.finished_at) or '（未结束）'}",
        f"导出时间：{exported_at.isoformat()}，GovEvidence {govevidence.__version__}",
        "（本包中的时间均为协调世界时 UTC，北京时间 = UTC + 8 小时。）",
        f"本包含有 {n_findings} 条发现，引用 {n_records} 条 WARC 记录。",
        "",
        "一、文件说明",
        "  README.txt        本说明。",
        "  SHA256SUMS        本包内其他每个文件的 SHA-256 哈希值（SHA256SUMS 本身除外）。",
        "  findings.csv      全部发现（对象汇总、来源汇总、页面），UTF-8 编码（带 BOM），可直接用 Excel 打开。"
        "以 = + - @ 开头的网页文字前加了一个英文单引号，防止被 Excel 当作公式；原文以 findings.json 为准。",
        "  findings.json     同样的发现，含页面抓取信息和每条发现引用的 WARC 记录，便于程序处理。",
        "  records.csv       每条发现引用的 WARC 记录在原始 WARC 文件中的位置：文件、记录 ID、偏移、长度、载荷 SHA-256。",
        "  evidence.warc.gz  上述记录的 WARC 文件（WARC/1.1，gzip 压缩）。每条记录是从原始 WARC 文件中按偏移和长度"
        "逐字节复制的 gzip 成员，未作任何改动；文件开头是本包的 warcinfo 记录和原始文件各自的 warcinfo 记录。",
        "  screenshots/      发现引用的截图：整页截图，以及用红框标出证据元素的局部截图（PNG）。"
        "每张截图也以 urn:screenshot: 开头的 resource 记录存于 evidence.warc.gz，记录的载荷 SHA-256 与截图文件的"
        " SHA-256 相同（文件名即该哈希的前 32 位）。",
    ]
    if has_manifest:
        lines.append("  manifest.json     本次抓取运行结束时写下的清单：运行中全部 WARC 文件、截图和发现文件的路径、大小和 SHA-256。"
                     "本包中截图的路径与清单中的路径一致，可据此与清单核对。")
    lines += [
        "",
        "二、结论的含义",
        "  有        在页面上找到了该指标要求的内容；“值”“证据摘录”“元素定位”给出找到的内容和位置，截图中以红框标出。",
        "  无        页面可以访问并已检查，但没有找到该内容；“已检查内容”说明查找了哪些页面和内容。",
        "  无法判断  未能查看该内容（网站无法访问、超时、被拒绝访问或 robots.txt 禁止抓取等），"
        "不表示网站没有该内容。",
        "  范围：“页面”是单个页面上的结论；“来源汇总”是一个网站（门户网站、政务服务平台等）上各页面结论的汇总；"
        "“对象汇总”是该评估对象全部来源的汇总，沿用所依据页面的证据。",
        "",
        "三、核对文件完整性",
        "  解压后进入本文件夹，核对每个文件的 SHA-256 与 SHA256SUMS 中的值一致：",
        "  Linux / macOS：",
        "      sha256sum -c SHA256SUMS",
        "    （macOS 也可用 shasum -a 256 -c SHA256SUMS）每个文件显示“OK”（中文环境为“成功”）即一致。",
        "  Windows（命令提示符，逐个文件）：",
        "      certutil -hashfile findings.csv SHA256",
        f"      certutil -hashfile screenshots\\run-{run.id:05d}\\（文件名）.png SHA256",
        "    将输出的哈希值与 SHA256SUMS 中对应的一行比较（不区分大小写；SHA256SUMS 中的路径用“/”分隔，"
        "在命令提示符中请改为“\\”）。",
        "  Windows（PowerShell，一次核对全部文件）：",
        "      Get-Content SHA256SUMS | ForEach-Object { $h, $f = $_ -split '  ', 2; "
        "if ((Get-FileHash -Algorithm SHA256 -LiteralPath $f).Hash -eq $h) { \"一致  $f\" } else { \"不一致  $f\" } }",
        "  在 WARC 文件内部，每条记录的 WARC-Payload-Digest / WARC-Block-Digest 也是 SHA-256（Base32 编码），"
        "records.csv 和 findings.json 中的“载荷 SHA-256”是同一哈希的十六进制形式。",
        "",
        "四、查看网页存档（WARC）",
        "  1. 用浏览器打开 https://replayweb.page/ ，选择“Choose File...”，选中 evidence.warc.gz；"
        "文件只在本机浏览器中读取，不会上传。",
        "  2. 在“URLs”列表中可以看到页面记录；页面网址即 findings.csv 中的“页面网址”，"
        "浏览器渲染后的页面以 urn:rendered: 开头，截图以 urn:screenshot: 开头。",
        "  3. 同一内容在此前已存档时，页面记录是“revisit”（重复内容引用）记录，本包同时包含它引用的原始记录。",
        "  也可以用 pywb、warcio（warcio index / warcio check evidence.warc.gz）等工具读取。",
        "  要浏览本次运行抓取的全部网页，请使用同一运行导出的 WACZ 文件（govevidence export wacz）。",
    ]
    if missing:
        lines += ["", "五、缺失的文件", "  以下截图在导出时已找不到，未能放入本包：",
                  *(f"    {m}" for m in missing)]
    lines.append("")
    return "\n".join(lines)
