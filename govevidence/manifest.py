"""Run manifests and ``govevidence verify``.

At the end of a run the manifest lists every artefact — WARC files, screenshots, the
findings export — with size and SHA-256; its own hash goes into the audit chain.
``verify_run`` recomputes everything and names each missing or altered file, WARC
record and database row (page captures, findings, WARC index rows, review decisions),
checks the pointers rows keep — a picture's record (``page_captures.screenshot_record_id``,
``findings.evidence_image_record_id``: an indexed ``resource`` record whose payload SHA-256
is that of the picture file the row names) and a roll-up's page finding
(``findings.derived_from_id``: a page finding of the same run, judgement and indicator) —
and checks the run's RFC 3161 time-stamp tokens (``govevidence.anchor``).

WARC payloads are hashed exactly as stored, in bounded blocks: a gzip answer is never
decoded, so it verifies against the digest of the bytes the server sent and a
decompression bomb costs no memory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator

import govevidence
from crawler.warc import CHUNK, brief_error, drain, hex_digest, index_warc_file, run_warc_files, verify_warc_file
from db import audit
from db.base import utcnow
from db.models import AuditEntry, CrawlRun, Finding, PageCapture, ReviewDecision, WarcRecord

__all__ = ["file_sha256", "index_warc_file", "run_folder", "run_warc_files", "verify_run", "verify_warc_file",
           "write_manifest"]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def run_folder(root: Path, run_id: int) -> Path:
    return root / "runs" / f"run-{run_id:05d}"


def _finding_dict(row: Any) -> dict[str, Any]:
    """A findings-table row (a mapping) as the findings export writes it."""
    return {c.name: (v.isoformat() if hasattr(v := row[c.name], "isoformat") else v)
            for c in Finding.__table__.columns}


def write_manifest(session: Session, run_id: int, root: Path, torn: dict[str, list[str]] | None = None) -> Path:
    """Write the findings export and the manifest of a run; record the manifest's hash.

    ``torn``: the problems of WARC files a kill left torn (by their path under ``root``);
    their entries carry them as ``torn``, and ``verify_run`` reads such files again."""
    run = session.get(CrawlRun, run_id)
    folder = run_folder(root, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    findings_file = folder / "findings.jsonl"
    with open(findings_file, "w", encoding="utf-8") as fh:
        table = Finding.__table__
        rows = session.execute(select(table).where(table.c.run_id == run_id).order_by(table.c.id)
                               .execution_options(yield_per=5000)).mappings()
        for row in rows:  # streamed: a run of any size is written in the same memory
            fh.write(json.dumps(_finding_dict(row), ensure_ascii=False, sort_keys=True) + "\n")
    paths: set[str] = set(session.execute(
        select(WarcRecord.warc_file).where(WarcRecord.run_id == run_id).distinct()).scalars())
    paths |= {p for p in session.execute(select(PageCapture.screenshot).where(
        PageCapture.run_id == run_id, PageCapture.screenshot.is_not(None))).scalars()}
    for shot, crop in session.execute(select(Finding.screenshot, Finding.evidence_image).where(
            Finding.run_id == run_id, or_(Finding.screenshot.is_not(None), Finding.evidence_image.is_not(None)))):
        paths |= {p for p in (shot, crop) if p}
    paths.add(str(findings_file.relative_to(root)))
    # A killed run's file may hold no complete record, so no index row names it.
    paths |= {str(path.relative_to(root)) for path in run_warc_files(root, run_id)}
    torn = torn or {}
    files = []
    for relative in sorted(paths):
        path = root / relative
        if path.exists():
            files.append({"path": relative, "size": path.stat().st_size, "sha256": file_sha256(path)})
            if torn.get(relative):
                files[-1]["torn"] = list(torn[relative])
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
# The checks of one WARC file (``verify_warc_file``, ``index_warc_file``) are plumbing and
# live in ``crawler.warc``; payloads are hashed as stored, in bounded blocks.


def _check_record(root: Path, row: WarcRecord) -> str | None:
    path = root / row.warc_file
    if not path.exists():
        return None  # reported as a missing file
    where = f"WARC record {row.record_id} ({row.warc_file} @ {row.offset})"
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            fh.seek(row.offset)
            record = next(iter(ArchiveIterator(fh, check_digests=True)))
            record_id = record.rec_headers.get_header("WARC-Record-ID")
            if record_id != row.record_id:
                return f"{where}: another record is there"
            drain(record.raw_stream, digest)
            checker = record.digest_checker
            stored_digest = record.rec_headers.get_header("WARC-Payload-Digest")
    except Exception as exc:
        return f"{where}: unreadable ({brief_error(exc)})"
    if row.record_type == "revisit":
        if hex_digest(stored_digest) != row.payload_sha256:
            return f"{where}: payload digest differs"
    elif digest.hexdigest() != row.payload_sha256:
        return f"{where}: payload SHA-256 differs"
    if checker.passed is False:
        return f"{where}: fails its WARC digest ({'; '.join(checker.problems)[:120]})"
    return None


class _ChainedRows:
    """The rows of one table that a run's audit entries must account for, one digest each."""

    def __init__(self, table: Any, rows: dict[int, Any], label: Any) -> None:
        self.table, self.rows, self.label = table, rows, label
        self.audited: set[int] = set()

    def check(self, row_id: int, digest: str | None, missing_label: str | None = None) -> list[str]:
        self.audited.add(row_id)
        row = self.rows.get(row_id)
        if row is None:
            return [f"{self.table.name} {missing_label or row_id}: row missing"]
        if audit.row_digest(self.table, row) != digest:
            return [f"{self.table.name} {self.label(row)}: row altered"]
        return []

    def unaudited(self) -> list[str]:
        return [f"{self.table.name} {self.label(self.rows[i])}: row not in the audit log"
                for i in sorted(set(self.rows) - self.audited)]


