"""Run manifests and ``govevidence verify``.

At the end of a run the manifest lists every artefact — WARC files, screenshots, the
findings export — with size and SHA-256; its own hash goes into the audit chain.
``verify_run`` recomputes everything and names each missing or altered file, WARC
record and database row.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

import govevidence
from db import audit
from db.base import utcnow
from db.models import AuditEntry, CrawlRun, Finding, PageCapture, WarcRecord

CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def run_folder(root: Path, run_id: int) -> Path:
    return root / "runs" / f"run-{run_id:05d}"


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {c.name: (v.isoformat() if hasattr(v := getattr(finding, c.name), "isoformat") else v)
            for c in Finding.__table__.columns}


def write_manifest(session: Session, run_id: int, root: Path) -> Path:
    """Write the findings export and the manifest of a run; record the manifest's hash."""
    run = session.get(CrawlRun, run_id)
    folder = run_folder(root, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    findings_file = folder / "findings.jsonl"
    with open(findings_file, "w", encoding="utf-8") as fh:
        for finding in session.execute(select(Finding).where(Finding.run_id == run_id).order_by(Finding.id)).scalars():
            fh.write(json.dumps(_finding_dict(finding), ensure_ascii=False, sort_keys=True) + "\n")
    paths: set[str] = set(session.execute(
        select(WarcRecord.warc_file).where(WarcRecord.run_id == run_id).distinct()).scalars())
    paths |= {p for p in session.execute(select(PageCapture.screenshot).where(
        PageCapture.run_id == run_id, PageCapture.screenshot.is_not(None))).scalars()}
    for shot, crop in session.execute(select(Finding.screenshot, Finding.evidence_image).where(
            Finding.run_id == run_id, or_(Finding.screenshot.is_not(None), Finding.evidence_image.is_not(None)))):
        paths |= {p for p in (shot, crop) if p}
    paths.add(str(findings_file.relative_to(root)))
    files = []
    for relative in sorted(paths):
        path = root / relative
        if path.exists():
            files.append({"path": relative, "size": path.stat().st_size, "sha256": file_sha256(path)})
    manifest = {
        "run": run_id,
        "spider": run.spider,
        "started_at": run.started_at.isoformat(),
        "created_at": utcnow().isoformat(),
        "software": f"GovEvidence {govevidence.__version__}",
        "files": files,
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    audit.append(session, "crawler", "run.manifest", "crawl_runs", run_id,
                 {"run": run_id, "path": str(path.relative_to(root)), "sha256": file_sha256(path)})
    return path


# --- verification ---------------------------------------------------------------------
def verify_warc_file(path: Path, label: str) -> list[str]:
    """Read every gzip member and record of a WARC; name a truncated or corrupt file.

    warcio reads a torn last gzip member without complaint, so the gzip stream is
    checked to its end-of-stream marker first, then each record's digests.
    """
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(CHUNK):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        return [f"{label}: truncated or corrupt gzip data ({_brief(exc)})"]
    problems: list[str] = []
    count = 0
    try:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh, check_digests=True):
                record.content_stream().read()
                count += 1
                if record.digest_checker.passed is False:
                    problems.append(f"{label}: record {record.rec_headers.get_header('WARC-Record-ID')} "
                                    f"fails its digest")
    except Exception as exc:  # warcio raises several types for malformed records
        problems.append(f"{label}: truncated or corrupt after {count} readable record(s) ({_brief(exc)})")
    return problems


def _brief(exc: Exception) -> str:
    """Exception type and the printable start of its message (warcio quotes raw bytes)."""
    text = "".join(ch for ch in str(exc)[:200] if ch.isprintable() and ord(ch) < 0x250)
    return f"{type(exc).__name__}: {text[:80]}".rstrip(": ")


def _check_record(root: Path, row: WarcRecord) -> str | None:
    path = root / row.warc_file
    if not path.exists():
        return None  # reported as a missing file
    try:
        with open(path, "rb") as fh:
            fh.seek(row.offset)
            record = next(iter(ArchiveIterator(fh)))
            record_id = record.rec_headers.get_header("WARC-Record-ID")
            payload = record.content_stream().read()
    except Exception as exc:
        return f"WARC record {row.record_id} ({row.warc_file} @ {row.offset}): unreadable ({type(exc).__name__})"
    if record_id != row.record_id:
        return f"WARC record {row.record_id} ({row.warc_file} @ {row.offset}): another record is there"
    if row.record_type != "revisit" and hashlib.sha256(payload).hexdigest() != row.payload_sha256:
        return f"WARC record {row.record_id} ({row.warc_file} @ {row.offset}): payload SHA-256 differs"
    return None


def verify_run(session: Session, run_id: int, root: Path) -> list[str]:
    """Every problem found with a run's evidence, each naming what is wrong; empty when intact."""
    run = session.get(CrawlRun, run_id)
    if run is None:
        return [f"run {run_id} does not exist"]
    problems = list(audit.verify_chain(session))

    # Database rows against the digests chained in the audit log.
    entries = session.execute(
        select(AuditEntry).where(AuditEntry.action.in_(("capture.add", "findings.rollup", "run.manifest")))
        .order_by(AuditEntry.id)
    ).scalars().all()
    entries = [e for e in entries if e.data.get("run") == run_id]
    captures = {c.id: c for c in session.execute(select(PageCapture).where(PageCapture.run_id == run_id)).scalars()}
    findings = {f.id: f for f in session.execute(select(Finding).where(Finding.run_id == run_id)).scalars()}
    audited_captures: set[int] = set()
    audited_findings: set[int] = set()
    manifest_entry = None
    for entry in entries:
        if entry.action == "run.manifest":
            manifest_entry = entry
            continue
        if entry.action == "capture.add":
            audited_captures.add(entry.entity_id)
            capture = captures.get(entry.entity_id)
            if capture is None:
                problems.append(f"page_captures {entry.entity_id}: row missing")
            elif audit.row_digest(PageCapture.__table__, capture) != entry.data["sha256"]:
                problems.append(f"page_captures {capture.id} ({capture.requested_url}): row altered")
        for finding_id, digest in entry.data.get("findings", {}).items():
            audited_findings.add(int(finding_id))
            finding = findings.get(int(finding_id))
            if finding is None:
                problems.append(f"findings {finding_id}: row missing")
            elif audit.row_digest(Finding.__table__, finding) != digest:
                problems.append(f"findings {finding.id} ({finding.indicator}, {finding.scope}): row altered")
    problems += [f"page_captures {i}: row not in the audit log" for i in sorted(set(captures) - audited_captures)]
    problems += [f"findings {i}: row not in the audit log" for i in sorted(set(findings) - audited_findings)]

    # Files listed in the manifest.
    if manifest_entry is None:
        problems.append(f"run {run_id}: no manifest (the run did not finish; status {run.status})")
        for folder in sorted((root / "warc").glob(f"run-{run_id:05d}")):
            for path in sorted(folder.glob("*.warc.gz")):
                problems += verify_warc_file(path, str(path.relative_to(root)))
    else:
        manifest_path = root / manifest_entry.data["path"]
        if not manifest_path.exists():
            problems.append(f"{manifest_entry.data['path']}: file missing")
        elif file_sha256(manifest_path) != manifest_entry.data["sha256"]:
            problems.append(f"{manifest_entry.data['path']}: file altered")
        else:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            for item in manifest["files"]:
                path = root / item["path"]
                if not path.exists():
                    problems.append(f"{item['path']}: file missing")
                elif path.stat().st_size != item["size"] or file_sha256(path) != item["sha256"]:
                    problems.append(f"{item['path']}: file altered")
                    if item["path"].endswith(".warc.gz"):
                        problems += verify_warc_file(path, item["path"])

    # Every indexed record of the run opens at its offset with the right payload.
    for row in session.execute(select(WarcRecord).where(WarcRecord.run_id == run_id).order_by(WarcRecord.id)).scalars():
        problem = _check_record(root, row)
        if problem:
            problems.append(problem)
    return problems