def verify_run(session: Session, run_id: int, root: Path, tsa_ca_file: str | None = None) -> list[str]:
    """Every problem found with a run's evidence, each naming what is wrong; empty when intact.

    ``tsa_ca_file`` (default: ``GOVEVIDENCE_TSA_CA_FILE``) is the certificate file the
    signatures of the run's RFC 3161 time-stamp tokens are checked against.
    """
    from govevidence.anchor import verify_anchors  # the anchor module builds on this one

    run = session.get(CrawlRun, run_id)
    if run is None:
        return [f"run {run_id} does not exist"]
    problems = list(audit.verify_chain(session))

    # Database rows against the digests chained in the audit log.
    entries = session.execute(
        select(AuditEntry).where(AuditEntry.action.in_(
            ("capture.add", "findings.add", "findings.rollup", "judgement.findings", "run.manifest", "warc.index",
             "review.decision")), AuditEntry.data["run"].as_integer() == run_id)
        .order_by(AuditEntry.id)
    ).scalars().all()
    captures = {c.id: c for c in session.execute(select(PageCapture).where(PageCapture.run_id == run_id)).scalars()}
    findings = {f.id: f for f in session.execute(select(Finding).where(Finding.run_id == run_id)).scalars()}
    records = {r.id: r for r in session.execute(
        select(WarcRecord).where(WarcRecord.run_id == run_id).order_by(WarcRecord.id)).scalars()}
    decisions = {d.id: d for d in session.execute(
        select(ReviewDecision).join(Finding, Finding.id == ReviewDecision.finding_id)
        .where(Finding.run_id == run_id)).scalars()}
    chained = {
        "page_captures": _ChainedRows(PageCapture.__table__, captures, lambda c: f"{c.id} ({c.requested_url})"),
        "findings": _ChainedRows(Finding.__table__, findings, lambda f: f"{f.id} ({f.indicator}, {f.scope})"),
        "warc_records": _ChainedRows(WarcRecord.__table__, records, lambda r: f"{r.id} ({r.record_id})"),
        "review_decisions": _ChainedRows(ReviewDecision.__table__, decisions,
                                         lambda d: f"{d.id} (finding {d.finding_id})"),
    }
    manifest_entry = None
    for entry in entries:
        if entry.action == "run.manifest":
            manifest_entry = entry
        elif entry.action == "warc.index":
            for record_id, digest in entry.data.get("records", {}).items():
                problems += chained["warc_records"].check(int(record_id), digest)
        elif entry.action == "review.decision":
            problems += chained["review_decisions"].check(
                entry.entity_id, entry.data.get("sha256"), f"{entry.entity_id} (finding {entry.data.get('finding')})")
        else:
            if entry.action == "capture.add":
                problems += chained["page_captures"].check(entry.entity_id, entry.data["sha256"])
            for finding_id, digest in entry.data.get("findings", {}).items():
                problems += chained["findings"].check(int(finding_id), digest)
    for rows in chained.values():
        problems += rows.unaudited()

    # Files listed in the manifest.
    hashed: dict[str, str] = {}  # path under the root -> SHA-256 of the file, as computed here
    if manifest_entry is None:
        problems.append(f"run {run_id}: no manifest (the run did not finish; status {run.status})")
        for path in run_warc_files(root, run_id):
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
                elif path.stat().st_size != item["size"] or hashed.setdefault(
                        item["path"], file_sha256(path)) != item["sha256"]:
                    problems.append(f"{item['path']}: file altered")
                    if item["path"].endswith(".warc.gz"):
                        problems += verify_warc_file(path, item["path"])
                elif item.get("torn"):  # torn by a kill before the run was sealed: still named
                    problems += verify_warc_file(path, item["path"]) or list(item["torn"])

    # Every indexed record of the run opens at its offset with the right payload.
    for row in records.values():
        problem = _check_record(root, row)
        if problem:
            problems.append(problem)

    # The pointers rows keep to the records of their pictures and to the page findings they stand on.
    problems += _check_pointers(session, root, captures, findings, hashed)

    # The run's RFC 3161 time-stamp tokens against what they witnessed.
    problems += verify_anchors(session, run_id, root, tsa_ca_file)
    return problems


def _picture_digest(root: Path, stored: str, hashed: dict[str, str]) -> str | None:
    """SHA-256 of a picture file the database names; None when it is not there (reported as a
    missing file by the manifest check) or lies outside the data folder."""
    if stored not in hashed:
        path = (root / stored).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            return None
        hashed[stored] = file_sha256(path)
    return hashed[stored]


def _judgement(finding: Finding) -> str:
    return "crawl" if finding.judgement_id is None else f"judgement {finding.judgement_id}"


def _check_pointers(session: Session, root: Path, captures: dict[int, PageCapture], findings: dict[int, Finding],
                    hashed: dict[str, str]) -> list[str]:
    """Problems with the record pointers of a run's captures and findings, and with its roll-ups'
    ``derived_from_id``; each line names the row, the pointer and what is wrong."""
    pointers = [(f"page_captures {c.id} ({c.requested_url})", "screenshot_record_id", c.screenshot_record_id,
                 c.screenshot) for c in sorted(captures.values(), key=lambda c: c.id) if c.screenshot_record_id]
    pointers += [(f"findings {f.id} ({f.indicator}, {f.scope})", "evidence_image_record_id",
                  f.evidence_image_record_id, f.evidence_image)
                 for f in sorted(findings.values(), key=lambda f: f.id) if f.evidence_image_record_id]
    wanted = sorted({record_id for _, _, record_id, _ in pointers})
    indexed: dict[str, WarcRecord] = {}
    for start in range(0, len(wanted), 500):
        indexed.update({r.record_id: r for r in session.execute(
            select(WarcRecord).where(WarcRecord.record_id.in_(wanted[start:start + 500]))).scalars()})
    problems = []
    for label, column, record_id, stored in pointers:
        record = indexed.get(record_id)
        if record is None:
            problems.append(f"{label}: {column} {record_id} names no indexed WARC record")
        elif record.record_type != "resource":
            problems.append(f"{label}: {column} {record_id} is a {record.record_type} record, not a picture's resource")
        elif not stored:
            problems.append(f"{label}: {column} {record_id} is set, but the row names no picture file")
        else:
            digest = _picture_digest(root, stored, hashed)
            if digest is not None and digest != record.payload_sha256:
                problems.append(f"{label}: {column} {record_id} does not hold {stored} (payload SHA-256 "
                                f"{record.payload_sha256[:16]}…, file {digest[:16]}…)")
    for finding in sorted(findings.values(), key=lambda f: f.id):
        if finding.derived_from_id is None:
            continue
        label = f"findings {finding.id} ({finding.indicator}, {finding.scope})"
        basis = findings.get(finding.derived_from_id)
        if basis is None:
            problems.append(f"{label}: derived_from_id {finding.derived_from_id} names no finding of run {finding.run_id}")
        elif finding.scope == "page":
            problems.append(f"{label}: derived_from_id {basis.id} is set on a page finding")
        elif (basis.scope, basis.indicator, basis.judgement_id) != ("page", finding.indicator, finding.judgement_id):
            problems.append(f"{label}: derived_from_id {basis.id} names a {basis.scope} finding of {basis.indicator} "
                            f"({_judgement(basis)}), not a page finding of {finding.indicator} ({_judgement(finding)})")
    return problems
